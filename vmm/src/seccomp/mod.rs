//! seccomp allow-lists for every launcher thread.
//!
//! Each thread the launcher runs has a [`Role`]; the role's list
//! (`lists.rs`) names the system calls it may make and, for `ioctl`, the
//! request numbers. A call outside the list is trapped (SECCOMP_RET_TRAP):
//! the SIGSYS handler (`report.rs`) prints one line naming the call, the
//! thread and its role, and ends the process with exit 159
//! ([`vessel_abi::exit::SECCOMP`]).
//!
//! Nothing is installed until [`enable`] is called: the `vessel` command
//! does so unless `--no-seccomp`; a host program using the library calls it
//! (or `SandboxBuilder::seccomp(true)`) to get the same walls. Once enabled,
//! the library installs the role's filter at the start of every thread it
//! runs (a vCPU loop, a fetch, I/O or timer thread), before the guest's
//! first instruction on that vCPU; [`install`] does it for a thread of the
//! host program's own.

mod lists;
mod report;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

pub use lists::{Ioctl, KVMIO, KVM_SIGNAL_MSI, UFFDIO};

/// What a launcher thread does, and so which allow-list it runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The `vessel` command's main thread: set-up (KVM, memory, files),
    /// then vCPU 0, then the report.
    Main,
    /// A thread running a vCPU loop (KVM_RUN and the hypercalls served
    /// inline).
    Vcpu,
    /// A lazy-region fetch thread (userfaultfd, file reads).
    Fetch,
    /// An I/O ring thread (file operations beneath the pre-opened
    /// directories).
    Io,
    /// The watchdog and the wake-up timer.
    Timer,
    /// A host program's thread that builds and calls a `Sandbox`: the
    /// main thread's list (it builds VMs and runs the vCPU).
    Sandbox,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Main,
        Role::Vcpu,
        Role::Fetch,
        Role::Io,
        Role::Timer,
        Role::Sandbox,
    ];

    /// The role's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Vcpu => "vcpu",
            Role::Fetch => "fetch",
            Role::Io => "io",
            Role::Timer => "timer",
            Role::Sandbox => "sandbox",
        }
    }
}

/// Why a filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The rules did not compile to BPF.
    #[error("seccomp filter for the {role} thread role: {source}")]
    Build {
        /// The role.
        role: &'static str,
        /// What seccompiler said.
        source: seccompiler::BackendError,
    },
    /// The kernel refused the filter.
    #[error("installing the seccomp filter of the {role} thread role: {source}")]
    Install {
        /// The role.
        role: &'static str,
        /// What seccompiler said.
        source: seccompiler::Error,
    },
    /// The SIGSYS handler could not be installed.
    #[error("installing the SIGSYS handler: {0}")]
    Handler(std::io::Error),
}

/// Whether the `vessel` command turns the filters on by default on this
/// architecture: on x86_64, where the whole test suite runs under them;
/// not yet on aarch64, where the suite has not passed with them (run with
/// `VESSEL_SECCOMP=1` there to turn them on).
pub const DEFAULT_ON: bool = cfg!(target_arch = "x86_64");

/// Whether the `vessel` command should install the filters: [`DEFAULT_ON`],
/// or `VESSEL_SECCOMP=1` (on) / `VESSEL_SECCOMP=0` (off) in its environment.
pub fn wanted() -> bool {
    match std::env::var_os("VESSEL_SECCOMP") {
        Some(v) if v == "1" => true,
        Some(v) if v == "0" => false,
        _ => DEFAULT_ON,
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The role whose filter this thread installed last (0: none).
    static CURRENT: Cell<u8> = const { Cell::new(0) };
}

/// Turn the filters on for this process: install the SIGSYS handler; from
/// now on every thread the library runs installs its role's filter. There
/// is no way back (filters cannot be removed).
pub fn enable() -> Result<(), SeccompError> {
    report::install_handler().map_err(SeccompError::Handler)?;
    ENABLED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// Install `role`'s filter on the calling thread (whether or not
/// [`enable`] was called; the SIGSYS report needs [`enable`]). A thread
/// that already runs under `role` is left as it is; another role's filter
/// is stacked (the kernel applies both, so a thread only ever narrows).
pub fn install(role: Role) -> Result<(), SeccompError> {
    let code = role as u8 + 1;
    if CURRENT.with(Cell::get) == code {
        return Ok(());
    }
    let prog = program(role)?;
    seccompiler::apply_filter(prog).map_err(|source| SeccompError::Install {
        role: role.name(),
        source,
    })?;
    CURRENT.with(|c| c.set(code));
    Ok(())
}

/// At the start of a library thread: when enabled, install `role`'s
/// filter, or end the process (exit 125, one line): a thread must never run
/// without its wall.
pub(crate) fn enter(role: Role) {
    if !enabled() {
        return;
    }
    if let Err(e) = install(role) {
        eprintln!("vessel: {e}");
        std::process::exit(vessel_abi::exit::LAUNCHER_ERROR);
    }
}

/// The role of the calling thread's last filter, if it has one.
pub fn current() -> Option<Role> {
    let code = CURRENT.with(Cell::get);
    Role::ALL.into_iter().find(|r| *r as u8 + 1 == code)
}

/// `role`'s BPF program, compiled once per process.
fn program(role: Role) -> Result<&'static BpfProgram, SeccompError> {
    static PROGRAMS: [OnceLock<BpfProgram>; 6] = [const { OnceLock::new() }; 6];
    let slot = &PROGRAMS[role as usize];
    if let Some(p) = slot.get() {
        return Ok(p);
    }
    let p = compile(role)?;
    Ok(slot.get_or_init(|| p))
}

/// Build `role`'s filter: every listed call allowed, ioctl only with the
/// listed request numbers, anything else trapped.
pub fn compile(role: Role) -> Result<BpfProgram, SeccompError> {
    let err = |source| SeccompError::Build {
        role: role.name(),
        source,
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for name in role.calls() {
        if let Some(nr) = number(name) {
            rules.insert(nr, vec![]);
        }
    }
    let ioctl = ioctl_rules(role).map_err(err)?;
    rules.insert(libc::SYS_ioctl, ioctl);
    let arch = std::env::consts::ARCH.try_into().map_err(|_| {
        err(seccompiler::BackendError::InvalidTargetArch(
            std::env::consts::ARCH.into(),
        ))
    })?;
    let filter =
        SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, arch).map_err(err)?;
    filter.try_into().map_err(err)
}

/// One rule per allowed request number (or number family); none at all
/// (an empty role) allows no ioctl: a rule that cannot match stands in.
fn ioctl_rules(role: Role) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let cond = |op, value| SeccompCondition::new(1, SeccompCmpArgLen::Dword, op, value);
    let mut v = Vec::new();
    for i in role.ioctls() {
        let c = match i {
            Ioctl::Exact(n) => cond(SeccompCmpOp::Eq, n & 0xffff_ffff)?,
            Ioctl::Family(t) => cond(SeccompCmpOp::MaskedEq(0xff00), u64::from(t) << 8)?,
        };
        v.push(SeccompRule::new(vec![c])?);
    }
    if v.is_empty() {
        // Request 0 with type 0 is no ioctl anything serves.
        v.push(SeccompRule::new(vec![cond(SeccompCmpOp::Eq, 0)?])?);
    }
    Ok(v)
}

/// The host architecture's number for a system call name.
pub fn number(name: &str) -> Option<i64> {
    name.parse::<syscalls::Sysno>()
        .ok()
        .map(|s| i64::from(s.id()))
}

/// The host architecture's name for a system call number.
pub fn name(nr: i64) -> Option<&'static str> {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::Sysno::new)
        .map(|s| s.name())
}

#[cfg(test)]
mod tests;
