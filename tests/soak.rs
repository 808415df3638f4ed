//! Soak: many VMs back to back, in one process through the library API
//! and as separate launcher processes, leave nothing behind: open file
//! descriptors, threads, mappings and resident memory stay flat.
//!
//! The test command runs 500 of each; `VESSEL_SOAK_VMS=N` sets the count
//! and `cargo xtask soak [--vms N]` runs 10,000 of each and prints the
//! figures. Its own test binary: nothing else runs in the process while
//! it counts, and the two tests take turns (`TURN`).
//!
//! Tolerances. After a warm-up (the first VMs fill malloc's arenas, the
//! kick signal's handler, lazy statics), fds, threads and mappings must
//! be exactly equal: a VM leaks at least one of each (a VM or vCPU fd, a
//! vCPU or I/O thread, guest RAM or a `kvm_run` mapping) if it leaks its
//! kernel objects at all. RSS may move by malloc's fragmentation, so it
//! gets [`RSS_SLACK_KIB`]: a leak of guest RAM (16 MiB mapped, hundreds of
//! KiB touched), of a vCPU's `kvm_run` page or of a 4 KiB buffer per VM
//! over 500 VMs (2 MiB) is still above it.
//!
//! malloc. glibc gives each new thread one of up to 8 x cores arenas, and
//! each arena keeps its own high-water mark; the library soak's VMs start
//! many short threads (vCPUs, 64 fetch threads per lazy region, I/O
//! threads), so with the default allocator RSS climbs while the arenas
//! fill and then stops (measured here, 2 cores: 8 MiB after 50 VMs,
//! 19.2 MiB after 500, 19.4 MiB after 3,000): bounded, but large enough
//! to hide a leak. The library soak therefore limits malloc to one arena
//! (`M_ARENA_MAX`, as `MALLOC_ARENA_MAX=1` would); with it RSS moved
//! 40 KiB over 600 VMs. `VESSEL_SOAK_ARENAS=default` leaves malloc alone
//! (then only fds, threads and mappings are compared).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vessel_tests::{app, footprint, guest_elf, lazy_test_bytes, require_kvm, Footprint};
use vmm::sandbox::Sandbox;
use vmm::{Outcome, VmConfig};

/// VMs run before the first measurement.
const WARM_UP: usize = 50;

/// RSS growth allowed between the warm-up and the end (see the module doc).
const RSS_SLACK_KIB: u64 = 1536;

/// The two tests run one at a time: each counts this process's threads
/// and fds, which the other's would disturb.
static TURN: Mutex<()> = Mutex::new(());

/// `VESSEL_SOAK_VMS`, or 500.
fn count() -> usize {
    std::env::var("VESSEL_SOAK_VMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// Guest output, kept to check what a VM printed.
#[derive(Default)]
struct Collect(Vec<u8>);
impl vmm::HostIo for Collect {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        if fd == 1 {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }
    fn read_stdin(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

/// What the library soak's VMs use: the guest images, loaded once, and a
/// lazy file and a directory for the ones that start fetch and I/O threads.
struct Guests {
    selftest: vmm::elf::GuestImage,
    lazyscan: vmm::elf::GuestImage,
    wc: vmm::elf::GuestImage,
    lazy: std::path::PathBuf,
    lazy_sum: u64,
    dir: std::path::PathBuf,
}

impl Guests {
    fn load(scratch: &std::path::Path) -> Guests {
        let image =
            |name: &str| vmm::load_image(vmm::read_image(&guest_elf(name)).unwrap()).unwrap();
        let (bytes, lazy_sum) = lazy_test_bytes(64 << 10);
        let lazy = scratch.join("lazy.bin");
        std::fs::write(&lazy, bytes).unwrap();
        let dir = scratch.join("dir");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "one two\nthree\n").unwrap();
        Guests {
            selftest: image("selftest"),
            lazyscan: image("lazyscan"),
            wc: image("wc"),
            lazy,
            lazy_sum,
            dir,
        }
    }

    /// VM number `i`: six kinds in turn, each checked (an exit code, a
    /// fault, a timeout, a lazy sum, a file count, a sandbox call).
    fn run_one(&self, host: &mut vmm::Host, i: usize) {
        let cfg = |args: &[&str]| VmConfig {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut out = Collect::default();
        match i % 6 {
            0 => {
                let code = (i % 100).to_string();
                let r = vmm::run(
                    host,
                    &self.selftest,
                    &cfg(&["selftest", "exit", &code]),
                    &mut out,
                );
                assert_eq!(
                    r.unwrap(),
                    Outcome::Exited(i32::try_from(i % 100).unwrap()),
                    "VM {i}"
                );
            }
            1 => {
                let c = VmConfig {
                    vcpus: 2,
                    ..cfg(&["selftest", "smp-exit", "7"])
                };
                assert_eq!(
                    vmm::run(host, &self.selftest, &c, &mut out).unwrap(),
                    Outcome::Exited(7)
                );
            }
            2 => {
                let r = vmm::run(host, &self.selftest, &cfg(&["selftest", "fault"]), &mut out);
                assert!(matches!(r.unwrap(), Outcome::Fault(_)), "VM {i}");
            }
            3 => {
                let c = VmConfig {
                    timeout: Some(Duration::from_millis(5)),
                    ..cfg(&["selftest", "spin"])
                };
                let r = vmm::run(host, &self.selftest, &c, &mut out).unwrap();
                assert!(
                    matches!(r, Outcome::Stopped(vmm::StopReason::Timeout, _)),
                    "VM {i}: {r:?}"
                );
            }
            4 => {
                let c = VmConfig {
                    lazy: vec![vmm::lazy::LazySpec {
                        name: "data".into(),
                        path: self.lazy.clone(),
                        size: None,
                    }],
                    ..cfg(&["lazyscan"])
                };
                assert_eq!(
                    vmm::run(host, &self.lazyscan, &c, &mut out).unwrap(),
                    Outcome::Exited(0)
                );
                let text = String::from_utf8_lossy(&out.0);
                let sum = self.lazy_sum.to_string();
                assert!(
                    text.lines().any(|l| l == sum),
                    "VM {i}: lazyscan printed {text:?}, not {sum}"
                );
            }
            _ => {
                if i % 12 == 5 {
                    let c = VmConfig {
                        dirs: vec![vmm::fs::DirSpec {
                            host: self.dir.clone(),
                            guest: "/d".into(),
                            readonly: true,
                        }],
                        ..cfg(&["wc", "/d/a.txt"])
                    };
                    assert_eq!(
                        vmm::run(host, &self.wc, &c, &mut out).unwrap(),
                        Outcome::Exited(0)
                    );
                    let text = String::from_utf8_lossy(&out.0);
                    assert_eq!(text.trim(), "2 3 14 /d/a.txt", "VM {i}");
                } else {
                    let mut sb = Sandbox::from_path(guest_elf("funcs")).build(host).unwrap();
                    assert_eq!(sb.call::<i64>("add", (40i64, 2i64)).unwrap(), 42);
                }
            }
        }
    }
}

/// Run `n` steps after [`WARM_UP`] of them, measuring `pid`'s footprint
/// (through `measure`) after the warm-up and at each tenth; prints the
/// figures and returns (after the warm-up, at the end, the largest seen).
fn soak(
    what: &str,
    n: usize,
    mut step: impl FnMut(usize),
    measure: impl Fn() -> Footprint,
) -> (Footprint, Footprint, u64) {
    for i in 0..WARM_UP {
        step(i);
    }
    let before = measure();
    let mut peak_rss = before.rss_kib;
    let start = Instant::now();
    for i in 0..n {
        step(WARM_UP + i);
        if (i + 1) % (n / 10).max(1) == 0 {
            let now = measure();
            peak_rss = peak_rss.max(now.rss_kib);
            eprintln!("soak {what}: {:>6} VMs: {now}", i + 1);
        }
    }
    let after = measure();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "soak {what}: {n} VMs in {secs:.1} s ({:.2} ms each); after the warm-up: {before}; \
         at the end: {after}; largest RSS {peak_rss} KiB",
        secs * 1e3 / n as f64
    );
    (before, after, peak_rss)
}

/// The flatness checks shared by both tests.
fn assert_flat(what: &str, before: Footprint, after: Footprint) {
    assert_eq!(after.fds, before.fds, "{what}: open fds");
    assert_eq!(after.threads, before.threads, "{what}: threads");
    assert_eq!(after.maps, before.maps, "{what}: mappings");
    assert!(
        after.rss_kib <= before.rss_kib + RSS_SLACK_KIB,
        "{what}: RSS grew from {} to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
}

/// VMs back to back in this process: `vmm::run` (1 and 2 vCPUs, exits,
/// faults, timeouts, a lazy region, a pre-opened directory) and
/// `Sandbox`es built, called and dropped.
#[test]
fn library_vms_back_to_back_stay_flat() {
    require_kvm!();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let one_arena = std::env::var("VESSEL_SOAK_ARENAS").map_or(true, |v| v != "default");
    if one_arena {
        // SAFETY: mallopt only sets how many arenas glibc creates for
        // threads that get one from now on; no memory changes hands.
        assert_eq!(unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) }, 1, "mallopt");
    }
    let scratch = std::env::temp_dir().join(format!("vessel-soak-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let guests = Guests::load(&scratch);
    let mut host = vmm::Host::open().unwrap();
    let (before, after, _) = soak(
        "library",
        count(),
        |i| guests.run_one(&mut host, i),
        || footprint("self").unwrap(),
    );
    let _ = std::fs::remove_dir_all(&scratch);
    if one_arena {
        assert_flat("library", before, after);
    } else {
        let same = |f: Footprint| (f.fds, f.threads, f.maps);
        assert_eq!(same(after), same(before), "library: fds, threads, mappings");
    }
}

/// One launcher process: `selftest -- stdin` blocks in the middle of its
/// run reading stdin; its footprint is taken there (the VM, its vCPU and
/// its mappings all live), then stdin closes and it must exit 0 having
/// read the line. Returns that footprint and the process's peak RSS.
#[expect(clippy::zombie_processes, reason = "reaped by wait4, for its rusage")]
fn launcher_process(selftest: &std::path::Path) -> (Footprint, u64) {
    let mut child = Command::new(selftest)
        .args(["--", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"soak\n").unwrap();
    // Blocked in read(0, ..) with the line taken: /proc/PID/syscall reads
    // "0 0x0 ..." (the call, then its first argument).
    let deadline = Instant::now() + Duration::from_secs(10);
    let fp = loop {
        let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if sc.starts_with("0 0x0 ") {
            if let Some(fp) = footprint(&pid) {
                if fp.threads >= 1 && fp.fds > 3 {
                    break fp;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "launcher {pid} never waited for stdin ({sc:?})"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    drop(stdin);
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid_t = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: waiting for our own child; both pointers are to live locals.
    let r = unsafe { libc::wait4(pid_t, &raw mut status, 0, &raw mut usage) };
    assert_eq!(r, pid_t, "wait4");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    assert_eq!(out.trim(), "read 5 bytes: soak");
    (fp, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

/// Launcher processes one after another: each one's footprint in the
/// middle of its run and its peak RSS stay what they were after the
/// warm-up (nothing on the host accumulates that a later launcher pays
/// for), and this process, which starts them, stays flat too.
#[test]
fn launcher_processes_back_to_back_stay_flat() {
    require_kvm!();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let selftest = app("selftest");
    let first = std::cell::Cell::new(None::<(Footprint, u64)>);
    let last = std::cell::Cell::new(None::<(Footprint, u64)>);
    let most = std::cell::Cell::new(0u64);
    let (before, after, _) = soak(
        "processes",
        count(),
        |i| {
            let (fp, peak) = launcher_process(&selftest);
            most.set(most.get().max(peak));
            if i == WARM_UP {
                first.set(Some((fp, peak)));
            }
            last.set(Some((fp, peak)));
        },
        || footprint("self").unwrap(),
    );
    let ((f0, p0), (f1, p1)) = (first.get().unwrap(), last.get().unwrap());
    eprintln!(
        "soak processes: launcher mid-run, first after the warm-up: {f0}, peak {p0} KiB; \
         last: {f1}, peak {p1} KiB; largest peak {} KiB",
        most.get()
    );
    assert_flat("this process", before, after);
    assert_eq!(
        (f1.fds, f1.threads, f1.maps),
        (f0.fds, f0.threads, f0.maps),
        "a launcher's fds, threads, mappings"
    );
    assert!(
        f1.rss_kib <= f0.rss_kib + RSS_SLACK_KIB,
        "a launcher's RSS: {f0} then {f1}"
    );
    assert!(
        p1 <= p0 + RSS_SLACK_KIB,
        "a launcher's peak RSS: {p0} then {p1} KiB"
    );
}
