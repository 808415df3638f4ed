//! `create`, the container's init process, and `start`.
//!
//! As runc does: `create` starts the container's process, which blocks
//! opening the exec fifo for writing; `start` opens it for reading, the
//! process writes one byte and execs the packed app (same pid, already in
//! the container's cgroup, with the stdio the shim gave `create`).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cgroup::{self, Placement};
use crate::error::{io, OciError, Result};
use crate::log::Log;
use crate::spec::{self, Launch, Plan};
use crate::state::{self, Record, Status};

/// How long `start` waits for the container's process to take the fifo.
const START_WAIT: Duration = Duration::from_secs(10);

/// `create`'s options (liboci-cli's, as the shim passes them).
pub struct CreateArgs<'a> {
    /// `--root`.
    pub root: &'a Path,
    /// Whether `--root` was given (the fallback then gets it unchanged).
    pub root_given: bool,
    /// The parsed options.
    pub create: &'a liboci_cli::Create,
    /// The whole command line, for the fallback.
    pub argv: &'a [OsString],
}

/// `vessel-oci create`.
pub fn create(a: &CreateArgs, log: &Log) -> Result<()> {
    let c = a.create;
    let dir = state::dir(a.root, &c.container_id)?;
    if dir.exists() {
        return Err(OciError::Exists(c.container_id.clone()));
    }
    let bundle = c
        .bundle
        .canonicalize()
        .map_err(io("open the bundle", &c.bundle))?;
    let spec = spec::load(&bundle)?;
    let launch = match spec::plan(&bundle, &spec)? {
        Plan::Vessel(l) => l,
        Plan::Other(arg0) => return Err(crate::fallback::exec(a.argv, a.root_given, &arg0)),
    };
    if c.console_socket.is_some() {
        return Err(OciError::Init(
            "a terminal (--console-socket) is not supported for Vessel apps yet: run without -t"
                .into(),
        ));
    }
    for m in &launch.skipped {
        log.info(&format!(
            "mount {}: not a directory, left out of the VM",
            m.display()
        ));
    }
    std::fs::create_dir_all(a.root).map_err(io("create", a.root))?;
    // The directory is the claim on the id: a second create loses here.
    std::fs::create_dir(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => OciError::Exists(c.container_id.clone()),
        _ => OciError::Io {
            what: "create",
            path: dir.clone(),
            source: e,
        },
    })?;
    let mut made = Made {
        dir: dir.clone(),
        child: None,
        cgroup: Placement::default(),
    };
    let annotations = spec.annotations().clone().unwrap_or_default();
    match made.build(&launch, c, annotations, &bundle) {
        Ok(()) => {
            // It all runs on as the container.
            made.child = None;
            made.dir = PathBuf::new();
            made.cgroup = Placement::default();
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// What a failed `create` takes back: the state directory, the process,
/// the cgroups.
struct Made {
    dir: PathBuf,
    child: Option<Child>,
    cgroup: Placement,
}

impl Made {
    fn build(
        &mut self,
        launch: &Launch,
        c: &liboci_cli::Create,
        annotations: std::collections::HashMap<String, String>,
        bundle: &Path,
    ) -> Result<()> {
        let fifo = self.dir.join(state::FIFO);
        mkfifo(&fifo)?;
        let me = std::env::current_exe().map_err(io("find", "this executable"))?;
        let child = Command::new(&me)
            .arg("init")
            .arg(&fifo)
            .arg(&launch.exe)
            .arg("--")
            .args(&launch.argv)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::inherit())
            .spawn()
            .map_err(io("start", &me))?;
        let pid =
            i32::try_from(child.id()).map_err(|_| OciError::Init("a pid beyond i32".into()))?;
        self.child = Some(child);
        let (_, start_time) = state::proc_stat(pid)
            .ok_or_else(|| OciError::Init("the container's process exited at once".into()))?;
        if let Some(p) = &launch.cgroups_path {
            self.cgroup = cgroup::enter(p, &launch.limits, pid)?;
        }
        let record = Record {
            id: c.container_id.clone(),
            bundle: bundle.to_path_buf(),
            rootfs: launch.rootfs.clone(),
            pid,
            start_time,
            created: state::now_rfc3339(),
            cgroup: self.cgroup.clone(),
            annotations,
        };
        record.save(&self.dir)?;
        if let Some(p) = &c.pid_file {
            write_pid_file(p, pid)?;
        }
        Ok(())
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        cgroup::remove(&self.cgroup);
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| OciError::Init(format!("{} holds a NUL byte", path.display())))?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io("create", path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// runc writes the pid file whole or not at all (temp file, rename).
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("vessel-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io("write", path))
}

/// The container's process: wait for `start`, then become the app.
pub fn init(fifo: &Path, exe: &Path, args: &[OsString]) -> OciError {
    let opened = std::fs::OpenOptions::new().write(true).open(fifo);
    if let Err(e) = opened.and_then(|mut f| f.write_all(b"0")) {
        return io("open", fifo)(e);
    }
    let e = Command::new(exe).args(args).exec();
    OciError::Init(format!("exec {}: {e}", exe.display()))
}

/// `vessel-oci start` of one of ours.
pub fn start(dir: &Path, record: &Record) -> Result<()> {
    match record.status(dir) {
        Status::Created => {}
        Status::Running => {
            return Err(OciError::Status(
                "cannot start an already running container".into(),
            ))
        }
        Status::Stopped => {
            return Err(OciError::Status(
                "cannot start a container that has stopped".into(),
            ))
        }
    }
    let fifo = dir.join(state::FIFO);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(io("open", &fifo))?;
    let began = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        match f.read(&mut byte) {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io("read", &fifo)(e)),
        }
        if !state::alive(record.pid, record.start_time) {
            return Err(OciError::Status(
                "the container's process exited before start".into(),
            ));
        }
        if began.elapsed() > START_WAIT {
            return Err(OciError::Status(
                "the container's process did not take the exec fifo".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(&fifo).map_err(io("remove", &fifo))
}
