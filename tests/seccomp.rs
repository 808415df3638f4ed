//! The launcher under seccomp: every thread of a running `vessel` is
//! filtered (read from /proc), `--no-seccomp` says so, a sandbox host
//! thread can ask for the same walls, and a forbidden call made there
//! ends the process with one line naming it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vessel_tests::{app, guest_elf, require_kvm, texts};

/// (name, Seccomp mode, Seccomp_filters) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, u32, u32)> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for t in dir.flatten() {
        let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        v.push((
            field("Name:"),
            field("Seccomp:").parse().unwrap_or(99),
            field("Seccomp_filters:").parse().unwrap_or(0),
        ));
    }
    v
}

/// Start `selftest spin` on 2 vCPUs with a lazy region and a timeout (so a
/// fetch thread, a second vCPU thread and the watchdog exist), wait until
/// its threads are up, and return what /proc says about each.
fn spinning_threads(extra: &[&str]) -> Vec<(String, u32, u32)> {
    let lazy = std::env::temp_dir().join(format!("vessel-seccomp-{}", std::process::id()));
    std::fs::write(&lazy, vec![7u8; 8192]).unwrap();
    let spec = format!("data={}", lazy.display());
    let mut args = vec!["--cpus", "2", "--timeout", "20", "--lazy", &spec];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "spin"]);
    let mut child = Command::new(app("selftest"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < Duration::from_secs(15) {
        seen = threads(child.id());
        let names: Vec<&str> = seen.iter().map(|t| t.0.as_str()).collect();
        if ["vessel-vcpu1", "vessel-fetch-0", "vessel-watchdog"]
            .iter()
            .all(|n| names.contains(n))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&lazy);
    assert!(
        !seen.is_empty(),
        "no threads seen; stderr: {}",
        texts(&out).1
    );
    seen
}

#[test]
fn every_launcher_thread_runs_filtered_and_narrowed_to_its_role() {
    require_kvm!();
    let seen = spinning_threads(&[]);
    for n in ["vessel-vcpu1", "vessel-fetch-0", "vessel-watchdog"] {
        assert!(seen.iter().any(|t| t.0 == n), "{n} not in {seen:?}");
    }
    for (name, mode, filters) in &seen {
        assert_eq!(
            *mode, 2,
            "{name}: Seccomp mode {mode} (want 2, filter) in {seen:?}"
        );
        // The main filter, then the thread's own role (the main thread
        // narrows to the vCPU role when it runs vCPU 0).
        assert!(*filters >= 2, "{name}: {filters} filters in {seen:?}");
    }
}

#[test]
fn no_seccomp_runs_unfiltered_and_says_so() {
    require_kvm!();
    let seen = spinning_threads(&["--no-seccomp"]);
    assert!(seen.iter().all(|t| t.1 == 0), "{seen:?}");
    let out = Command::new(app("hello"))
        .args(["--no-seccomp", "--", "x"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("Hello from a Vessel VM"), "{stdout}");
    let warn: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("--no-seccomp"))
        .collect();
    assert_eq!(warn.len(), 1, "{stderr}");
    assert!(warn[0].contains("debugging only"), "{stderr}");
}

fn sandbox_builder() -> vmm::sandbox::SandboxBuilder {
    vmm::Sandbox::from_path(guest_elf("funcs"))
        .register("double", |a: i64| {
            if a == 666 {
                // A forbidden call from a host function of a filtered thread.
                let _ = std::net::TcpListener::bind("127.0.0.1:0");
            }
            Ok::<_, String>(a * 2)
        })
        .seccomp(true)
}

#[test]
fn a_sandbox_host_thread_can_run_under_the_same_filter() {
    require_kvm!();
    // Its own thread: the filter stays on the thread that asked for it.
    std::thread::spawn(|| {
        let mut host = vmm::Host::open().unwrap();
        let mut sb = sandbox_builder().build(&mut host).unwrap();
        assert_eq!(vmm::seccomp::current(), Some(vmm::seccomp::Role::Sandbox));
        let sum: i64 = sb.call("add", (2i64, 40i64)).unwrap();
        assert_eq!(sum, 42);
        let snap = sb.snapshot().unwrap();
        let twice: i64 = sb.call("call_host", ("double", 21i64)).unwrap();
        assert_eq!(twice, 42, "a host function runs on the filtered thread");
        sb.restore(&snap).unwrap();
        let sum: i64 = sb.call("add", (1i64, 1i64)).unwrap();
        assert_eq!(sum, 2);
    })
    .join()
    .unwrap();
}

#[test]
fn child_sandbox_forbidden_call() {
    if std::env::var_os("VESSEL_SECCOMP_CHILD").is_none() {
        return;
    }
    let mut host = vmm::Host::open().unwrap();
    let mut sb = sandbox_builder().build(&mut host).unwrap();
    let _: Result<i64, _> = sb.call("call_host", ("double", 666i64));
    eprintln!("not reached");
}

#[test]
fn a_forbidden_call_in_a_filtered_sandbox_host_ends_the_process_naming_it() {
    require_kvm!();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_sandbox_forbidden_call", "--nocapture"])
        .env("VESSEL_SECCOMP_CHILD", "1")
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(vessel_abi::exit::SECCOMP),
        "{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("vessel: seccomp:"))
        .unwrap_or_else(|| panic!("no report: {stderr}"));
    assert!(
        line.contains("sandbox thread") && line.contains("`socket`"),
        "{line}"
    );
    assert!(!stderr.contains("not reached"), "{stderr}");
}
