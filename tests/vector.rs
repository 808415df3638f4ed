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
    let mut isas = vec!["scalar", "sse2"];
    if cpu_has("avx2") {
        isas.push("avx2");
    }
    if cpu_has("avx512f") {
        isas.push("avx512");
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
