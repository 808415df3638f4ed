//! The async executor's deadlock report, end to end on x86_64: when every
//! task waits and nothing can wake one, the VM ends with exit 70
//! (`vessel_abi::exit::DEADLOCK`) and stderr says what each task waits on;
//! a pending timer or a thread still running on another vCPU is not a
//! deadlock.

use vessel_abi::exit::DEADLOCK;
use vessel_tests::{require_kvm, run, texts};

fn selftest(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["--timeout", "30"];
    a.extend_from_slice(args);
    let out = run("selftest", &a);
    let (o, e) = texts(&out);
    (out.status.code().unwrap_or(-1), o, e)
}

const HEAD: &str = "wait and nothing can wake one (no timer, page fault, I/O or thread pending):\n";

#[test]
fn a_task_on_a_channel_nobody_sends_on_is_reported() {
    require_kvm!();
    let (code, out, err) = selftest(&["deadlock-channel"]);
    assert_eq!(code, DEADLOCK, "{out}{err}");
    assert_eq!(out, "waiting\n");
    assert_eq!(
        err,
        format!(
            "guest-rt: deadlock: all 2 task(s) {HEAD}  task 1 waits on task 2 (its JoinHandle)\n  task 2 waits on a channel receive (no value will come)\n"
        )
    );
}

#[test]
fn a_future_that_never_wakes_is_reported() {
    require_kvm!();
    let (code, out, err) = selftest(&["deadlock-own"]);
    assert_eq!(code, DEADLOCK, "{out}{err}");
    assert!(
        err.ends_with("  task 1 waits on a future of its own that nothing will wake\n"),
        "{err}"
    );
}

#[test]
fn a_pending_timer_is_not_a_deadlock() {
    require_kvm!();
    let (code, out, err) = selftest(&["deadlock-timer"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "received Some(7)\n", "")
    );
}

#[test]
fn a_thread_running_on_another_vcpu_defers_the_report() {
    require_kvm!();
    let (code, out, err) = selftest(&["--cpus", "2", "deadlock-thread"]);
    assert_eq!(code, DEADLOCK, "{out}{err}");
    // The thread finished (and printed) before the VM ended.
    assert_eq!(out, "thread done on vcpu 1\n", "{err}");
    assert!(err.contains("task 1 waits on a future of its own"), "{err}");
}
