//! Helpers for integration tests that boot real guests.
//!
//! Tests find packed apps in `$VESSEL_DIR` (set by `cargo xtask test`),
//! else in `<repo>/target/vessel`; `cargo xtask test` builds the apps first.
//!
//! A test that needs something this host lacks (/dev/kvm, a CPU feature,
//! async page faults) calls [`skip`] and returns: it is reported as
//! skipped, not passed, and with `VESSEL_REQUIRE_KVM=1` it fails instead.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Directory of packed apps.
pub fn vessel_dir() -> PathBuf {
    std::env::var_os("VESSEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/vessel"))
}

/// The packed app `name`; panics with the fix if it was not built.
pub fn app(name: &str) -> PathBuf {
    let p = vessel_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build` (or `cargo xtask test`)",
        p.display()
    );
    p
}

/// Record that the calling test skips, and why; the caller then returns.
///
/// Prints `SKIP <test>: <reason>` and appends `VESSEL-SKIP <test>: <reason>`
/// to the file `$VESSEL_SKIP_LOG` names (set by `cargo xtask test`, which
/// counts these as skipped rather than passed). With `VESSEL_REQUIRE_KVM=1`
/// (CI) a skip is a failure: this panics.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    // libtest runs each test on a thread named after it.
    let test = thread.name().unwrap_or("<unnamed test>");
    if std::env::var_os("VESSEL_REQUIRE_KVM").is_some_and(|v| v == "1") {
        panic!(
            "{test} cannot run here ({reason}), and VESSEL_REQUIRE_KVM=1 makes a skip a failure"
        );
    }
    eprintln!("SKIP {test}: {reason}");
    if let Some(log) = std::env::var_os("VESSEL_SKIP_LOG") {
        use std::io::Write;
        let line = format!("VESSEL-SKIP {test}: {reason}\n");
        // One short O_APPEND write per skip: lines from parallel tests and
        // test binaries do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "{test}: cannot record a skip in {}: {e}",
                log.to_string_lossy()
            );
        }
    }
}

/// Whether this machine can run guests; when it cannot, the calling test
/// is recorded as skipped ([`skip`]) with the reason.
pub fn kvm_or_skip() -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            skip(&format!(
                "/dev/kvm is not usable ({e}); guests cannot boot here"
            ));
            false
        }
    }
}

/// Run a packed app with arguments and optional stdin; wait for it.
pub fn run(name: &str, args: &[&str]) -> Output {
    run_with_stdin(name, args, None)
}

pub fn run_with_stdin(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(app(name));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn packed app");
    if let Some(data) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin piped");
        s.write_all(data).expect("write stdin");
    }
    child.wait_with_output().expect("wait for app")
}

/// stdout and stderr as strings.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Skip the calling test (record it and return) when KVM is unavailable.
#[macro_export]
macro_rules! require_kvm {
    () => {
        if !$crate::kvm_or_skip() {
            return;
        }
    };
}

/// The unpacked launcher (`vessel`), built next to the packed apps.
pub fn vessel_bin() -> PathBuf {
    let p = std::env::var_os("VESSEL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/vessel")
        });
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build`",
        p.display()
    );
    p
}

/// Run the unpacked launcher with arguments.
pub fn vessel(args: &[&str]) -> Output {
    Command::new(vessel_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vessel")
}

/// Whether `vessel caps` reports the KVM capability `cap` as present.
pub fn host_has_cap(cap: &str) -> bool {
    let out = vessel(&["caps"]);
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some(cap) && w.any(|x| x == "present")
    })
}

/// The unpacked guest ELF of an app (x86_64).
pub fn guest_elf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-musl/release")
        .join(name)
}

/// Deterministic bytes for lazy-region tests and benchmarks (xorshift32,
/// seeded by the length), and their sum as unsigned bytes. One definition
/// for the x86_64 tests, the arm64 suite and `cargo xtask bench apf`, so
/// their expected sums cannot drift apart.
pub fn lazy_test_bytes(len: usize) -> (Vec<u8>, u64) {
    let mut x: u32 = 0x1234_5678 ^ len as u32;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let sum = bytes.iter().map(|&b| u64::from(b)).sum();
    (bytes, sum)
}

/// What `lazyscan --float -- --tasks TASKS` prints as its total for a lazy
/// region of `bytes`: the wrapping sum of `vessel_kernels::fingerprint`
/// over the same page-aligned shares the app gives its tasks. Computed on
/// the host, so a guest whose vector state was lost across a fault or a
/// task switch cannot match it.
pub fn float_fingerprint(bytes: &[u8], tasks: usize) -> u64 {
    const PAGE: usize = 4096;
    let per = bytes.len().div_ceil(PAGE).div_ceil(tasks) * PAGE;
    bytes
        .chunks(per)
        .map(vessel_kernels::fingerprint)
        .fold(0, u64::wrapping_add)
}

/// What a process holds: resident memory, open file descriptors, threads
/// and memory mappings, read from /proc (soak and leak tests compare
/// these before and after many runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// Entries of /proc/PID/fd.
    pub fds: usize,
    /// Entries of /proc/PID/task.
    pub threads: usize,
    /// Lines of /proc/PID/maps.
    pub maps: usize,
}

/// The footprint of process `pid` ("self" for this one); `None` once the
/// process is gone.
pub fn footprint(pid: &str) -> Option<Footprint> {
    let dir = format!("/proc/{pid}");
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())?;
    let count = |sub: &str| std::fs::read_dir(format!("{dir}/{sub}")).map(|d| d.count());
    let maps = std::fs::read_to_string(format!("{dir}/maps")).ok()?;
    Some(Footprint {
        rss_kib,
        fds: count("fd").ok()?,
        threads: count("task").ok()?,
        maps: maps.lines().count(),
    })
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {} KiB, {} fds, {} threads, {} mappings",
            self.rss_kib, self.fds, self.threads, self.maps
        )
    }
}

extern crate alloc;

/// apps/heap's allocation kernels (`cargo xtask bench alloc`), compiled
/// natively: the x86_64 tests and the arm64 suite compare the guest's
/// checksums with these.
#[path = "../apps/heap/src/kernel.rs"]
pub mod heap_kernels;
