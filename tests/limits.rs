//! Resource limits: CPU time ends the VM with its own exit code and one
//! line naming the limit; limit flags out of range are one-line usage
//! errors; tight limits still run a guest.

use vessel_tests::{require_kvm, run, texts};

#[test]
fn max_cpu_ends_a_spinning_guest_with_exit_152_and_one_line() {
    require_kvm!();
    let out = run(
        "selftest",
        &["--max-cpu", "1", "--timeout", "60", "--", "spin"],
    );
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(152), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("--max-cpu")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("--max-cpu of 1 s"), "{err}");
}

#[test]
fn limit_flags_out_of_range_are_one_line_errors() {
    require_kvm!();
    for (flag, value) in [
        ("--max-open-files", "0"),
        ("--max-open-files", "1025"),
        ("--max-pending-io", "0"),
        ("--fetch-threads", "65"),
        ("--max-cpu", "0"),
    ] {
        let out = run("hello", &[flag, value, "--", "x"]);
        let (_, err) = texts(&out);
        assert_eq!(out.status.code(), Some(125), "{flag} {value}: {err}");
        assert!(
            err.lines().next().is_some_and(|l| l.contains(flag)),
            "{flag}: {err}"
        );
    }
}

#[test]
fn tight_limits_still_run_a_guest() {
    require_kvm!();
    let out = run(
        "hello",
        &[
            "--max-open-files",
            "1",
            "--max-pending-io",
            "1",
            "--fetch-threads",
            "1",
            "--max-cpu",
            "30",
            "--",
            "x",
        ],
    );
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout.contains("Hello from a Vessel VM"), "{stdout}");
}
