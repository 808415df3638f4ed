//! The build tool's command line, run as a user runs it: `--help` has no
//! side effects, errors are one line, unknown apps are refused up front.
//!
//! Each run gets an empty PATH: had it tried to run cargo or rustup (a
//! build, a setup), it would fail instead of printing help.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    let empty = std::env::temp_dir().join(format!("xtask-cli-empty-path-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("PATH", &empty)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_exits_0_and_builds_nothing() {
    for args in [
        &["--help"][..],
        &["help"],
        &["build", "--help"],
        &["run", "--help"],
        &["run", "hello", "--help"],
        &["setup", "--help"],
        &["test", "--help"],
        &["bench", "--help"],
    ] {
        let out = xtask(args);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(stdout.contains("Usage: cargo xtask"), "{args:?}: {stdout}");
    }
}

#[test]
fn an_unknown_app_is_one_line_naming_the_apps_before_any_build() {
    for args in [&["run", "helo", "--", "x"][..], &["build", "hello", "nope"]] {
        let out = xtask(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("xtask: error: no app named `"),
            "{stderr}"
        );
        assert!(stderr.contains("hello, "), "{stderr}");
        assert!(!stderr.contains("acktrace"), "{stderr}");
    }
    assert!(text(&xtask(&["run", "helo"]).stderr).contains("did you mean `hello`?"));
}

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    for args in [
        &["bogus"][..],
        &["build", "--arch", "sparc"],
        &["bench", "boot", "--runs", "0"],
    ] {
        let out = xtask(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.ends_with("(see `cargo xtask --help`)\n"), "{stderr}");
    }
}

#[test]
fn a_failing_step_is_one_line_and_backtrace_is_opt_in() {
    // With no rustup on PATH, setup fails: one line by default...
    let out = xtask(&["setup"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("xtask: error: rustup is needed"),
        "{stderr}"
    );
    // ...and the multi-line report with --backtrace.
    let out = xtask(&["setup", "--backtrace"]);
    assert!(
        text(&out.stderr).lines().count() > 1,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn setup_says_what_it_checked() {
    // The real PATH: `cargo xtask test` has run setup already, so this
    // installs nothing and must still say what it found.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("setup")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .contains("xtask: setup (x86_64): rustup targets x86_64-unknown-linux-musl installed"),
        "{stderr}"
    );
}
