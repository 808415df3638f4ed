//! `--gdb` with a real gdb in batch mode (x86_64): break at a function,
//! read a local, step, read xmm/ymm (zmm absent: this host has no
//! AVX-512), write guest memory and see the output change, detach and let
//! the guest finish with its exit code; and bad input: a second debugger,
//! malformed packets, a disconnect in the middle of a step, a breakpoint on
//! an unmapped address, refused hardware breakpoints. The guest is
//! apps/gdbdemo (built with debug info).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vessel_tests::{app, guest_elf, require_kvm};

/// A launcher waiting for a debugger, its stderr collected on a thread.
struct Launcher {
    child: Child,
    err: mpsc::Receiver<String>,
}

/// A fresh Unix socket path for one test.
fn sock(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vessel-gdb-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Start gdbdemo with `--gdb ADDR` (and `extra` flags, app args after);
/// returns once it listens.
fn launch(addr: &str, extra: &[&str]) -> Launcher {
    launch_app("gdbdemo", addr, extra)
}

fn launch_app(name: &str, addr: &str, extra: &[&str]) -> Launcher {
    let mut child = Command::new(app(name))
        .args(["--timeout", "120", "--gdb", addr])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gdbdemo");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the launcher says where it waits");
    assert!(
        first.starts_with("vessel: gdb: waiting for a debugger on "),
        "{first}"
    );
    Launcher { child, err: rx }
}

impl Launcher {
    /// Wait for the guest to end: (exit code, stdout, stderr).
    fn finish(mut self) -> (i32, String, String) {
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let code = self.child.wait().expect("wait").code().unwrap_or(-1);
        let err: Vec<String> = self.err.try_iter().collect();
        (code, out, err.join("\n"))
    }
}

/// Run gdb in batch mode on the guest ELF with these commands.
fn gdb(target: &str, cmds: &[&str]) -> String {
    let mut c = Command::new("gdb");
    c.args([
        "-nx",
        "-batch",
        "-ex",
        "set confirm off",
        "-ex",
        "set pagination off",
    ]);
    c.args(["-ex", &format!("target remote {target}")]);
    for cmd in cmds {
        c.args(["-ex", cmd]);
    }
    let out = c
        .arg(guest_elf("gdbdemo"))
        .stdin(Stdio::null())
        .output()
        .expect("gdb is installed (cargo xtask test installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn gdb_breaks_reads_a_local_steps_sees_vectors_patches_memory_and_detaches() {
    require_kvm!();
    let s = sock("full");
    let l = launch(s.to_str().unwrap(), &[]);
    let out = gdb(
        s.to_str().unwrap(),
        &[
            "break gdbdemo::square",
            "continue",
            "print n",
            "next",
            "print squared",
            "stepi",
            "break vector_mark",
            "continue",
            "print $xmm3.v4_int32",
            "print $ymm5.v8_int32",
            "info registers zmm0",
            "info registers k1",
            "set var REPEAT = 3",
            "detach",
        ],
    );
    assert!(
        out.contains("Breakpoint 1, gdbdemo::square (n=12) at apps/gdbdemo/src/main.rs"),
        "{out}"
    );
    assert!(out.contains("$1 = 12\n"), "{out}");
    assert!(out.contains("$2 = 144\n"), "{out}");
    assert!(
        out.contains("Breakpoint 2, gdbdemo::vector_mark ()"),
        "{out}"
    );
    assert!(out.contains("$3 = [1, 2, 3, 4]\n"), "{out}");
    assert!(out.contains("$4 = [2, 4, 6, 8, 10, 12, 14, 16]\n"), "{out}");
    // No AVX-512 on this host: the description has no zmm or k registers.
    assert!(out.contains("Invalid register `zmm0'"), "{out}");
    assert!(out.contains("Invalid register `k1'"), "{out}");
    assert!(out.contains("[Inferior 1 (process 1) detached]"), "{out}");
    let (code, stdout, err) = l.finish();
    assert_eq!(stdout, "hello 0\nhello 1\nhello 2\nsquare 144\n", "{err}");
    assert_eq!(code, 44 + 3, "{err}");
    assert!(
        err.contains("debugger detached; the guest runs on"),
        "{err}"
    );
}

#[test]
fn gdb_over_tcp_sees_every_vcpu_as_a_thread_and_the_exit_code() {
    require_kvm!();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let l = launch(&port, &["--cpus", "2"]);
    let out = gdb(&format!("127.0.0.1:{port}"), &["info threads", "continue"]);
    assert!(out.contains("Thread 1.1"), "{out}");
    assert!(out.contains("Thread 1.2"), "{out}");
    assert!(out.contains("exited with code 055"), "{out}");
    let (code, stdout, err) = l.finish();
    assert_eq!(
        (code, stdout.as_str()),
        (45, "hello 0\nsquare 144\n"),
        "{err}"
    );
}

#[test]
fn unmapped_and_hardware_breakpoints_are_errors_to_gdb_and_the_guest_goes_on() {
    require_kvm!();
    let s = sock("refusals");
    let l = launch(s.to_str().unwrap(), &[]);
    // Five breakpoints: more than the 4 debug registers (int3s have no limit).
    let out = gdb(
        s.to_str().unwrap(),
        &[
            "break *0x7000000000",
            "continue",
            "delete",
            "hbreak gdbdemo::square",
            "continue",
            "delete",
            "break gdbdemo::square",
            "break vector_mark",
            "break gdbdemo::load_vectors",
            "break gdbdemo::crash_here",
            "break gdbdemo::main",
            "continue",
            "continue",
            "continue",
            "continue",
            "print $pc == &vector_mark",
            "x/2i $pc",
            "detach",
        ],
    );
    assert!(out.contains("Cannot insert breakpoint 1"), "{out}");
    assert!(out.contains("Cannot insert hardware breakpoint 2"), "{out}");
    assert!(out.contains("Breakpoint 3, gdbdemo::square"), "{out}");
    assert!(out.contains("Breakpoint 5, gdbdemo::load_vectors"), "{out}");
    assert!(out.contains("Breakpoint 4, gdbdemo::vector_mark"), "{out}");
    assert!(out.contains("= true\n"), "{out}");
    // Reads show the code, not the int3 standing at the breakpoint.
    assert!(out.contains("<gdbdemo::vector_mark>:\tret"), "{out}");
    let (code, stdout, err) = l.finish();
    assert_eq!(
        (code, stdout.as_str()),
        (45, "hello 0\nsquare 144\n"),
        "{err}"
    );
    assert!(
        err.contains("hardware breakpoints and watchpoints are refused"),
        "{err}"
    );
}

/// A raw protocol client: `$data#checksum` packets.
fn packet(data: &str) -> Vec<u8> {
    let sum = data.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

/// Bytes the stub sends within `wait`.
fn replies(s: &mut UnixStream, wait: Duration) -> String {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn connect(path: &Path) -> UnixStream {
    UnixStream::connect(path).expect("connect to the stub")
}

#[test]
fn a_second_debugger_is_refused_and_malformed_packets_get_errors() {
    require_kvm!();
    let s = sock("raw");
    let l = launch(s.to_str().unwrap(), &[]);
    let mut c = connect(&s);
    c.write_all(&packet("?")).unwrap();
    assert!(replies(&mut c, Duration::from_secs(2)).contains("$T05"));
    // One debugger at a time: the socket is gone.
    assert!(
        UnixStream::connect(&s).is_err(),
        "second connection accepted"
    );
    // A bad checksum and a malformed command are nacked, an unmapped
    // address gets an error, an unknown packet an empty reply; the session
    // goes on.
    c.write_all(b"$m200000,4#00").unwrap();
    assert!(replies(&mut c, Duration::from_secs(1)).starts_with('-'));
    c.write_all(&packet("mzz,4")).unwrap();
    assert!(replies(&mut c, Duration::from_secs(1)).starts_with('-'));
    c.write_all(&packet("m7000000000,4")).unwrap();
    assert!(replies(&mut c, Duration::from_secs(1)).contains("$E"));
    c.write_all(&packet("vMadeUp;1")).unwrap();
    assert!(replies(&mut c, Duration::from_secs(1)).contains("$#00"));
    c.write_all(&packet("m200000,1")).unwrap();
    let r = replies(&mut c, Duration::from_secs(1));
    assert!(r.contains("$31#"), "_start begins with xor (0x31): {r}");
    c.write_all(&packet("D")).unwrap();
    assert!(replies(&mut c, Duration::from_secs(1)).contains("$OK"));
    let (code, stdout, err) = l.finish();
    assert_eq!(
        (code, stdout.as_str()),
        (45, "hello 0\nsquare 144\n"),
        "{err}"
    );
}

#[test]
fn a_debugger_that_vanishes_mid_step_leaves_the_guest_running_to_its_end() {
    require_kvm!();
    let s = sock("vanish");
    let l = launch(s.to_str().unwrap(), &[]);
    let mut c = connect(&s);
    c.write_all(&packet("vCont;s:1")).unwrap();
    drop(c);
    let (code, stdout, err) = l.finish();
    assert_eq!(
        (code, stdout.as_str()),
        (45, "hello 0\nsquare 144\n"),
        "{err}"
    );
    assert!(err.contains("the guest runs on"), "{err}");
}

#[test]
fn ctrl_c_stops_a_running_guest_for_the_debugger() {
    require_kvm!();
    let s = sock("ctrlc");
    // pi with this many terms computes for far longer than the test.
    let mut l = launch_app("pi", s.to_str().unwrap(), &["--", "2000000000"]);
    let mut c = connect(&s);
    c.write_all(&packet("vCont;c")).unwrap();
    assert_eq!(replies(&mut c, Duration::from_millis(500)), "+", "running");
    c.write_all(b"\x03").unwrap();
    let r = replies(&mut c, Duration::from_secs(2));
    assert!(r.contains("$T02thread:01;"), "stopped by SIGINT: {r}");
    c.write_all(&packet("g")).unwrap();
    assert!(
        replies(&mut c, Duration::from_secs(1)).len() > 100,
        "registers"
    );
    c.write_all(&packet("k")).unwrap();
    let code = l.child.wait().expect("wait").code();
    let err: Vec<String> = l.err.try_iter().collect();
    assert!(
        err.iter()
            .any(|e| e.contains("the debugger killed the guest")),
        "{err:?}"
    );
    assert_ne!(code, Some(0), "killed, not finished");
}

#[test]
fn gdb_flags_are_checked_before_the_guest_runs() {
    require_kvm!();
    let out = Command::new(app("gdbdemo"))
        .args(["--gdb", "0.0.0.0:1234"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("only loopback addresses are served"), "{err}");
    let busy = sock("busy");
    std::fs::write(&busy, b"").unwrap();
    let out = Command::new(app("gdbdemo"))
        .args(["--gdb", busy.to_str().unwrap()])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
    assert!(out.stdout.is_empty(), "the guest never ran");
    let _ = std::fs::remove_file(&busy);
}

#[test]
fn a_crash_writes_a_core_file_gdb_shows_the_faulting_function() {
    require_kvm!();
    let dir = std::env::temp_dir().join(format!("vessel-cores-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(app("gdbdemo"))
        .args(["--core-dump", dir.to_str().unwrap(), "--", "crash"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{err}");
    let cores: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cores.len(), 1, "{err}");
    let core = &cores[0];
    let name = core.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("gdbdemo-") && name.ends_with(".core"),
        "{name}"
    );
    assert!(
        err.contains(&format!("vessel: core dump: {}", core.display())),
        "{err}"
    );
    // Bounded: the 128 MiB guest's zero pages take no room.
    let len = std::fs::metadata(core).unwrap().len();
    assert!(len < 16 << 20, "{len} bytes");
    let bt = Command::new("gdb")
        .args([
            "-nx",
            "-batch",
            "-ex",
            "bt",
            "-ex",
            "info threads",
            "-ex",
            "p $xmm0",
            "-ex",
            "p $ymm0.v8_int32",
        ])
        .arg(guest_elf("gdbdemo"))
        .arg(core)
        .output()
        .expect("gdb");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&bt.stdout),
        String::from_utf8_lossy(&bt.stderr)
    );
    assert!(
        text.contains("Program terminated with signal SIGSEGV"),
        "{text}"
    );
    assert!(
        text.contains("gdbdemo::crash_here (value=7) at apps/gdbdemo/src/main.rs"),
        "{text}"
    );
    assert!(text.contains("LWP 1"), "{text}");
    assert!(text.contains("v4_int32"), "xmm0 from the core: {text}");
    assert!(
        text.contains("= [0, 0, 0, 0, 0, 0, 0, 0]"),
        "ymm0 (NT_X86_XSTATE): {text}"
    );
    assert!(!text.contains("Unexpected size"), "{text}");
    assert!(text.contains("gdbdemo::main"), "{text}");
    // A crash without --core-dump writes nothing.
    let out = Command::new(app("gdbdemo"))
        .args(["--", "crash"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(126));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("core dump"));
    let bad = Command::new(app("gdbdemo"))
        .args(["--core-dump", "/nonexistent/dir", "--", "crash"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a directory"));
    std::fs::remove_dir_all(&dir).unwrap();
}
