//! The allow-lists: which system calls (and which ioctl numbers) each
//! launcher thread role may make.
//!
//! To let a thread make one more call, add its name (as in `man 2`, the
//! kernel's name: `newfstatat`, `pread64`) to the list of that thread's
//! role below; a name the host architecture does not have (`open` on
//! aarch64) is skipped there. A role's filter is its own list plus the
//! lists of every role it starts ([`Role::starts`]): the kernel applies a
//! thread's filter to the threads it creates, so a creator needs what its
//! children need before they install their own, narrower filter.

use super::Role;

/// What every thread does: memory, locks, signals, its own end, writing a
/// message, time, sleeping.
const BASE: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "futex",
    "exit",
    "exit_group",
    "rt_sigreturn",
    "rt_sigprocmask",
    "sigaltstack",
    "restart_syscall",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "getpid",
    "gettid",
    "tgkill",
    // musl's pthread_kill and raise (the arm64 launcher): with every
    // signal blocked, so a trap there could not even be reported.
    "tkill",
    "sched_getaffinity",
    "sched_yield",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "getrandom",
    // std's thread::available_parallelism reads the cgroup quota.
    "openat",
    "newfstatat",
    "statx",
    "fstat",
    "lseek",
    "poll",
    "ppoll",
    // Installing a filter (a thread narrows its inherited one; a filter
    // can only ever take calls away).
    "seccomp",
    "prctl",
];

/// Creating a thread (std on glibc or musl) and naming it.
const SPAWN: &[&str] = &[
    "clone",
    "clone3",
    "set_robust_list",
    "rseq",
    "sched_setaffinity",
    // The I/O threads' Landlock wall is built before their filter.
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
];

/// A vCPU thread: KVM_RUN and the hypercalls it serves inline (console,
/// stdin, clock, random, wait, the kick signal, sandbox call timers).
const VCPU: &[&str] = &[
    "ioctl",
    "rt_sigaction",
    "rt_sigtimedwait",
    "timer_create",
    "timer_settime",
    "timer_delete",
    "fcntl",
    "pread64",
    "pwrite64",
    // arm64's launcher-served async page faults: at the guest's set-up
    // call the lazy regions move to a SIGBUS-mode userfaultfd.
    "userfaultfd",
    "eventfd2",
];

/// A lazy-region fetch thread: userfaultfd messages, file reads, UFFDIO_COPY.
const FETCH: &[&str] = &["ioctl", "pread64", "preadv", "read", "eventfd2"];

/// An I/O ring thread: the file operations of `vessel_abi::fs`, all beneath
/// pre-opened directory fds (openat2 RESOLVE_BENEATH, Landlock).
const IO: &[&str] = &[
    "openat2",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "getdents64",
    "mkdirat",
    "unlinkat",
    "renameat",
    "renameat2",
    "readlinkat",
    "fcntl",
    "fchmod",
    "utimensat",
];

/// The watchdog and wake-up timer threads: sleep, then kick or wake a vCPU.
const TIMER: &[&str] = &["ioctl"];

/// The launcher's main thread before and after the run, and a sandbox's
/// host thread: building VMs (KVM system and VM ioctls, guest memory,
/// userfaultfd), reading the image and `--lazy` files, opening `--dir`
/// directories, snapshots, the stats report.
const MAIN: &[&str] = &[
    "ioctl",
    "open",
    "openat2",
    "stat",
    "lstat",
    "readlink",
    "readlinkat",
    "access",
    "faccessat",
    "faccessat2",
    "getcwd",
    "uname",
    "sysinfo",
    "prlimit64",
    "getrlimit",
    "setrlimit",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "arch_prctl",
    "set_tid_address",
    "rt_sigaction",
    "rt_sigtimedwait",
    "userfaultfd",
    "eventfd2",
    "memfd_create",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "pipe2",
    "pread64",
    "pwrite64",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "getdents64",
    "unlinkat",
    "unlink",
    "renameat",
    "renameat2",
    "rename",
    "mkdirat",
    "timer_create",
    "timer_settime",
    "timer_delete",
    "getrusage",
    "kill",
    "wait4",
    "membarrier",
    // Snapshots: which RAM pages have memory behind them.
    "mincore",
];

impl Role {
    /// The system call names of this role alone (see [`Role::calls`]).
    pub fn own_calls(self) -> Vec<&'static str> {
        let extra: &[&[&str]] = match self {
            Role::Main | Role::Sandbox => &[MAIN, SPAWN, VCPU],
            Role::Vcpu => &[VCPU, SPAWN],
            Role::Fetch => &[FETCH],
            Role::Io => &[IO],
            Role::Timer => &[TIMER],
        };
        let mut v: Vec<&str> = BASE.to_vec();
        v.extend(extra.iter().flat_map(|l| l.iter().copied()));
        v
    }

    /// The roles whose threads a thread of this role starts.
    pub fn starts(self) -> &'static [Role] {
        match self {
            Role::Main | Role::Sandbox => &[Role::Vcpu, Role::Fetch, Role::Io, Role::Timer],
            // I/O threads start on a ring's first request; the wake-up
            // timer on the first timed wait; arm64's fault thread on
            // async page fault set-up.
            Role::Vcpu => &[Role::Io, Role::Timer, Role::Fetch],
            Role::Fetch | Role::Io | Role::Timer => &[],
        }
    }

    /// Every name this role's filter allows: its own and those of every
    /// role it starts, transitively; sorted, no repeats.
    pub fn calls(self) -> Vec<&'static str> {
        let mut v = self.own_calls();
        for r in self.starts() {
            v.extend(r.calls());
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The ioctl request numbers (or number families) this role allows.
    pub fn ioctls(self) -> Vec<Ioctl> {
        let mut v: Vec<Ioctl> = match self {
            Role::Main | Role::Sandbox | Role::Vcpu => vec![
                Ioctl::Family(KVMIO),
                Ioctl::Family(UFFDIO),
                Ioctl::Exact(TCGETS),
                Ioctl::Exact(TIOCGWINSZ),
                Ioctl::Exact(FIONBIO),
                Ioctl::Exact(FIOCLEX),
                Ioctl::Exact(FIONREAD),
            ],
            Role::Fetch => UFFD_FILL.iter().map(|&n| Ioctl::Exact(n)).collect(),
            Role::Timer => vec![Ioctl::Exact(KVM_SIGNAL_MSI)],
            Role::Io => vec![],
        };
        for r in self.starts() {
            v.extend(r.ioctls());
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Allowed ioctl requests: one number, or every number of one type byte
/// (bits 8..16 of the request: 0xAE is KVM's, 0xAA userfaultfd's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ioctl {
    /// Exactly this request number.
    Exact(u64),
    /// Any request whose type byte is this.
    Family(u8),
}

/// Terminal and file ioctls the console and std make (asm-generic values,
/// the same on x86_64 and aarch64; libc types them differently per libc).
const TCGETS: u64 = 0x5401;
const TIOCGWINSZ: u64 = 0x5413;
const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;
const FIOCLEX: u64 = 0x5451;

/// KVM's ioctl type byte (`KVMIO` in linux/kvm.h).
pub const KVMIO: u8 = 0xAE;
/// userfaultfd's ioctl type byte (`UFFDIO` in linux/userfaultfd.h).
pub const UFFDIO: u8 = 0xAA;

/// `_IOC(dir, type, nr, size)` as linux/ioctl.h builds it (the same on
/// x86_64 and aarch64).
const fn ioc(dir: u64, ty: u8, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

/// KVM_SIGNAL_MSI: `_IOW(KVMIO, 0xa5, struct kvm_msi)`.
pub const KVM_SIGNAL_MSI: u64 = ioc(
    IOC_WRITE,
    KVMIO,
    0xa5,
    std::mem::size_of::<kvm_bindings::kvm_msi>(),
);

/// The userfaultfd fills a fetch thread makes: UFFDIO_WAKE, UFFDIO_COPY,
/// UFFDIO_ZEROPAGE (`_IOR`/`_IOWR(UFFDIO, nr, struct)`; sizes 16, 40, 32).
const UFFD_FILL: [u64; 3] = [
    ioc(IOC_READ, UFFDIO, 0x02, 16),
    ioc(IOC_READ | IOC_WRITE, UFFDIO, 0x03, 40),
    ioc(IOC_READ | IOC_WRITE, UFFDIO, 0x04, 32),
];
