//! A set of vCPUs (`--cpus N`), end to end on x86_64: threads on every
//! vCPU, an exact mutex-protected counter, wake-from-halt, and how an exit,
//! a panic or a fault on a secondary vCPU ends the whole VM.
//!
//! Each behaviour runs with 2 and 4 vCPUs (4 is more than this 2-core
//! machine has: the vCPUs share the cores, which the results must survive).

use vessel_tests::{require_kvm, run, texts};

fn selftest(cpus: u32, mode: &[&str]) -> (i32, String, String) {
    let cpus = cpus.to_string();
    let mut args = vec!["--cpus", &cpus, "--timeout", "60", "--"];
    args.extend_from_slice(mode);
    let out = run("selftest", &args);
    let (o, e) = texts(&out);
    (out.status.code().unwrap_or(-1), o, without_warning(&e))
}

/// stderr without the oversubscription warning (4 vCPUs on 2 cores).
fn without_warning(err: &str) -> String {
    err.lines()
        .filter(|l| !l.starts_with("vessel: warning: --cpus"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn every_vcpu_runs_a_thread_at_the_same_time() {
    require_kvm!();
    for n in [2, 4] {
        let (code, out, err) = selftest(n, &["smp-join"]);
        assert_eq!(code, 0, "{out}{err}");
        let want: String = (0..n).map(|i| format!("vcpu {i}: online\n")).collect();
        assert_eq!(out, format!("{want}joined {n} threads on {n} vCPUs\n"));
    }
}

#[test]
fn a_mutex_counter_incremented_a_million_times_ends_exact() {
    require_kvm!();
    for n in [2, 4] {
        let (code, out, err) = selftest(n, &["smp-counter", "1000000"]);
        assert_eq!((code, out.as_str()), (0, "count 1000000\n"), "{err}");
    }
}

#[test]
fn a_thread_halted_on_a_condvar_wakes_on_another_vcpu() {
    require_kvm!();
    for n in [2, 4] {
        let (code, out, err) = selftest(n, &["smp-wake"]);
        assert_eq!(code, 0, "{out}{err}");
        let vcpu: u32 = out
            .trim()
            .strip_prefix("woken true on vcpu ")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!((1..n).contains(&vcpu), "woke on a secondary vCPU: {out}");
    }
}

#[test]
fn parallel_for_covers_the_range_once() {
    require_kvm!();
    for n in [1, 2, 4] {
        let (code, out, err) = selftest(n, &["smp-parallel", "1000003"]);
        let sum: u64 = (0..1_000_003u64).sum();
        assert_eq!((code, out), (0, format!("sum {sum}\n")), "{err}");
    }
}

#[test]
fn exit_from_a_secondary_vcpu_ends_the_vm_once_with_its_code() {
    require_kvm!();
    for n in [2, 4] {
        let (code, out, err) = selftest(n, &["smp-exit", "9"]);
        assert_eq!((code, out.as_str()), (9, "main waits on vcpu 0\n"), "{err}");
        assert_eq!(err, "", "one exit, nothing else reported");
    }
}

#[test]
fn a_panic_on_a_secondary_vcpu_prints_its_message_and_exits_101() {
    require_kvm!();
    for n in [2, 4] {
        let (code, _, err) = selftest(n, &["smp-panic"]);
        assert_eq!(code, 101, "{err}");
        assert!(err.contains("panicked at"), "{err}");
        let line = err.lines().find(|l| l.starts_with("thread on vCPU"));
        let vcpu: u32 = line
            .and_then(|l| l.strip_prefix("thread on vCPU "))
            .and_then(|l| l.strip_suffix(" panics"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert!((1..n).contains(&vcpu), "{err}");
    }
}

#[test]
fn a_fault_on_a_secondary_vcpu_is_reported_with_its_number() {
    require_kvm!();
    for n in [2, 4] {
        let (code, out, err) = selftest(n, &["smp-fault"]);
        assert_eq!(code, 126, "{out}{err}");
        let vcpu: u32 = err
            .strip_prefix("vessel: vCPU ")
            .and_then(|r| r.split(':').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert!((1..n).contains(&vcpu), "{err}");
        assert!(
            err.contains("page fault (#PF)") && err.contains("cr2 0xdead0000"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn timeout_ends_every_vcpu() {
    require_kvm!();
    let t = std::time::Instant::now();
    let out = run("selftest", &["--cpus", "4", "--timeout", "1", "--", "spin"]);
    let (o, e) = texts(&out);
    assert_eq!(out.status.code(), Some(124), "{o}{e}");
    assert_eq!(o, "spinning\n");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn one_vcpu_runs_threads_on_the_joining_vcpu() {
    require_kvm!();
    let (code, out, err) = selftest(1, &["smp-counter", "10000"]);
    assert_eq!((code, out.as_str()), (0, "count 10000\n"), "{err}");
    let (code, out, err) = selftest(1, &["smp-join"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "vcpu 0: online\njoined 1 threads on 1 vCPUs\n"),
        "{err}"
    );
}

#[test]
fn more_vcpus_than_host_cpus_warn_but_run() {
    require_kvm!();
    let out = run("selftest", &["--cpus", "32", "--", "smp-parallel", "1000"]);
    let (o, err) = texts(&out);
    assert_eq!(
        (out.status.code(), o.as_str()),
        (Some(0), "sum 499500\n"),
        "{err}"
    );
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    if online < 32 {
        assert!(err.contains("warning: --cpus 32 is more than the"), "{err}");
    }
    let (code, _, err) = selftest(33, &["exit", "0"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--cpus 33 is outside 1..=32"), "{err}");
}

/// Lattice points with x, y in 0..r and x² + y² < r², counted column by
/// column with integer square roots (not the app's method).
fn lattice_points(r: u64) -> u64 {
    (0..r)
        .map(|x| {
            let d = r * r - x * x; // > 0
            (d - 1).isqrt() + 1
        })
        .sum()
}

#[test]
fn pi_on_several_vcpus_counts_the_known_lattice_points() {
    require_kvm!();
    let want = lattice_points(3000);
    for n in ["1", "2", "4"] {
        let out = run("pi", &["--cpus", n, "--", "--threads", n, "3000"]);
        let (o, e) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{o}{e}");
        assert!(o.starts_with(&format!("points {want}\npi 3.14")), "{o}");
        assert!(o.contains(&format!("threads {n} vcpus {n} ns ")), "{o}");
    }
    let out = run("pi", &["--", "--threads", "0"]);
    assert_eq!(out.status.code(), Some(2));
    // No --cpus: the app's own default, entry!(main, cpus = 2).
    let out = run("pi", &["3000"]);
    let (o, e) = texts(&out);
    assert!(o.contains("threads 2 vcpus 2 ns "), "{o}{e}");
}
