//! The launcher's command line as a user meets it: mistyped flags, usage
//! errors, and `vessel run` of a packed app.

use vessel_abi::exit;
use vessel_tests::{app, require_kvm, run, texts, vessel};

#[test]
fn a_mistyped_launcher_flag_is_an_error_naming_the_closest() {
    // Refused before KVM is opened: no guest runs with the default memory.
    for (args, closest) in [
        (&["--mme", "1G"][..], "--mem"),
        (&["--timout=5", "world"], "--timeout"),
        (&["world", "--lazzy", "x=y"], "--lazy"),
    ] {
        let o = run("hello", args);
        let (out, err) = texts(&o);
        assert_eq!(
            o.status.code(),
            Some(exit::LAUNCHER_ERROR),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("hello: error: unknown launcher flag `"),
            "{err}"
        );
        assert!(
            err.contains(&format!("(did you mean `{closest}`?)")),
            "{err}"
        );
        assert!(err.contains("the app's own flags go after `--`"), "{err}");
        assert!(out.is_empty(), "{out}");
    }
    let guest = vessel_tests::guest_elf("hello");
    let o = vessel(&["run", guest.to_str().unwrap(), "--cpu", "2"]);
    let err = texts(&o).1;
    assert_eq!(o.status.code(), Some(exit::LAUNCHER_ERROR), "{err}");
    assert!(
        err.starts_with("vessel: error: unknown launcher flag `--cpu` (did you mean `--cpus`?)"),
        "{err}"
    );
}

#[test]
fn app_flags_after_the_separator_reach_the_app() {
    require_kvm!();
    let o = run("hello", &["--mem", "64M", "--", "--mme", "1G"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        out.lines().nth(1),
        Some(r#"args: ["--mme", "1G"]"#),
        "{out}"
    );
}

#[test]
fn help_states_the_separator_rule() {
    let o = run("hello", &["--help"]);
    let out = texts(&o).0;
    assert_eq!(o.status.code(), Some(0));
    assert!(out.contains("the app's own flags go after `--`"), "{out}");
    let o = vessel(&["run", "--help"]);
    assert!(texts(&o).0.contains("the app's own flags go after `--`"));
}

#[test]
fn usage_errors_are_one_line_and_a_hint() {
    for (args, hint) in [
        (&["--mem", "lots"][..], "hello: hint: see `hello --help`"),
        (&["--mem"], "hello: hint: see `hello --help`"),
    ] {
        let o = run("hello", args);
        let err = texts(&o).1;
        assert_eq!(o.status.code(), Some(exit::LAUNCHER_ERROR), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(lines[0].starts_with("hello: error: "), "{err}");
        assert!(lines[0].contains("--mem"), "{err}");
        assert_eq!(lines[1], hint, "{err}");
    }
    let o = vessel(&["frobnicate"]);
    let err = texts(&o).1;
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.starts_with("vessel: error: unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
}

#[test]
fn vessel_run_of_a_packed_app_runs_its_guest() {
    require_kvm!();
    let packed = app("hello");
    let o = vessel(&["run", packed.to_str().unwrap(), "world"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        out, "Hello from a Vessel VM on x86_64!\nargs: [\"world\"]\n",
        "{err}"
    );
}
