//! Boot real x86_64 guests and check what they report: output, arguments,
//! environment, exit codes, panics, exceptions, timeouts and bad input.

use vessel_abi::exit;
use vessel_tests::{guest_elf, require_kvm, run, run_with_stdin, texts, vessel};

#[test]
fn hello_greets_and_echoes_arguments() {
    require_kvm!();
    let o = run("hello", &["world", "two words"]);
    let (out, err) = texts(&o);
    assert_eq!(
        out, "Hello from a Vessel VM on x86_64!\nargs: [\"world\", \"two words\"]\n",
        "stderr: {err}"
    );
    assert_eq!(o.status.code(), Some(0), "hello exits 0: {err}");
}

#[test]
fn app_exit_code_becomes_the_process_exit_code() {
    require_kvm!();
    for code in [0, 1, 42, 200] {
        let o = run("selftest", &["exit", &code.to_string()]);
        assert_eq!(o.status.code(), Some(code), "{:?}", texts(&o));
    }
}

#[test]
fn reserved_app_exit_codes_are_remapped_with_a_warning() {
    require_kvm!();
    let o = run("selftest", &["exit", &exit::GUEST_FAULT.to_string()]);
    assert_eq!(o.status.code(), Some(exit::APP_CODE_RESERVED));
    assert!(texts(&o).1.contains("collides with a code Vessel reserves"));
}

#[test]
fn launcher_flags_come_before_app_arguments() {
    require_kvm!();
    let o = run("hello", &["--mem", "32M", "--", "--mem", "x"]);
    assert_eq!(texts(&o).0.lines().nth(1), Some("args: [\"--mem\", \"x\"]"));
    // The first argument that is not a launcher flag starts the app's
    // arguments; the app's own flags go after `--`.
    let o = run("hello", &["--mem", "32M", "world", "-x"]);
    assert_eq!(
        texts(&o).0.lines().nth(1),
        Some("args: [\"world\", \"-x\"]")
    );
    let o = run("hello", &["--", "--tasks", "4"]);
    assert_eq!(
        texts(&o).0.lines().nth(1),
        Some("args: [\"--tasks\", \"4\"]")
    );
}

#[test]
fn packed_app_help_lists_launcher_flags() {
    require_kvm!();
    let o = run("hello", &["--help"]);
    let out = texts(&o).0;
    assert_eq!(o.status.code(), Some(0));
    for flag in ["--mem", "--timeout", "--env", "--cpus", "--stack"] {
        assert!(out.contains(flag), "help lacks {flag}: {out}");
    }
}

#[test]
fn environment_is_only_what_the_launcher_passes() {
    require_kvm!();
    let o = run("selftest", &["-e", "COLOR=blue", "env", "COLOR"]);
    assert_eq!(texts(&o).0, "COLOR=blue\n");
    assert_eq!(o.status.code(), Some(0));
    // Host variables do not leak in unless named.
    let o = run("selftest", &["env", "PATH"]);
    assert_eq!(texts(&o).0, "PATH unset\n");
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn panic_prints_message_and_location_and_exits_101() {
    require_kvm!();
    let o = run("selftest", &["panic"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(exit::PANIC));
    assert!(
        out.contains("about to index"),
        "output before the panic is flushed: {out}"
    );
    assert!(
        err.contains("panicked at apps/selftest/src/main.rs:"),
        "{err}"
    );
    assert!(err.contains("index out of bounds"), "{err}");
}

#[test]
fn unmapped_store_is_a_diagnosed_page_fault() {
    require_kvm!();
    let o = run("selftest", &["fault"]);
    let (out, err) = texts(&o);
    assert_eq!(
        out, "storing to 0xdead0000\n",
        "the launcher prints what the crashed guest had buffered"
    );
    assert_eq!(o.status.code(), Some(exit::GUEST_FAULT), "{err}");
    assert!(err.contains("page fault (#PF), vector 14"), "{err}");
    assert!(err.contains("cr2 0xdead0000"), "{err}");
    assert!(err.contains("[not-present, write, user]"), "{err}");
    assert!(
        err.contains("rip 0x") && err.contains(" <"),
        "the fault names the function: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn null_dereference_hits_the_guard_page() {
    require_kvm!();
    let o = run("selftest", &["null"]);
    let err = texts(&o).1;
    assert_eq!(o.status.code(), Some(exit::GUEST_FAULT));
    assert!(err.contains("cr2 0x8,"), "{err}");
}

#[test]
fn invalid_opcode_is_diagnosed() {
    require_kvm!();
    let o = run("selftest", &["ud"]);
    let err = texts(&o).1;
    assert_eq!(o.status.code(), Some(exit::GUEST_FAULT));
    assert!(err.contains("invalid opcode (#UD), vector 6"), "{err}");
}

#[test]
fn timeout_ends_a_spinning_guest() {
    require_kvm!();
    // The exit code and message show that the timeout ended it (a guest
    // the timeout missed would spin for ever, so no clock is read here).
    let o = run("selftest", &["--timeout", "0.3", "spin"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(exit::TIMEOUT), "{err}");
    assert_eq!(
        out, "spinning\n",
        "buffered output of a guest that never exits is printed"
    );
    assert!(err.contains("timed out after"), "{err}");
}

#[test]
fn abort_prints_the_message_and_exits_134() {
    require_kvm!();
    let o = run("selftest", &["abort", "out of widgets"]);
    assert_eq!(o.status.code(), Some(exit::ABORT));
    assert!(texts(&o).1.contains("guest aborted: out of widgets"));
}

#[test]
fn heap_serves_large_allocations_and_reports_exhaustion() {
    require_kvm!();
    let o = run("selftest", &["heap", "16"]);
    assert_eq!(texts(&o).0, format!("heap ok 16 MiB sum {}\n", 4096 * 0xa5));
    let o = run("selftest", &["--mem", "8M", "heap", "16"]);
    assert_eq!(o.status.code(), Some(exit::PANIC));
    assert!(texts(&o)
        .1
        .contains("memory allocation of 16777216 bytes failed"));
}

#[test]
fn stderr_and_stdin_pass_through() {
    require_kvm!();
    let o = run("selftest", &["stderr", "to the error stream"]);
    assert_eq!(
        texts(&o),
        (String::new(), "to the error stream\n".to_string())
    );
    let o = run_with_stdin("selftest", &["stdin"], Some(b"line one\nline two\n"));
    assert_eq!(texts(&o).0, "read 18 bytes: line one\nline two\n");
}

/// Structural only: both clocks advance over the guest's busy loop and the
/// guest's wall clock lies within the run as the host saw it. How closely
/// the guest's clock follows the host's is measured by `cargo xtask bench
/// clock`, not asserted here.
#[test]
fn guest_clocks_advance_and_wall_clock_is_the_hosts() {
    require_kvm!();
    let since_epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("host clock after 1970")
            .as_nanos()
    };
    let before = since_epoch();
    let o = run("selftest", &["clock"]);
    let after = since_epoch();
    let out = texts(&o).0;
    assert_eq!(o.status.code(), Some(0), "{out}");
    let nums: Vec<u128> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 3, "{out}");
    let (host, guest, realtime) = (nums[0], nums[1], nums[2]);
    assert!(host > 0, "the host's monotonic clock advanced: {out}");
    assert!(guest > 0, "the guest's own clock advanced: {out}");
    assert!(
        (before..=after).contains(&realtime),
        "guest realtime {realtime} outside the run [{before}, {after}]: {out}"
    );
}

#[test]
fn bad_launcher_flags_are_one_line_errors() {
    require_kvm!();
    for (args, needle) in [
        (&["--mem", "lots"][..], "is not a size"),
        (&["--mem", "1M"][..], "outside"),
        (&["--mem", "100G"][..], "outside"),
        (&["--timeout", "-1"][..], "positive number"),
        (&["--cpus", "0"][..], "--cpus 0"),
        (&["-e", "=x"][..], "empty name"),
        (
            &["-e", "VESSEL_SURELY_UNSET_VAR"][..],
            "has no VESSEL_SURELY_UNSET_VAR",
        ),
    ] {
        let o = run("hello", args);
        let err = texts(&o).1;
        assert_eq!(
            o.status.code(),
            Some(exit::LAUNCHER_ERROR),
            "{args:?}: {err}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: the guest must not run");
    }
}

#[test]
fn vessel_run_boots_an_unpacked_guest() {
    require_kvm!();
    let elf = guest_elf("hello");
    let o = vessel(&["run", elf.to_str().unwrap(), "x"]);
    assert_eq!(
        texts(&o).0,
        "Hello from a Vessel VM on x86_64!\nargs: [\"x\"]\n"
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn vessel_rejects_non_guest_files_in_one_line() {
    require_kvm!();
    let dir = std::env::temp_dir().join(format!("vessel-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, b"this is not an ELF file at all, just text").unwrap();
    // A host executable: valid ELF, but not a Vessel guest.
    let host_exe = vessel_tests::vessel_bin();
    for (path, needle) in [
        (garbage.to_str().unwrap(), "not a 64-bit little-endian ELF"),
        (host_exe.to_str().unwrap(), "invalid guest ELF"),
        ("/nonexistent/guest", "cannot read guest image"),
    ] {
        let o = vessel(&["run", path]);
        let err = texts(&o).1;
        assert_eq!(o.status.code(), Some(exit::LAUNCHER_ERROR), "{path}: {err}");
        assert!(err.contains(needle), "{path}: {err}");
        assert_eq!(err.lines().count(), 1, "{path}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vessel_caps_lists_capabilities_from_both_fds() {
    require_kvm!();
    let o = vessel(&["caps"]);
    let out = texts(&o).0;
    assert_eq!(o.status.code(), Some(0));
    assert!(out.starts_with("capability"), "{out}");
    let irq = out
        .lines()
        .find(|l| l.starts_with("KVM_CAP_IRQCHIP "))
        .expect("IRQCHIP row");
    assert!(irq.contains("present"), "{irq}");
    assert!(out.lines().count() > 10);
}

#[test]
fn vessel_help_documents_every_command() {
    let o = vessel(&["--help"]);
    let out = texts(&o).0;
    for word in ["run", "caps", "pack", "Exit codes"] {
        assert!(out.contains(word), "{out}");
    }
    let o = vessel(&["run", "--help"]);
    assert!(texts(&o).0.contains("--timeout"));
    let o = vessel(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(exit::LAUNCHER_ERROR));
}

#[test]
fn missing_kvm_device_is_one_line_naming_the_fix() {
    let o = std::process::Command::new(vessel_tests::app("hello"))
        .env("VESSEL_KVM", "/nonexistent/kvm")
        .output()
        .expect("run hello");
    let err = texts(&o).1;
    assert_eq!(o.status.code(), Some(exit::LAUNCHER_ERROR), "{err}");
    assert!(
        err.contains("cannot open /nonexistent/kvm") && err.contains("kvm` group"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn malformed_hypercalls_get_error_codes_not_crashes() {
    require_kvm!();
    use vessel_abi::Errno;
    let o = run("selftest", &["--", "--stdin-closed-is-fine", "hostile"]);
    // After `--`, the flag above is the app's first argument.
    assert_eq!(
        o.status.code(),
        Some(2),
        "unknown mode is the app's own error"
    );
    let o = run("selftest", &["hostile"]);
    let out = texts(&o).0;
    assert_eq!(o.status.code(), Some(0), "{out}");
    let status = |name: &str| -> i32 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        line.split(' ').nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(status("unknown-number"), Errno::Inval as i32);
    assert_eq!(status("write-huge-len"), Errno::Fault as i32);
    assert_eq!(status("write-wrapping"), Errno::Fault as i32);
    assert_eq!(status("write-outside-ram"), Errno::Fault as i32);
    assert_eq!(status("write-bad-fd"), Errno::BadFd as i32);
    assert_eq!(status("write-fd-too-wide"), Errno::Inval as i32);
    assert_eq!(status("read-into-nowhere"), Errno::Fault as i32);
    assert_eq!(status("random-outside-ram"), Errno::Fault as i32);
    assert_eq!(status("clock-bad-id"), Errno::Inval as i32);
    assert_eq!(status("apf-not-offered"), Errno::NotSupported as i32);
}

#[test]
fn a_frame_outside_guest_memory_ends_the_guest_not_the_launcher() {
    require_kvm!();
    let o = run("selftest", &["hostile", "badframe"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(exit::GUEST_FAULT), "{err}");
    assert!(
        out.contains("ringing with a bad frame") && !out.contains("still alive"),
        "{out}"
    );
    assert!(
        err.contains("hypercall frame address 0xfffffffffffffff8"),
        "{err}"
    );
}

#[test]
fn stdout_is_batched_into_the_exit_when_not_a_terminal() {
    require_kvm!();
    // 200 lines of output, one exit: the lines arrive complete and in order.
    let o = run("selftest", &["lines", "200"]);
    let out = texts(&o).0;
    assert_eq!(o.status.code(), Some(0));
    let want: String = (0..200).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out, want);
}
