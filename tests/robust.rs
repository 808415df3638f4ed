//! A hostile user's inputs and a broken environment: inputs that never
//! end, deadlines that must hold, closed or failing stdout, signals, paths
//! that are not UTF-8, guest text on the terminal, forged crash reports.
//! Each test bounds how long it waits: a hang is a failure, not a stuck CI.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use vessel_abi::exit;
use vessel_tests::{app, guest_elf, lazy_test_bytes, require_kvm, run, texts, vessel_bin};

/// A scratch directory for this test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vessel-robust-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Wait for `child` at most `limit`; a child still running then is killed
/// and the test fails: the launcher hung.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> (ExitStatus, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}: the launcher hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(exe: &Path, args: &[&std::ffi::OsStr], stdout: Stdio) -> Child {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn a_fifo_or_a_device_as_guest_image_is_refused_at_once() {
    let dir = scratch("fifo-image");
    let fifo = dir.join("image");
    mkfifo(&fifo);
    for image in [fifo.as_path(), Path::new("/dev/zero")] {
        let child = spawn(
            &vessel_bin(),
            &[os("run"), image.as_os_str()],
            Stdio::null(),
        );
        let (status, err) = wait_bounded(child, Duration::from_secs(20), "vessel run FIFO");
        assert_eq!(status.code(), Some(exit::LAUNCHER_ERROR), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_fifo_as_lazy_file_is_refused_at_once() {
    require_kvm!();
    let dir = scratch("fifo-lazy");
    let fifo = dir.join("data");
    mkfifo(&fifo);
    let spec = format!("data={}", fifo.display());
    let child = spawn(&app("hello"), &[os("--lazy"), os(&spec)], Stdio::null());
    let (status, err) = wait_bounded(child, Duration::from_secs(20), "--lazy FIFO");
    assert_eq!(status.code(), Some(exit::LAUNCHER_ERROR), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn timeout_holds_while_stdout_is_a_full_pipe_nobody_reads() {
    require_kvm!();
    // stdout is piped but never read: the guest's writes block on the pipe.
    let child = spawn(
        &app("selftest"),
        &[os("--timeout"), os("1"), os("lines"), os("100000000")],
        Stdio::piped(),
    );
    let (status, err) = wait_bounded(child, Duration::from_secs(30), "blocked stdout");
    assert_eq!(status.code(), Some(exit::TIMEOUT), "{err}");
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn timeout_holds_while_lazy_fetches_sleep() {
    require_kvm!();
    let dir = scratch("lazy-latency");
    let file = dir.join("data");
    std::fs::write(&file, lazy_test_bytes(1 << 20).0).expect("write data");
    let spec = format!("data={}", file.display());
    // Each page takes 1000 s to fetch: only the deadline can end this.
    let args = [
        os("--timeout"),
        os("1"),
        os("--lazy"),
        os(&spec),
        os("--lazy-latency"),
        os("1000000"),
    ];
    let child = spawn(&app("lazyscan"), &args, Stdio::null());
    let (status, err) = wait_bounded(child, Duration::from_secs(30), "sleeping fetches");
    assert_eq!(status.code(), Some(exit::TIMEOUT), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_closed_stdout_pipe_ends_the_vm_quietly_with_141() {
    require_kvm!();
    let (read_end, write_end) = std::io::pipe().expect("pipe");
    drop(read_end);
    let child = spawn(
        &app("selftest"),
        &[os("lines"), os("100000000")],
        Stdio::from(write_end),
    );
    let (status, err) = wait_bounded(child, Duration::from_secs(30), "closed pipe");
    assert_eq!(status.code(), Some(141), "{err}");
    assert_eq!(err, "", "a closed pipe is not worth a message");
}

#[test]
fn a_failing_stdout_is_reported_once_and_the_exit_code_says_so() {
    require_kvm!();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let child = spawn(
        &app("selftest"),
        &[os("lines"), os("5000")],
        Stdio::from(full),
    );
    let (status, err) = wait_bounded(child, Duration::from_secs(30), "/dev/full");
    assert_eq!(status.code(), Some(74), "{err}");
    assert_eq!(
        err.matches("output lost").count(),
        1,
        "reported once: {err}"
    );
}

#[test]
fn sigint_and_sigterm_write_the_buffered_output_then_exit_128_plus_n() {
    require_kvm!();
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = spawn(&app("selftest"), &[os("spin")], Stdio::piped());
        std::thread::sleep(Duration::from_millis(500));
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        let out = child.wait_with_output().expect("wait");
        let (stdout, err) = texts(&out);
        assert_eq!(out.status.code(), Some(code), "signal {sig}: {err}");
        assert_eq!(stdout, "spinning\n", "buffered output is written");
    }
}

#[test]
fn mem_below_the_minimum_says_so() {
    require_kvm!();
    for mem in ["0", "1M"] {
        let o = run("hello", &["--mem", mem]);
        let err = texts(&o).1;
        assert_eq!(o.status.code(), Some(exit::LAUNCHER_ERROR), "{err}");
        assert!(err.contains("below the minimum"), "--mem {mem}: {err}");
        assert!(!err.contains("segment"), "--mem {mem}: {err}");
    }
}

#[test]
fn paths_that_are_not_utf8_are_used_byte_for_byte() {
    require_kvm!();
    let dir = scratch("bytes");
    let name = |n: &[u8]| dir.join(std::ffi::OsStr::from_bytes(n));
    let image = name(b"hello-\xff\xfe");
    std::fs::copy(guest_elf("hello"), &image).expect("copy guest");
    let data = name(b"data-\xff");
    let (bytes, sum) = lazy_test_bytes(100_000);
    std::fs::write(&data, bytes).expect("write data");
    let o = Command::new(vessel_bin())
        .args([os("run"), image.as_os_str()])
        .output()
        .expect("vessel run");
    assert_eq!(o.status.code(), Some(0), "{}", texts(&o).1);
    let mut spec = std::ffi::OsString::from("data=");
    spec.push(&data);
    let o = Command::new(app("lazyscan"))
        .args([os("--lazy"), spec.as_os_str()])
        .output()
        .expect("lazyscan");
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains(&sum.to_string()), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn guest_text_is_escaped_and_a_cut_message_says_so() {
    require_kvm!();
    let o = run("selftest", &["abort", "red \x1b[31mX\x07 bell\nnext"]);
    let err = texts(&o).1;
    assert_eq!(o.status.code(), Some(exit::ABORT));
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("\\u{1b}[31mX\\u{7} bell\\nnext"), "{err:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    let long = "x".repeat(5000);
    let err = texts(&run("selftest", &["abort", &long])).1;
    assert!(err.contains("cut: 4096 of 5000 bytes shown"), "{err}");
}

#[test]
fn a_fault_report_stored_by_the_app_is_called_a_forgery() {
    require_kvm!();
    let o = run("selftest", &["forge-fault"]);
    let err = texts(&o).1;
    assert_eq!(o.status.code(), Some(exit::GUEST_FAULT), "{err}");
    assert!(err.contains("from outside the exception stubs"), "{err}");
    assert!(
        !err.contains("guest exception"),
        "no report is believed: {err}"
    );
}

/// Send `sig` to `child` after half a second.
fn signal_later(child: &Child, sig: libc::c_int) {
    std::thread::sleep(Duration::from_millis(500));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn a_signal_reaches_the_guest_through_a_blocked_write_and_past_fetch_threads() {
    require_kvm!();
    // The vCPU thread is blocked writing to a pipe nobody reads.
    let child = spawn(
        &app("selftest"),
        &[os("lines"), os("100000000")],
        Stdio::piped(),
    );
    signal_later(&child, libc::SIGTERM);
    let (status, err) = wait_bounded(child, Duration::from_secs(30), "SIGTERM, blocked stdout");
    assert_eq!(status.code(), Some(exit::TERMINATED), "{err}");
    // 64 fetch threads exist and block SIGINT: it must reach the vCPU.
    let dir = scratch("signal-lazy");
    let file = dir.join("data");
    std::fs::write(&file, lazy_test_bytes(1 << 20).0).expect("write data");
    let spec = format!("data={}", file.display());
    let args = [os("--lazy"), os(&spec), os("--lazy-latency"), os("1000000")];
    let child = spawn(&app("lazyscan"), &args, Stdio::null());
    signal_later(&child, libc::SIGINT);
    let (status, err) = wait_bounded(child, Duration::from_secs(30), "SIGINT, sleeping fetches");
    assert_eq!(status.code(), Some(exit::INTERRUPTED), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
