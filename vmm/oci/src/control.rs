//! `state`, `kill` and `delete` of a container this runtime created.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup;
use crate::error::{io, OciError, Result};
use crate::state::{self, Record, Status};

/// How long `delete` waits for a killed process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// `vessel-oci state`: the state JSON on stdout.
pub fn state(dir: &Path, record: &Record) -> Result<()> {
    let json = record.state_json(record.status(dir));
    let text = serde_json::to_string_pretty(&json).map_err(|e| OciError::Init(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `vessel-oci kill`: the signal goes to the launcher (SIGTERM stops the
/// VM cleanly, exit 143); the VM is its only process, so `--all` is the same.
pub fn kill(dir: &Path, record: &Record, signal: &str) -> Result<()> {
    let sig = crate::signal::parse(signal)?;
    if record.status(dir) == Status::Stopped {
        return Err(OciError::Status("container not running".into()));
    }
    send(record, sig)
}

fn send(record: &Record, sig: i32) -> Result<()> {
    // SAFETY: kill(2) takes no pointers; the pid was checked to be the
    // container's own (start time) just before.
    if unsafe { libc::kill(record.pid, sig) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(OciError::Status(format!("kill {}: {e}", record.pid)));
        }
    }
    Ok(())
}

/// `vessel-oci delete`: a stopped container (or, like runc, one created
/// but never started) is removed with its cgroups; a running one only
/// with `--force` (SIGKILL first).
pub fn delete(dir: &Path, record: &Record, force: bool) -> Result<()> {
    match record.status(dir) {
        Status::Stopped => {}
        Status::Running if !force => {
            return Err(OciError::Status(format!(
                "cannot delete container {} that is not stopped: running",
                record.id
            )))
        }
        Status::Created | Status::Running => {
            send(record, libc::SIGKILL)?;
            wait_gone(record)?;
        }
    }
    cgroup::remove(&record.cgroup);
    std::fs::remove_dir_all(dir).map_err(io("remove", dir))
}

/// Until the process has exited (a zombie counts: its parent reaps it).
fn wait_gone(record: &Record) -> Result<()> {
    let began = Instant::now();
    while state::alive(record.pid, record.start_time) {
        if began.elapsed() > KILL_WAIT {
            return Err(OciError::Status(format!(
                "process {} did not exit after SIGKILL",
                record.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
