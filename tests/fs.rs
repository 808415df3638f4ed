//! Pre-opened directories, the sandbox's refusals, the I/O ring, stdin,
//! clocks, `wc` and `sort` against the host's, the output cap, and the
//! hostile-guest suite (with the launcher's descriptors counted before and
//! after).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vessel_abi::exit;
use vessel_tests::{app, require_kvm, texts};

/// A fresh scratch directory `d` (the guest's `/d`) for this test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vessel-fs-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("d")).expect("scratch dir");
    d
}

fn dir_flag(p: &Path, rest: &str) -> String {
    format!("{}{rest}", p.display())
}

/// Run `name` with launcher flags and app arguments; stdin from `input`.
fn run_app(name: &str, flags: &[String], args: &[&str], input: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(app(name));
    cmd.args(flags).arg("--").args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn");
    if let Some(data) = input {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(data).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// fsprobe with `/d` = `base/d` (and `/ro` = `base/ro`, read-only, if it exists).
fn probe(base: &Path, steps: &[&str]) -> String {
    let mut flags = vec!["--dir".into(), dir_flag(&base.join("d"), ":/d")];
    if base.join("ro").exists() {
        flags.push("--dir".into());
        flags.push(dir_flag(&base.join("ro"), ":/ro:ro"));
    }
    let out = run_app("fsprobe", &flags, steps, None);
    let (o, e) = texts(&out);
    assert!(out.status.code().is_some(), "fsprobe was killed: {e}");
    o + &e
}

fn assert_has(out: &str, line: &str) {
    assert!(out.lines().any(|l| l == line), "want `{line}` in:\n{out}");
}

#[test]
fn every_fs_call_round_trips() {
    require_kvm!();
    let b = scratch("roundtrip");
    assert_has(&probe(&b, &["roundtrip", "/d"]), "roundtrip /d: ok");
}

#[test]
fn dotdot_escapes_are_refused() {
    require_kvm!();
    let b = scratch("dotdot");
    std::fs::write(b.join("secret"), "s").unwrap();
    std::fs::create_dir(b.join("d/x")).unwrap();
    let out = probe(&b, &["read", "/d/../secret", "read", "/d/x/../../secret"]);
    assert_has(&out, "read /d/../secret: err PermissionDenied");
    assert_has(&out, "read /d/x/../../secret: err PermissionDenied");
}

#[test]
fn absolute_paths_outside_every_dir_are_refused() {
    require_kvm!();
    let b = scratch("absolute");
    let out = probe(&b, &["read", "/etc/passwd", "read", "/", "stat", "/dx/f"]);
    assert_has(&out, "read /etc/passwd: err NotFound");
    assert_has(&out, "read /: err NotFound");
    assert_has(&out, "stat /dx/f: err NotFound");
}

#[test]
fn symlinks_pointing_out_are_refused_and_inside_ones_work() {
    require_kvm!();
    let b = scratch("symlinks");
    let d = b.join("d");
    std::fs::write(b.join("secret"), "s").unwrap();
    std::fs::write(d.join("f"), "inside").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("abs")).unwrap();
    std::os::unix::fs::symlink("../secret", d.join("rel")).unwrap();
    std::os::unix::fs::symlink("f", d.join("ok")).unwrap();
    std::os::unix::fs::symlink("..", d.join("up")).unwrap();
    let out = probe(
        &b,
        &[
            "read",
            "/d/abs",
            "read",
            "/d/rel",
            "read",
            "/d/up/secret",
            "read",
            "/d/ok",
        ],
    );
    assert_has(&out, "read /d/abs: err PermissionDenied");
    assert_has(&out, "read /d/rel: err PermissionDenied");
    assert_has(&out, "read /d/up/secret: err PermissionDenied");
    assert_has(&out, "read /d/ok: ok inside");
}

/// The guest has no call that makes a symlink, so the only symlinks it can
/// meet are the host's; one the guest renames into place still resolves
/// beneath the directory.
#[test]
fn symlink_moved_by_the_guest_still_cannot_point_out() {
    require_kvm!();
    let b = scratch("guest-symlink");
    std::os::unix::fs::symlink("/etc", b.join("d/etc-link")).unwrap();
    let out = probe(
        &b,
        &[
            "mkdir",
            "/d/x",
            "rename",
            "/d/etc-link",
            "/d/x/l",
            "read",
            "/d/x/l/passwd",
        ],
    );
    assert_has(&out, "rename /d/etc-link /d/x/l: ok");
    assert_has(&out, "read /d/x/l/passwd: err PermissionDenied");
}

#[test]
fn magic_links_are_refused() {
    require_kvm!();
    let b = scratch("magic");
    std::os::unix::fs::symlink("/proc/self/root", b.join("d/root")).unwrap();
    std::os::unix::fs::symlink("/proc/self/fd/0", b.join("d/fd0")).unwrap();
    let out = probe(
        &b,
        &[
            "read",
            "/d/root/etc/passwd",
            "read",
            "/d/fd0",
            "read",
            "/proc/self/mem",
        ],
    );
    assert_has(&out, "read /d/root/etc/passwd: err PermissionDenied");
    assert_has(&out, "read /d/fd0: err PermissionDenied");
    assert_has(&out, "read /proc/self/mem: err NotFound");
}

#[test]
fn device_files_and_fifos_are_refused() {
    require_kvm!();
    let b = scratch("devices");
    let d = b.join("d");
    let node = |name: &str, mode: libc::mode_t, dev: libc::dev_t| {
        let c = std::ffi::CString::new(d.join(name).as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mknod only creates a node.
        unsafe { libc::mknod(c.as_ptr(), mode, dev) }
    };
    assert_eq!(node("fifo", libc::S_IFIFO | 0o600, 0), 0, "mkfifo");
    let have_dev = node("null", libc::S_IFCHR | 0o600, libc::makedev(1, 3)) == 0;
    let out = probe(
        &b,
        &[
            "read", "/d/fifo", "write", "/d/fifo", "x", "read", "/d/null",
        ],
    );
    assert_has(&out, "read /d/fifo: err PermissionDenied");
    assert_has(&out, "write /d/fifo x: err PermissionDenied");
    if have_dev {
        assert_has(&out, "read /d/null: err PermissionDenied");
    } else {
        // Without CAP_MKNOD there is no device to refuse: a missing name.
        assert_has(&out, "read /d/null: err NotFound");
    }
}

#[test]
fn hard_links_to_outside_files_are_refused() {
    require_kvm!();
    let b = scratch("hardlinks");
    std::fs::write(b.join("outside"), "secret").unwrap();
    std::fs::hard_link(b.join("outside"), b.join("d/link")).unwrap();
    let out = probe(&b, &["read", "/d/link", "write", "/d/link", "x"]);
    assert_has(&out, "read /d/link: err PermissionDenied");
    assert_has(&out, "write /d/link x: err PermissionDenied");
    assert_eq!(std::fs::read(b.join("outside")).unwrap(), b"secret");
}

#[test]
fn read_only_dirs_refuse_writes_and_renames() {
    require_kvm!();
    let b = scratch("readonly");
    std::fs::create_dir_all(b.join("ro/sub")).unwrap();
    std::fs::write(b.join("ro/r"), "r").unwrap();
    let out = probe(
        &b,
        &[
            "write", "/ro/new", "x", "append", "/ro/r", "x", "rm", "/ro/r", "rmdir", "/ro/sub",
            "mkdir", "/ro/m", "rename", "/ro/r", "/ro/s", "rename", "/ro/r", "/d/s", "rename",
            "/d/nope", "/ro/t", "read", "/ro/r", "stat", "/ro/r",
        ],
    );
    for line in [
        "write /ro/new x: err PermissionDenied",
        "append /ro/r x: err PermissionDenied",
        "rm /ro/r: err PermissionDenied",
        "rmdir /ro/sub: err PermissionDenied",
        "mkdir /ro/m: err PermissionDenied",
        "rename /ro/r /ro/s: err PermissionDenied",
        "rename /ro/r /d/s: err PermissionDenied",
        "rename /d/nope /ro/t: err PermissionDenied",
        "read /ro/r: ok r",
        "stat /ro/r: ok len=1 dir=false ro=true",
    ] {
        assert_has(&out, line);
    }
    assert_eq!(std::fs::read(b.join("ro/r")).unwrap(), b"r");
}

/// NUL bytes, non-UTF-8 bytes and a 64 KiB path: each its own error
/// (from the hostile suite's raw requests, which can send such bytes).
#[test]
fn nul_non_utf8_and_64k_paths_are_refused() {
    require_kvm!();
    let b = scratch("badpaths");
    std::fs::write(b.join("d/f"), "f").unwrap();
    std::fs::create_dir(b.join("d/sub")).unwrap();
    std::fs::write(b.join("d/sub/y"), "y").unwrap();
    let out = probe(&b, &["hostile", "/d"]);
    assert_has(&out, "hostile path-nul: ok");
    assert_has(&out, "hostile path-not-utf8: ok");
    assert_has(&out, "hostile path-64k: ok");
}

#[test]
fn missing_dir_and_file_as_dir_are_one_line_errors() {
    require_kvm!();
    let b = scratch("dirflags");
    std::fs::write(b.join("file"), "x").unwrap();
    for (arg, want) in [
        (dir_flag(&b.join("nope"), ""), "No such file or directory"),
        (dir_flag(&b.join("file"), ""), "is not a directory"),
        (dir_flag(&b.join("d"), ":relative"), "must be absolute"),
    ] {
        let out = run_app("fsprobe", &["--dir".into(), arg.clone()], &[], None);
        let (_, e) = texts(&out);
        assert_eq!(out.status.code(), Some(exit::LAUNCHER_ERROR), "{arg}: {e}");
        // One line saying what is wrong (flag parse errors add clap's hint).
        let first = e.lines().next().unwrap_or("");
        assert!(first.contains(want), "{arg}: {e}");
        assert!(e.lines().filter(|l| !l.is_empty()).count() <= 2, "{e}");
    }
}

#[test]
fn output_cap_ends_the_vm_with_its_code() {
    require_kvm!();
    let b = scratch("cap");
    std::fs::write(b.join("d/big"), vec![b'x'; 1 << 20]).unwrap();
    let flags = |cap: &str| {
        vec![
            "--dir".into(),
            dir_flag(&b.join("d"), ":/d"),
            "--max-output".into(),
            cap.into(),
        ]
    };
    // To stdout: the file's bytes are printed.
    let out = run_app("fsprobe", &flags("64K"), &["read", "/d/big"], None);
    let (_, e) = texts(&out);
    assert_eq!(out.status.code(), Some(exit::OUTPUT_CAP), "{e}");
    assert!(e.contains("--max-output (65536 bytes"), "{e}");
    // To a file.
    let out = run_app("fsprobe", &flags("1K"), &["flood", "/d/out", "5000"], None);
    let (_, e) = texts(&out);
    assert_eq!(out.status.code(), Some(exit::OUTPUT_CAP), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    // Under the cap: fine.
    let out = run_app("fsprobe", &flags("1M"), &["flood", "/d/out", "5000"], None);
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
}

#[test]
fn stdin_from_a_pipe_and_a_file_reaches_eof() {
    require_kvm!();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    let want = format!("stdin : ok bytes={} lines={lines} sum={sum}", data.len());
    let out = run_app("fsprobe", &[], &["stdin"], Some(&data));
    assert_has(&texts(&out).0, &want);
    let b = scratch("stdin");
    std::fs::write(b.join("in"), &data).unwrap();
    let out = Command::new(app("fsprobe"))
        .args(["--", "stdin"])
        .stdin(std::fs::File::open(b.join("in")).unwrap())
        .output()
        .unwrap();
    assert_has(&texts(&out).0, &want);
    let out = run_app("fsprobe", &[], &["stdin"], Some(b""));
    assert_has(&texts(&out).0, "stdin : ok bytes=0 lines=0 sum=0");
}

#[test]
fn stdin_from_a_terminal_reads_a_line_and_eof() {
    require_kvm!();
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the integers.
    let r = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    // SAFETY: both descriptors were just made by openpty and are ours alone.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    };
    let child = Command::new(app("fsprobe"))
        .args(["--", "stdin"])
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A line, then ^D at the start of a line: the terminal's end of file.
    master.write_all(b"hello\n\x04").unwrap();
    let out = child.wait_with_output().unwrap();
    let sum: u64 = b"hello\n".iter().map(|&b| u64::from(b)).sum();
    assert_has(
        &texts(&out).0,
        &format!("stdin : ok bytes=6 lines=1 sum={sum}"),
    );
}

#[test]
fn clock_random_and_sleep() {
    require_kvm!();
    let out = run_app("fsprobe", &[], &["clock", "random", "sleep", "30"], None);
    let (o, e) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let secs: u64 = o
        .lines()
        .find_map(|l| l.strip_prefix("clock : ok "))
        .and_then(|s| s.parse().ok())
        .expect("clock line");
    assert!(
        secs.abs_diff(now) < 60,
        "guest wall clock {secs}, host {now}"
    );
    assert_has(&o, "random : ok differ=true nonzero=true");
    let line = o
        .lines()
        .find(|l| l.starts_with("sleep 30: ok"))
        .expect("sleep line");
    let ms = |key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap()
    };
    assert!(ms("blocking_ms=") >= 30 && ms("tasks_ms=") >= 30, "{line}");
}

/// Lines, words and bytes the way `LC_ALL=C wc` counts them: one
/// `(lines, words, bytes, name)` per line of output.
fn wc_rows(text: &str) -> Vec<(u64, u64, u64, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let n = |x: Option<&str>| x.and_then(|s| s.parse().ok());
            Some((
                n(w.next())?,
                n(w.next())?,
                n(w.next())?,
                w.collect::<Vec<_>>().join(" "),
            ))
        })
        .collect()
}

/// `wc` on `files` (names relative to base/d) in the guest and on the
/// host, compared row by row (guest names are `/d/...`).
fn wc_matches_host(base: &Path, files: &[&str]) {
    let guest: Vec<String> = files.iter().map(|f| format!("/d/{f}")).collect();
    let refs: Vec<&str> = guest.iter().map(String::as_str).collect();
    let out = run_app(
        "wc",
        &["--dir".into(), dir_flag(&base.join("d"), ":/d")],
        &refs,
        None,
    );
    let (o, e) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    let host = Command::new("wc")
        .env("LC_ALL", "C")
        .current_dir(base)
        .args(files.iter().map(|f| format!("d/{f}")))
        .output()
        .expect("host wc");
    let strip = |rows: Vec<(u64, u64, u64, String)>| -> Vec<(u64, u64, u64, String)> {
        rows.into_iter()
            .map(|(l, w, b, n)| (l, w, b, n.trim_start_matches('/').to_string()))
            .collect()
    };
    assert_eq!(
        strip(wc_rows(&o)),
        strip(wc_rows(&String::from_utf8_lossy(&host.stdout)))
    );
}

#[test]
fn wc_matches_host_wc_on_small_files() {
    require_kvm!();
    let b = scratch("wc-small");
    let d = b.join("d");
    std::fs::write(d.join("empty"), "").unwrap();
    std::fs::write(d.join("noeol"), "one line without a newline").unwrap();
    std::fs::write(
        d.join("mixed"),
        b"a b\tc\n\n  d\r\ne\x0bf\x0c g \xff\xfe x\n",
    )
    .unwrap();
    wc_matches_host(&b, &["empty"]);
    wc_matches_host(&b, &["noeol"]);
    wc_matches_host(&b, &["empty", "noeol", "mixed"]);
}

#[test]
fn wc_matches_host_wc_on_a_64_mib_file() {
    require_kvm!();
    let b = scratch("wc-big");
    let (bytes, _) = vessel_tests::lazy_test_bytes(64 << 20);
    // Make it text-like: every 61st byte a newline, every 7th a space.
    let text: Vec<u8> = bytes
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if i % 61 == 60 {
                b'\n'
            } else if x % 7 == 0 {
                b' '
            } else {
                x
            }
        })
        .collect();
    std::fs::write(b.join("d/big"), &text).unwrap();
    wc_matches_host(&b, &["big"]);
}

#[test]
fn wc_matches_host_wc_on_many_files_and_a_directory_of_1000() {
    require_kvm!();
    let b = scratch("wc-many");
    let many = b.join("d/many");
    std::fs::create_dir(&many).unwrap();
    let mut names = Vec::new();
    for i in 0..1000 {
        let name = format!("f{i:04}");
        std::fs::write(
            many.join(&name),
            "word ".repeat(i % 17) + &"\n".repeat(i % 3),
        )
        .unwrap();
        names.push(format!("many/{name}"));
    }
    // Many small files named one by one...
    let some: Vec<&str> = names.iter().take(200).map(String::as_str).collect();
    wc_matches_host(&b, &some);
    // ...and the directory, listed by the guest with read_dir.
    let out = run_app(
        "wc",
        &["--dir".into(), dir_flag(&b.join("d"), ":/d")],
        &["/d/many"],
        None,
    );
    let (o, e) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let host = Command::new("wc")
        .env("LC_ALL", "C")
        .current_dir(b.join("d"))
        .args(&all)
        .output()
        .unwrap();
    let guest_rows: Vec<_> = wc_rows(&o)
        .into_iter()
        .map(|(l, w, c, n)| (l, w, c, n.trim_start_matches("/d/").to_string()))
        .collect();
    assert_eq!(guest_rows.len(), 1001, "1000 files and a total");
    assert_eq!(guest_rows, wc_rows(&String::from_utf8_lossy(&host.stdout)));
}

#[test]
fn sort_matches_host_sort() {
    require_kvm!();
    let b = scratch("sort");
    let (bytes, _) = vessel_tests::lazy_test_bytes(200_000);
    let mut text: Vec<u8> = bytes
        .iter()
        .map(|&x| if x % 23 == 0 { b'\n' } else { b'a' + x % 26 })
        .collect();
    text.extend_from_slice(b"\nlast line without newline");
    std::fs::write(b.join("d/in"), &text).unwrap();
    let out = run_app(
        "sort",
        &["--dir".into(), dir_flag(&b.join("d"), ":/d")],
        &["/d/in", "/d/out"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
    let host = Command::new("sort")
        .env("LC_ALL", "C")
        .arg(b.join("d/in"))
        .output()
        .unwrap();
    assert!(host.status.success());
    assert_eq!(std::fs::read(b.join("d/out")).unwrap(), host.stdout);
    assert!(!b.join("d/out.sorting").exists(), "temporary renamed away");
}

#[test]
fn async_tasks_overlap_reads_through_the_ring() {
    require_kvm!();
    let b = scratch("async");
    let mut sum = 0u64;
    for i in 0..16 {
        let data: Vec<u8> = (0..4096u32).map(|j| (j * 7 + i) as u8).collect();
        sum += data.iter().map(|&x| u64::from(x)).sum::<u64>();
        std::fs::write(b.join(format!("d/f{i}")), &data).unwrap();
    }
    let out = probe(&b, &["async", "/d", "16"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("async /d 16: ok"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(&format!("sum={sum} ")), "{line}");
}

#[test]
fn a_million_one_byte_writes_arrive_in_order_and_in_few_exits() {
    require_kvm!();
    let b = scratch("flood");
    let out = probe(&b, &["flood", "/d/out", "1000000"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("flood /d/out 1000000: ok"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("len=1000000 "), "{line}");
    let enters: u64 = line
        .rsplit("enters=")
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        enters < 1_000_000 / 100,
        "one doorbell per batch, not per write: {line}"
    );
    assert_eq!(std::fs::metadata(b.join("d/out")).unwrap().len(), 1_000_000);
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// At least 60 distinct bad requests, each with its documented error; the
/// launcher's descriptors are the same before and after, and it serves a
/// good request afterwards.
#[test]
fn hostile_guest_gets_documented_errors_and_leaks_nothing() {
    require_kvm!();
    let b = scratch("hostile");
    std::fs::write(b.join("d/f"), "f").unwrap();
    std::fs::create_dir(b.join("d/sub")).unwrap();
    std::fs::write(b.join("d/sub/y"), "y").unwrap();
    let mut child = Command::new(app("fsprobe"))
        .args([
            "--dir",
            &dir_flag(&b.join("d"), ":/d"),
            "--",
            "wait",
            "hostile",
            "/d",
            "wait",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut until_ready = |seen: &mut Vec<String>| loop {
        let l = lines.next().expect("fsprobe ended early").unwrap();
        if l == "wait : ok ready" {
            return;
        }
        seen.push(l);
    };
    until_ready(&mut seen);
    let before = fd_count(pid);
    stdin.write_all(b"\n").unwrap();
    until_ready(&mut seen);
    let after = fd_count(pid);
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    let summary = seen
        .iter()
        .find(|l| l.starts_with("hostile: "))
        .unwrap_or_else(|| panic!("{text}"));
    let cases: usize = summary["hostile: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cases >= 60, "{summary}");
    assert!(
        summary.ends_with("cases, 0 failed, still serving: true"),
        "{text}"
    );
    assert!(
        before > 0 && before == after,
        "launcher fds before {before}, after {after}"
    );
    assert_eq!(status.code(), Some(0));
}
