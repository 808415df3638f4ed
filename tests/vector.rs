//! Boots the `vector` app with each ISA the host supports and checks that
//! every kernel matched its scalar reference.

use std::process::{Command, Output};

const KERNELS: &[&str] = &["dot", "saxpy", "sum", "matmul", "gather"];

/// Runs the packed app, or None (the test recorded as skipped) when there
/// is no KVM.
fn run(args: &[&str]) -> Option<Output> {
    if !vessel_tests::kvm_or_skip() {
        return None;
    }
    Some(
        Command::new(vessel_tests::app("vector"))
            .arg("--")
            .args(args)
            .output()
            .expect("running vector"),
    )
}

fn cpu_has(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|w| w == flag))
        })
        .unwrap_or(false)
}

/// Asserts exit 0 and that each of `isas` has an ok line for every kernel
/// and a summary line; returns stdout.
fn assert_ok(out: &Output, isas: &[&str]) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let kernel_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| KERNELS.contains(&l.split_whitespace().next().unwrap_or("")))
        .collect();
    assert_eq!(kernel_lines.len(), KERNELS.len() * isas.len(), "{stdout}");
    for l in &kernel_lines {
        assert!(l.contains(" ok "), "kernel line not ok: {l}");
    }
    for isa in isas {
        for k in KERNELS {
            let tag = format!("isa={isa} ");
            assert!(
                kernel_lines
                    .iter()
                    .any(|l| l.split_whitespace().next() == Some(k) && l.contains(&tag)),
                "no ok line for {k} with isa={isa}:\n{stdout}"
            );
        }
        assert!(
            stdout.contains(&format!("vector: all kernels ok (isa={isa},")),
            "no summary for {isa}:\n{stdout}"
        );
    }
    stdout
}

fn isa_test(isa: &str) {
    if let Some(out) = run(&["--isa", isa]) {
        let stdout = assert_ok(&out, &[isa]);
        // Only the requested ISA ran.
        for l in stdout.lines().filter(|l| l.contains(" isa=")) {
            assert!(l.contains(&format!("isa={isa} ")), "unexpected ISA: {l}");
        }
    }
}

#[test]
fn scalar() {
    isa_test("scalar");
}

#[test]
fn sse2() {
    isa_test("sse2");
}

/// The plain-Rust kernels of `vessel-kernels` at the SSE2 baseline.
#[test]
fn rust_sse2() {
    isa_test("rust-sse2");
}

#[test]
fn rust_avx2() {
    isa_or_refusal("rust-avx2", "avx2");
}

#[test]
fn rust_avx512() {
    isa_or_refusal("rust-avx512", "avx512f");
}

/// A host without the ISA: the guest sees the same CPUID, so asking for it
/// is the documented refusal (exit 3, one line naming what is available),
/// and no kernel runs.
fn unavailable_isa_test(isa: &str) {
    if let Some(out) = run(&["--isa", isa]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "stderr:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "want a one-line error, got:\n{stderr}");
        assert!(
            lines[0].contains(&format!("`{isa}` is not available")) && lines[0].contains("sse2"),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(" ok "));
    }
}

/// Runs `isa` where the host CPU has `flag`, else checks the refusal.
fn isa_or_refusal(isa: &str, flag: &str) {
    if cpu_has(flag) {
        isa_test(isa);
    } else {
        unavailable_isa_test(isa);
    }
}

#[test]
fn avx2() {
    isa_or_refusal("avx2", "avx2");
}

#[test]
fn avx512() {
    isa_or_refusal("avx512", "avx512f");
}

#[test]
fn all() {
    let mut isas = vec!["scalar", "rust-sse2", "sse2"];
    if cpu_has("avx2") {
        isas.extend(["rust-avx2", "avx2"]);
    }
    if cpu_has("avx512f") {
        isas.extend(["rust-avx512", "avx512"]);
    }
    if let Some(out) = run(&["--all"]) {
        assert_ok(&out, &isas);
    }
}

#[test]
fn default_is_best() {
    let best = if cpu_has("avx512f") {
        "avx512"
    } else if cpu_has("avx2") {
        "avx2"
    } else {
        "sse2"
    };
    if let Some(out) = run(&[]) {
        assert_ok(&out, &[best]);
    }
}

#[test]
fn unknown_isa_is_an_error() {
    if let Some(out) = run(&["--isa", "mmx9000"]) {
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "want a one-line error, got:\n{stderr}");
        assert!(lines[0].contains("mmx9000"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(" ok "));
    }
}

/// `--bench` times every available table and Mandelbrot: one line per
/// case with positive operations and time, the same cases the host's
/// native run of `vessel_kernels::bench` produces.
#[test]
fn bench_lines_cover_every_native_case() {
    let Some(out) = run(&["--bench"]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut guest: Vec<String> = Vec::new();
    for l in stdout.lines().filter_map(|l| l.strip_prefix("bench ")) {
        let kv: std::collections::HashMap<&str, &str> = l
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        assert!(kv["ops"].parse::<u64>().unwrap() > 0, "{l}");
        assert!(kv["ns"].parse::<f64>().unwrap() > 0.0, "{l}");
        guest.push(format!("{}/{}/{}", kv["kernel"], kv["impl"], kv["isa"]));
    }
    let mut native = Vec::new();
    vessel_kernels::bench::run(&mut vessel_kernels::available(), &|| 0, &mut |s| {
        native.push(format!("{}/{}/{}", s.kernel, s.imp, s.isa));
    });
    assert_eq!(guest, native);
}

/// Mandelbrot's total iteration count (the `ops` of its bench line, which
/// the guest computed with its own run of the f64 kernel) equals the
/// host's: the same code gives the same escape times in the guest as
/// natively, and is not the soft-float build's.
#[test]
fn mandelbrot_checksum_is_the_same_natively() {
    let mut grid = vec![0u32; 48 * 32];
    let total = vessel_kernels::mandelbrot(&mut grid, 48, 32, 256);
    let Some(out) = run(&["--bench", "--isa", "scalar"]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("bench kernel=mandelbrot"))
        .unwrap_or_else(|| panic!("no mandelbrot line: {stdout}"));
    assert!(
        line.contains(&format!(" ops={total} ")),
        "{line} vs native {total}"
    );
}

/// `--threads N` on N vCPUs: every kernel of every table this host has,
/// split across the vCPUs, still matches the scalar reference.
#[test]
fn threads_split_every_kernel_across_vcpus() {
    let mut isas = vec!["scalar", "rust-sse2", "sse2"];
    if cpu_has("avx2") {
        isas.extend(["rust-avx2", "avx2"]);
    }
    if cpu_has("avx512f") {
        isas.extend(["rust-avx512", "avx512"]);
    }
    for n in ["2", "4"] {
        if !vessel_tests::kvm_or_skip() {
            return;
        }
        let out = Command::new(vessel_tests::app("vector"))
            .args(["--cpus", n, "--", "--all", "--threads", n])
            .output()
            .expect("running vector");
        assert_ok(&out, &isas);
    }
}
