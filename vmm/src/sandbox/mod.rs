//! Vessel as a library: load a guest once, call the functions it exports,
//! serve the host functions it calls, snapshot it and restore it.
//!
//! ```no_run
//! use vmm::sandbox::Sandbox;
//! let mut host = vmm::Host::open()?;
//! let mut sb = Sandbox::from_path("target/x86_64-unknown-linux-musl/release/funcs")
//!     .register("prefix", |s: String| Ok::<_, String>(format!("host says {s}")))
//!     .reset_after_call(true)                       // every call sees the state at `serve`
//!     .timeout(std::time::Duration::from_secs(1))  // per call
//!     .build(&mut host)?;
//! let sum: i64 = sb.call("add", (2i64, 3i64))?;
//! assert_eq!(sum, 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The guest side is `guest_rt::exports!` and `guest_rt::export::serve`
//! (see guest-rt's README). A [`Sandbox`] is `Send`: each runs its vCPU on
//! whichever thread calls it, and many run at once on different threads.

mod core;
mod error;
mod host_fn;
mod io;
mod timer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vessel_abi::embed::{self, status};
use vessel_abi::value::{from_bytes, to_bytes, Decode, Encode};

pub(crate) use self::core::{Core, Pending};
pub use self::error::SandboxError;
use self::host_fn::{erase, erase_with_caller, Registry};
pub use self::host_fn::{HostFn, HostFnError, HostFnWithCaller};
pub use self::io::STDERR_KEPT;
use crate::config::VmConfig;
use crate::elf::GuestImage;
use crate::host::Host;
use crate::lazy::LazySpec;
use crate::outcome::StopReason;
use crate::snapshot::{RestoreScope, Snapshot};
use crate::stop::StopHandle;
use crate::sve::SveRequest;
use crate::vm::Vm;

/// Where a sandbox's guest comes from.
enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
    Packed(PathBuf),
    Snapshot(Arc<Snapshot>),
}

/// Options for a [`Sandbox`]; made by `Sandbox::from_*`, finished by
/// [`SandboxBuilder::build`].
pub struct SandboxBuilder {
    source: Source,
    cfg: VmConfig,
    fns: Registry,
    reset_after_call: bool,
    timeout: Option<Duration>,
    stdout: Box<dyn std::io::Write + Send>,
    seccomp: bool,
}

impl SandboxBuilder {
    fn new(source: Source) -> SandboxBuilder {
        SandboxBuilder {
            source,
            cfg: VmConfig {
                args: vec!["sandbox".into()],
                ..VmConfig::default()
            },
            fns: Registry::new(),
            reset_after_call: false,
            timeout: None,
            stdout: Box::new(std::io::stdout()),
            seccomp: false,
        }
    }

    /// Guest RAM in bytes (default 128 MiB).
    pub fn mem_size(mut self, bytes: u64) -> Self {
        self.cfg.mem_size = bytes;
        self
    }

    /// vCPUs (a sandbox runs one; others are refused at `build`).
    pub fn vcpus(mut self, n: u32) -> Self {
        self.cfg.vcpus = n;
        self
    }

    /// SVE for the guest (arm64). For a sandbox from a snapshot it
    /// replaces the snapshot's request; a length set other than the
    /// snapshot's is refused.
    pub fn sve(mut self, sve: SveRequest) -> Self {
        self.cfg.sve = Some(sve);
        self
    }

    /// Map a file read-only as lazy region `name` (like `--lazy`).
    pub fn lazy(mut self, name: &str, path: impl Into<PathBuf>, size: Option<u64>) -> Self {
        self.cfg.lazy.push(LazySpec {
            name: name.into(),
            path: path.into(),
            size,
        });
        self
    }

    /// The guest's arguments (after its name) and `KEY=VALUE` environment.
    pub fn args_env(mut self, args: &[&str], env: &[&str]) -> Self {
        self.cfg.args.extend(args.iter().map(|s| s.to_string()));
        self.cfg.env = env.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Register host function `name` (see [`HostFn`]).
    pub fn register<Args: 'static, F: HostFn<Args>>(mut self, name: &str, f: F) -> Self {
        self.fns.insert(name.into(), erase(f));
        self
    }

    /// Register host function `name` that may call the guest back.
    pub fn register_with_caller<Args: 'static, F: HostFnWithCaller<Args>>(
        mut self,
        name: &str,
        f: F,
    ) -> Self {
        self.fns.insert(name.into(), erase_with_caller(f));
        self
    }

    /// Restore the state at `serve` after every call (each call sees a
    /// freshly initialised guest).
    pub fn reset_after_call(mut self, on: bool) -> Self {
        self.reset_after_call = on;
        self
    }

    /// End any call that runs longer than `t` ([`SandboxError::TimedOut`]).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Put the calling thread (the one that builds and then calls the
    /// sandbox) under the launcher's seccomp allow-list for sandbox hosts
    /// (`vmm::seccomp::Role::Sandbox`), and every thread the sandbox starts
    /// under its own, before the guest's first instruction. The filter
    /// stays on that thread for good, host functions included: a call
    /// outside the list ends the process with one line naming it (exit
    /// 159). Off by default.
    pub fn seccomp(mut self, on: bool) -> Self {
        self.seccomp = on;
        self
    }

    /// Where the guest's stdout goes (default: this process's stdout).
    pub fn stdout(mut self, w: Box<dyn std::io::Write + Send>) -> Self {
        self.stdout = w;
        self
    }

    fn image(&self) -> Result<Arc<GuestImage>, SandboxError> {
        let bytes = match &self.source {
            Source::Path(p) => crate::read_image(p)?,
            Source::Bytes(b) => b.clone(),
            Source::Packed(p) => crate::pack::embedded_guest(p)?.ok_or_else(|| {
                SandboxError::NotServing(format!("{} holds no guest", p.display()))
            })?,
            Source::Snapshot(s) => return Ok(s.image.clone()),
        };
        Ok(Arc::new(crate::load_image(bytes)?))
    }

    /// Build the VM and run the guest until it serves calls.
    pub fn build(self, host: &mut Host) -> Result<Sandbox, SandboxError> {
        if self.seccomp {
            crate::seccomp::enable().map_err(crate::Error::from)?;
            crate::seccomp::install(crate::seccomp::Role::Sandbox).map_err(crate::Error::from)?;
        }
        let image = self.image()?;
        let cfg = match &self.source {
            // The snapshot's configuration; an SVE request given here
            // replaces its own (a different length set is then refused).
            Source::Snapshot(s) => VmConfig {
                sve: self.cfg.sve.or(s.cfg.sve),
                ..s.cfg.clone()
            },
            _ => self.cfg.clone(),
        };
        if cfg.vcpus != 1 {
            return Err(SandboxError::OneVcpu(cfg.vcpus));
        }
        // A snapshot's RAM replaces everything loading would write.
        let load = !matches!(self.source, Source::Snapshot(_));
        let vm = Vm::new_shared(host, image.clone(), &cfg, true, load)?;
        let mut sb = Sandbox {
            core: Core {
                vm,
                io: io::SandboxIo {
                    stdout: self.stdout,
                    stderr: Vec::new(),
                },
                pending: None,
                poisoned: None,
                timeout: None,
            },
            fns: self.fns,
            exports: Vec::new(),
            image,
            cfg,
            reset_after_call: self.reset_after_call,
            timeout: self.timeout,
            ready: None,
            base: None,
        };
        match self.source {
            Source::Snapshot(s) => sb.adopt(s)?,
            _ => sb.start()?,
        }
        if sb.reset_after_call && sb.ready.is_none() {
            sb.ready = Some(sb.snapshot()?);
        }
        Ok(sb)
    }
}

/// A guest loaded once and called many times. See the module doc.
pub struct Sandbox {
    core: Core,
    fns: Registry,
    exports: Vec<String>,
    image: Arc<GuestImage>,
    cfg: VmConfig,
    reset_after_call: bool,
    timeout: Option<Duration>,
    /// The state at `serve`, restored after each call in reset mode.
    ready: Option<Arc<Snapshot>>,
    /// The snapshot RAM equals, plus the pages dirtied since.
    base: Option<u64>,
}

impl Sandbox {
    /// A sandbox for the guest ELF at `path`.
    pub fn from_path(path: impl AsRef<Path>) -> SandboxBuilder {
        SandboxBuilder::new(Source::Path(path.as_ref().to_path_buf()))
    }

    /// A sandbox for a guest ELF in memory.
    pub fn from_bytes(elf: Vec<u8>) -> SandboxBuilder {
        SandboxBuilder::new(Source::Bytes(elf))
    }

    /// A sandbox for the guest packed into the app executable at `path`.
    pub fn from_packed(path: impl AsRef<Path>) -> SandboxBuilder {
        SandboxBuilder::new(Source::Packed(path.as_ref().to_path_buf()))
    }

    /// A new sandbox in the state of `snap` (its image and configuration;
    /// host functions and options are this builder's).
    pub fn from_snapshot(snap: Arc<Snapshot>) -> SandboxBuilder {
        SandboxBuilder::new(Source::Snapshot(snap))
    }

    /// Run the guest from its entry until its first `Serve`.
    fn start(&mut self) -> Result<(), SandboxError> {
        let r = self.core.run_guest(&self.fns, 0);
        let r = match r {
            Ok(r) if r.status == status::READY => r,
            Ok(r) => {
                return Err(SandboxError::NotServing(format!(
                    "Serve status {}",
                    r.status
                )))
            }
            Err(e) => return Err(SandboxError::NotServing(e.to_string())),
        };
        let names = embed::decode_exports(&r.bytes)
            .map_err(|e| SandboxError::NotServing(format!("export list: {e:?}")))?;
        self.exports = names.into_iter().map(String::from).collect();
        Ok(())
    }

    /// The functions the guest exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Call guest function `name` with the argument tuple `args`
    /// (`(a, b)`, `(a,)` or `()`); its result decoded as `R`.
    pub fn call<R>(&mut self, name: &str, args: impl Encode) -> Result<R, SandboxError>
    where
        R: for<'a> Decode<'a>,
    {
        let r = self.call_raw(name, &to_bytes(&args)).and_then(|bytes| {
            from_bytes::<R>(&bytes).map_err(|source| SandboxError::BadResult {
                function: name.to_string(),
                source,
            })
        });
        let r = r.map_err(|e| self.core.fail(e));
        if self.reset_after_call {
            if let Some(ready) = self.ready.clone() {
                self.restore(&ready)?;
            }
        }
        r
    }

    /// Call `name` with encoded arguments; the encoded result.
    pub fn call_raw(&mut self, name: &str, args: &[u8]) -> Result<Vec<u8>, SandboxError> {
        let req = embed::encode_request(name, args);
        self.core.io.stderr.clear();
        self.core.timeout = self.timeout;
        let _timer = match self.timeout {
            Some(t) => {
                self.core.vm.deadline = Some(std::time::Instant::now() + t);
                Some(timer::CallTimer::arm(t)?)
            }
            None => None,
        };
        let r = self.core.guest_call(&self.fns, name, &req, 0);
        self.core.vm.deadline = None;
        r
    }

    /// A handle that stops this sandbox's running call from any thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            stop: self.core.vm.stop_handle(),
        }
    }

    /// Why the sandbox is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&str> {
        self.core.poisoned.as_deref()
    }

    /// Snapshot the sandbox between calls: RAM, vCPU state and the
    /// protocol's position.
    pub fn snapshot(&mut self) -> Result<Arc<Snapshot>, SandboxError> {
        if let Some(p) = &self.core.poisoned {
            return Err(SandboxError::Poisoned(p.clone()));
        }
        let snap = Arc::new(crate::snapshot::capture(
            &mut self.core,
            self.image.clone(),
            &self.cfg,
            &self.exports,
        )?);
        self.base = Some(snap.id);
        Ok(snap)
    }

    /// Put the sandbox back into the state of `snap` (taken of this
    /// sandbox, or of one with the same image and configuration). Copies
    /// only the pages written since when `snap` is the last one restored
    /// or taken here. Clears poisoning.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<(), SandboxError> {
        if !Arc::ptr_eq(&snap.image, &self.image) && snap.image.bytes() != self.image.bytes() {
            return Err(SandboxError::SnapshotMismatch("another guest image".into()));
        }
        if snap.cfg.mem_size != self.cfg.mem_size {
            return Err(SandboxError::SnapshotMismatch(format!(
                "{} bytes of RAM, this sandbox has {}",
                snap.cfg.mem_size, self.cfg.mem_size
            )));
        }
        let incremental = self.base == Some(snap.id);
        // Only a clean call since the last restore point keeps the rest.
        let clean = incremental
            && self.core.poisoned.is_none()
            && self.core.vm.features & vessel_abi::features::ASYNC_PF == 0;
        let scope = if clean {
            RestoreScope::AfterCall
        } else {
            RestoreScope::Full
        };
        let r = crate::snapshot::apply(&mut self.core, snap, incremental, scope);
        if let Err(e) = r {
            self.base = None;
            self.core.poisoned = Some(format!("restore failed: {e}"));
            return Err(e.into());
        }
        self.base = Some(snap.id);
        self.core.poisoned = None;
        self.core.vm.stop_handle().clear();
        Ok(())
    }

    /// Take over the state of `snap` in a freshly built VM.
    fn adopt(&mut self, snap: Arc<Snapshot>) -> Result<(), SandboxError> {
        snap.check_cpu(self.core.vm.vcpu0())?;
        crate::snapshot::apply(&mut self.core, &snap, false, RestoreScope::Full)?;
        self.exports = snap.exports.clone();
        self.base = Some(snap.id);
        if self.reset_after_call {
            self.ready = Some(snap);
        }
        Ok(())
    }
}

/// Stops a sandbox's running call from another thread; the call fails
/// with [`SandboxError::Interrupted`] and the sandbox is poisoned until
/// restored. An interrupt while no call runs ends the next call at once,
/// so one racing a call's start is never lost.
#[derive(Clone)]
pub struct InterruptHandle {
    stop: StopHandle,
}

impl InterruptHandle {
    /// Stop the running (or next) call.
    pub fn interrupt(&self) {
        self.stop.stop(StopReason::Interrupted);
    }
}

/// What a host function registered with
/// [`SandboxBuilder::register_with_caller`] gets: the way back into the
/// guest while the guest waits in its host call.
pub struct Caller<'s> {
    core: &'s mut Core,
    fns: &'s Registry,
    depth: u32,
}

impl Caller<'_> {
    /// Call guest function `name` from inside a host function (re-entry,
    /// at most `vessel_abi::embed::MAX_DEPTH` guest calls deep).
    pub fn call<R>(&mut self, name: &str, args: impl Encode) -> Result<R, HostFnError>
    where
        R: for<'a> Decode<'a>,
    {
        let req = embed::encode_request(name, &to_bytes(&args));
        let bytes = self
            .core
            .guest_call(self.fns, name, &req, self.depth)
            .map_err(HostFnError::Guest)?;
        from_bytes::<R>(&bytes).map_err(|source| {
            HostFnError::Guest(self.core.fail(SandboxError::BadResult {
                function: name.to_string(),
                source,
            }))
        })
    }

    /// Guest calls in flight, this one's caller included.
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

/// A sandbox moves between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Sandbox>();
};
