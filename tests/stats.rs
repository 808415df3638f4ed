//! `--stats` and `--stats-json FILE`: the report matches what the guest
//! did (one exit hypercall for hello, its output's bytes, every lazy page
//! fetched once, faults async or sync as configured).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use vessel_tests::require_kvm;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vessel-stats-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `app` with launcher flags `launcher` and `--stats-json`; its output
/// and the parsed report.
fn with_stats(app: &str, launcher: &[&str], args: &[&str], tag: &str) -> (Output, Value) {
    let json = tmp(tag).join("stats.json");
    let out = Command::new(vessel_tests::app(app))
        .args(launcher)
        .arg("--stats-json")
        .arg(&json)
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    (out, serde_json::from_str(&text).unwrap())
}

fn n(v: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path} in {v}"))
}

fn us(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn hello_is_one_exit_hypercall_and_its_bytes() {
    require_kvm!();
    let (out, s) = with_stats("hello", &[], &["a", "b"], "hello");
    assert_eq!(n(&s, "hypercalls.exit"), 1, "{s}");
    assert_eq!(s["hypercalls"].as_object().unwrap().len(), 1, "{s}");
    assert_eq!(n(&s, "exits.hypercall"), 1, "{s}");
    assert_eq!(n(&s, "exits.fatal"), 0, "{s}");
    assert_eq!(n(&s, "bytes_written"), out.stdout.len() as u64, "{s}");
    assert_eq!(n(&s, "bytes_read"), 0);
    assert_eq!(n(&s, "pages_fetched"), 0);
    let (entry, guest, launcher) = (
        us(&s, "launch_to_entry_us"),
        us(&s, "guest_run_us"),
        us(&s, "launcher_us"),
    );
    assert!(entry > 0.0 && guest > 0.0 && launcher >= entry, "{s}");
}

#[test]
fn stats_table_goes_to_stderr_and_leaves_stdout_alone() {
    require_kvm!();
    let plain = Command::new(vessel_tests::app("hello")).output().unwrap();
    let out = Command::new(vessel_tests::app("hello"))
        .arg("--stats")
        .output()
        .unwrap();
    assert_eq!(out.stdout, plain.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    for item in [
        "vessel stats:",
        "exits ",
        "hypercalls             exit 1",
        "async page faults",
        "pages fetched",
        "bytes read/written     0 / ",
        "launch to entry",
        "guest run",
        "launcher",
    ] {
        assert!(err.contains(item), "no `{item}` in:\n{err}");
    }
}

/// Every page of the region is fetched exactly once; with async page
/// faults each is a "not present" with its "ready", without them each is
/// synchronous.
#[test]
fn lazy_pages_and_async_faults_are_counted() {
    require_kvm!();
    let pages = 40;
    let file = tmp("lazy").join("data.bin");
    std::fs::write(&file, vessel_tests::lazy_test_bytes(pages * 4096).0).unwrap();
    let lazy = format!("data={}", file.display());
    let (_, s) = with_stats("lazyscan", &["--lazy", &lazy], &["--tasks", "4"], "async");
    assert_eq!(n(&s, "pages_fetched"), pages as u64, "{s}");
    if vessel_tests::host_has_cap("KVM_CAP_ASYNC_PF_INT") {
        assert_eq!(n(&s, "async_pf.not_present"), pages as u64, "{s}");
        assert_eq!(n(&s, "async_pf.ready"), pages as u64, "{s}");
        assert_eq!(n(&s, "hypercalls.apf_enable"), 1, "{s}");
    }
    let (_, s) = with_stats(
        "lazyscan",
        &["--lazy", &lazy, "--no-async-pf"],
        &["--tasks", "4"],
        "sync",
    );
    assert_eq!(n(&s, "pages_fetched"), pages as u64, "{s}");
    assert_eq!(n(&s, "async_pf.sync"), pages as u64, "{s}");
    assert_eq!(n(&s, "async_pf.not_present"), 0, "{s}");
}

#[test]
fn unwritable_stats_file_is_a_one_line_error_before_boot() {
    require_kvm!();
    let out = Command::new(vessel_tests::app("hello"))
        .args(["--stats-json", "/nonexistent-dir/stats.json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent-dir/stats.json"), "{err}");
    assert!(out.stdout.is_empty(), "the guest did not run");
}
