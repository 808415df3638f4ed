//! Async page faults and the task executor, end to end: lazyscan over lazy
//! regions, checked against sums computed here.
//!
//! Needs `cargo xtask build` first (VESSEL_DIR, default <repo>/target/vessel);
//! skipped with a reason when /dev/kvm is missing, and those that need
//! KVM's async page faults when this host's KVM does not offer them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vessel_tests::require_kvm;

/// KVM and its async page faults ("page ready" as an interrupt), or the
/// calling test is recorded as skipped with the reason.
fn async_pf_or_skip() -> bool {
    if !vessel_tests::kvm_or_skip() {
        return false;
    }
    if vessel_tests::host_has_cap("KVM_CAP_ASYNC_PF_INT") {
        return true;
    }
    vessel_tests::skip("this host's KVM offers no async page faults (KVM_CAP_ASYNC_PF_INT)");
    false
}

/// A deterministic data file of `len` bytes in a fresh temp dir.
fn data_file(tag: &str, len: usize) -> (PathBuf, u64) {
    let dir = std::env::temp_dir().join(format!("vessel-apf-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bytes, sum) = vessel_tests::lazy_test_bytes(len);
    let p = dir.join("data.bin");
    std::fs::write(&p, bytes).unwrap();
    (p, sum)
}

fn lazyscan(launcher: &[&str], app: &[&str]) -> Output {
    Command::new(vessel_tests::app("lazyscan"))
        .args(["--timeout", "60"])
        .args(launcher)
        .arg("--")
        .args(app)
        .output()
        .unwrap()
}

struct Report {
    stdout: String,
    total: u64,
    stat: std::collections::HashMap<String, String>,
}

fn ok(out: Output) -> Report {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lazyscan failed ({:?}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let total = stdout.lines().last().unwrap().trim().parse().unwrap();
    let stat = stdout
        .lines()
        .filter(|l| l.starts_with("apf:"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Report {
        stdout,
        total,
        stat,
    }
}

impl Report {
    fn n(&self, k: &str) -> u64 {
        self.stat[k].parse().unwrap()
    }
    /// Every "not present" got exactly one "ready", and none came unasked.
    fn assert_paired(&self) {
        assert_eq!(self.n("not_present"), self.n("ready"), "{}", self.stdout);
        assert_eq!(self.n("unmatched"), 0, "{}", self.stdout);
        assert_eq!(self.n("duplicate"), 0, "{}", self.stdout);
    }
}

fn lazy_arg(p: &Path) -> String {
    format!("data={}", p.display())
}

#[test]
fn sum_matches_the_host() {
    require_kvm!();
    let (p, sum) = data_file("sum", 1_000_003);
    let r = ok(lazyscan(&["--lazy", &lazy_arg(&p)], &[]));
    assert_eq!(r.total, sum);
    r.assert_paired();
}

#[test]
fn tokens_pair_up_under_latency() {
    if !async_pf_or_skip() {
        return;
    }
    let (p, sum) = data_file("pair", 256 * 4096);
    let r = ok(lazyscan(
        &["--lazy", &lazy_arg(&p), "--lazy-latency", "5"],
        &["--tasks", "8"],
    ));
    assert_eq!(r.total, sum);
    assert_eq!(r.stat["enabled"], "true", "this host offers async PF");
    assert!(r.n("not_present") > 0, "{}", r.stdout);
    r.assert_paired();
    assert!(
        r.n("max_outstanding") > 1,
        "faults overlapped: {}",
        r.stdout
    );
}

/// Float-heavy tasks (compiler-generated SSE2/NEON code with vector and
/// scalar float registers live) parked and resumed across async page
/// faults while other tasks use the same registers: every task's result
/// matches the host's bit for bit, and a second pass with every page
/// present gives the same bits again (`--passes 2`).
#[test]
fn float_state_survives_faults_bit_for_bit() {
    if !async_pf_or_skip() {
        return;
    }
    let (bytes, _) = vessel_tests::lazy_test_bytes(128 * 4096);
    let (p, _) = data_file("float", bytes.len());
    let r = ok(lazyscan(
        &["--lazy", &lazy_arg(&p), "--lazy-latency", "2"],
        &["--tasks", "8", "--float", "--passes", "2"],
    ));
    assert_eq!(r.total, vessel_tests::float_fingerprint(&bytes, 8));
    assert!(r.n("not_present") >= 8, "{}", r.stdout);
    assert!(r.n("max_outstanding") > 1, "tasks overlapped: {}", r.stdout);
    r.assert_paired();
}

#[test]
fn no_async_pf_gives_the_same_sum_synchronously() {
    require_kvm!();
    let (p, sum) = data_file("sync", 300 * 1024);
    let r = ok(lazyscan(
        &[
            "--lazy",
            &lazy_arg(&p),
            "--lazy-latency",
            "1",
            "--no-async-pf",
        ],
        &[],
    ));
    assert_eq!(r.total, sum);
    assert_eq!(r.stat["enabled"], "false");
    assert_eq!(r.n("not_present"), 0);
    assert_eq!(r.n("ready"), 0);
}

#[test]
fn storm_of_simultaneous_first_touches() {
    if !async_pf_or_skip() {
        return;
    }
    let (p, sum) = data_file("storm", 64 * 4096);
    let r = ok(lazyscan(
        &["--lazy", &lazy_arg(&p), "--lazy-latency", "20"],
        &["--tasks", "64", "--storm"],
    ));
    assert_eq!(r.total, sum);
    r.assert_paired();
    // One page per task, all touched at once: faults overlapped, shown by
    // the counters (how many overlap depends on timing, not asserted).
    assert!(r.n("not_present") > 0, "{}", r.stdout);
    assert!(
        r.n("max_outstanding") > 1,
        "faults overlapped: {}",
        r.stdout
    );
}

/// The storm with 2 and 4 vCPUs: async page faults stay vCPU 0's (its
/// tokens pair up exactly) while the other vCPUs idle, halted.
#[test]
fn storm_with_several_vcpus() {
    if !async_pf_or_skip() {
        return;
    }
    let (p, sum) = data_file("storm-smp", 64 * 4096);
    for cpus in ["2", "4"] {
        let r = ok(lazyscan(
            &[
                "--cpus",
                cpus,
                "--lazy",
                &lazy_arg(&p),
                "--lazy-latency",
                "20",
            ],
            &["--tasks", "64", "--storm"],
        ));
        assert_eq!(r.total, sum, "--cpus {cpus}");
        r.assert_paired();
        assert!(r.n("max_outstanding") > 1, "--cpus {cpus}: {}", r.stdout);
    }
}

/// Threads on every vCPU fault on lazy pages at once: vCPU 0 through async
/// page faults, the others waiting for their pages; the sum is exact.
#[test]
fn threads_on_several_vcpus_sum_a_lazy_region() {
    require_kvm!();
    let (p, sum) = data_file("threads", 200 * 4096 + 17);
    for cpus in ["1", "2", "4"] {
        let r = ok(lazyscan(
            &[
                "--cpus",
                cpus,
                "--lazy",
                &lazy_arg(&p),
                "--lazy-latency",
                "2",
            ],
            &["--threads"],
        ));
        assert_eq!(r.total, sum, "--cpus {cpus}");
        assert!(r.stdout.contains(&format!("tasks={cpus} ")), "{}", r.stdout);
        r.assert_paired();
    }
}

#[test]
fn halted_vcpu_wakes_on_page_ready_and_timers() {
    if !async_pf_or_skip() {
        return;
    }
    // One task: while it is parked nothing is runnable, so the vCPU halts
    // (Wait) and only "page ready" can wake it; a sleeping task adds timer
    // wake-ups to the mix.
    let (p, sum) = data_file("halt", 8 * 4096);
    let r = ok(lazyscan(
        &["--lazy", &lazy_arg(&p), "--lazy-latency", "30"],
        &["--tasks", "1", "--sleep-ms", "50"],
    ));
    assert_eq!(r.total, sum);
    assert!(r.n("not_present") >= 8, "{}", r.stdout);
    r.assert_paired();
}

#[test]
fn region_larger_than_file_reads_zeros() {
    require_kvm!();
    let (p, sum) = data_file("short", 5000);
    let arg = format!("data={}:{}", p.display(), 3 * 4096 + 100);
    let r = ok(lazyscan(&["--lazy", &arg], &[]));
    assert_eq!(r.total, sum);
    assert!(
        r.stdout.contains(&format!("bytes={}", 3 * 4096 + 100)),
        "{}",
        r.stdout
    );
}

fn launch_error(arg: &str) -> String {
    let out = lazyscan(&["--lazy", arg], &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn bad_lazy_files_are_clear_errors_before_boot() {
    require_kvm!();
    let (p, _) = data_file("bad", 10);
    let dir = p.parent().unwrap();
    let e = launch_error(&format!("data={}", dir.join("missing").display()));
    assert!(e.contains("cannot open") && e.contains("missing"), "{e}");
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(launch_error(&format!("data={}", empty.display())).contains("is empty"));
    assert!(launch_error(&format!("data={}", dir.display())).contains("not a regular file"));
    assert!(launch_error(&format!("data={}:4", p.display())).contains("smaller"));
    // An empty file with an explicit size is a zero-filled region.
    let r = ok(lazyscan(
        &["--lazy", &format!("data={}:8192", empty.display())],
        &[],
    ));
    assert_eq!(r.total, 0);
}

#[test]
fn writing_a_lazy_region_is_a_fatal_page_fault() {
    require_kvm!();
    let (p, _) = data_file("write", 4096);
    let out = lazyscan(&["--lazy", &lazy_arg(&p)], &["--write"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{err}");
    assert!(
        err.contains("page fault") && err.contains("protection, write, user"),
        "{err}"
    );
}
