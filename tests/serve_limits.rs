//! `vessel serve` limits and operations: request and response size,
//! per-request timeout, a full queue, graceful shutdown on SIGTERM,
//! `/metrics` in Prometheus text format, a flood of failures leaking no
//! fds, threads or memory, dropping privileges, one-line start errors,
//! and the deployment examples under vmm/deploy/ run as written.

#[path = "serve_util.rs"]
mod serve_util;

use std::process::Command;
use std::time::{Duration, Instant};

use serve_util::{footprint, parse_metrics, Server};
use vessel_tests::kvm_or_skip;

#[test]
fn sizes_and_timeouts_are_limited_per_request() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start(
        "fn-echo",
        &[
            "--reuse",
            "--pool",
            "1",
            "--max-request",
            "1K",
            "--max-response",
            "2K",
            "--timeout",
            "0.3",
        ],
    );
    assert_eq!(srv.post("/fn/echo", &[], &[b'a'; 1024]).status, 200);
    let r = srv.post("/fn/echo", &[], &[b'a'; 1025]);
    assert_eq!(r.status, 413);
    assert!(r.text().contains("request_too_large"), "{}", r.text());
    assert_eq!(srv.post("/fn/huge?2048", &[], b"").status, 200);
    let r = srv.post("/fn/huge?2049", &[], b"");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("response_too_large"), "{}", r.text());
    let t = Instant::now();
    let r = srv.post("/fn/spin", &[], b"");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("\"timeout\""), "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(10));
    // The spinning VM was replaced; the next request is served.
    assert_eq!(srv.post("/fn/echo", &[], b"after").text(), "after");
    assert_eq!(
        srv.metric("vessel_guest_exits_total{reason=\"timeout\"}"),
        1.0
    );
}

#[test]
fn a_full_queue_is_answered_503() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start(
        "fn-echo",
        &["--reuse", "--pool", "1", "--queue", "1", "--timeout", "3"],
    );
    std::thread::scope(|s| {
        let busy = s.spawn(|| srv.post("/fn/slow?1500", &[], b""));
        let queued = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            srv.post("/fn/slow?10", &[], b"")
        });
        std::thread::sleep(Duration::from_millis(700));
        let r = srv.post("/fn/echo", &[], b"x");
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("queue_full"), "{}", r.text());
        assert_eq!(busy.join().expect("busy").status, 200);
        assert_eq!(queued.join().expect("queued").status, 200);
    });
    assert_eq!(srv.metric("vessel_requests_rejected_total"), 1.0);
    assert_eq!(srv.post("/fn/echo", &[], b"y").status, 200);
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits_0() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--fresh", "--pool", "2", "--stats"]);
    let addr = srv.addr;
    let inflight =
        std::thread::spawn(move || serve_util::request(addr, "POST", "/fn/slow?800", &[], b""));
    std::thread::sleep(Duration::from_millis(300));
    let (status, log) = srv.terminate(Duration::from_secs(20));
    let r = inflight.join().expect("in-flight request");
    assert_eq!((r.status, r.text()), (200, "slept 800 ms".to_string()));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("vessel serve: stats") && log.contains("200: 1"),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after exit"
    );
}

#[test]
fn metrics_are_prometheus_text() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--reuse", "--pool", "2"]);
    for _ in 0..5 {
        assert_eq!(srv.post("/fn/echo", &[], b"m").status, 200);
    }
    assert_eq!(srv.post("/fn/crash", &[], b"").status, 500);
    let text = srv.settled().get("/metrics").text();
    let samples = parse_metrics(&text);
    let get = |n: &str| samples.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    assert_eq!(
        get("vessel_requests_total{code=\"200\"}"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        get("vessel_requests_total{code=\"500\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get("vessel_guest_exits_total{reason=\"ok\"}"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        get("vessel_guest_exits_total{reason=\"crash\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(get("vessel_pool_size"), Some(2.0));
    assert_eq!(
        get("vessel_vms_created_total"),
        Some(3.0),
        "two, then one for the crashed: {text}"
    );
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(k, _)| k.starts_with("vessel_request_duration_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {text}"
    );
    assert_eq!(
        buckets.last().copied(),
        get("vessel_request_duration_seconds_count")
    );
    assert_eq!(get("vessel_request_duration_seconds_count"), Some(6.0));
    // Every family is announced with HELP and TYPE before its samples.
    for (k, _) in &samples {
        let family = k.split('{').next().unwrap_or("");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(family, |f, s| f.strip_suffix(s).unwrap_or(f));
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {k}"
        );
    }
}

#[test]
fn a_flood_of_failures_leaks_nothing() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--reuse", "--pool", "2", "--timeout", "0.2"]);
    let flood = |n: usize| {
        std::thread::scope(|s| {
            for c in 0..2 {
                let srv = &srv;
                s.spawn(move || {
                    for i in 0..n {
                        let f = ["crash", "panic", "garbage", "huge?100000000"][(i + c) % 4];
                        assert_eq!(srv.post(&format!("/fn/{f}"), &[], b"").status, 500, "{f}");
                    }
                    assert_eq!(srv.post("/fn/spin", &[], b"").status, 504);
                });
            }
        })
    };
    // Measured with nothing in flight (the last connection closed).
    let quiet = || {
        srv.settled();
        std::thread::sleep(Duration::from_millis(200));
        footprint(srv.pid())
    };
    flood(20);
    let before = quiet();
    flood(100);
    let after = quiet();
    assert_eq!(before.0, after.0, "fds before/after 200 failed VMs");
    assert_eq!(before.1, after.1, "threads before/after");
    assert!(
        after.2 < before.2 + 32 * 1024,
        "RSS grew from {} to {} KiB",
        before.2,
        after.2
    );
    assert!(srv.settled().metric("vessel_vms_discarded_total") >= 240.0);
    assert_eq!(srv.post("/fn/echo", &[], b"alive").text(), "alive");
}

#[test]
fn privileges_are_dropped_after_kvm_and_the_socket_are_open() {
    if !kvm_or_skip() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: becoming another user is refused in one line.
        let out = Command::new(vessel_tests::app("vessel"))
            .args([
                "serve",
                "--native",
                "--listen",
                "127.0.0.1:0",
                "--user",
                "0",
            ])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(125));
        return;
    }
    let srv = Server::start(
        "fn-echo",
        &["--reuse", "--pool", "1", "--user", "65534:65534"],
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.pid())).expect("status");
    let line = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        line("Uid:").split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(
        line("Gid:").split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(
        line("CapEff:").split_whitespace().nth(1),
        Some("0000000000000000")
    );
    assert_eq!(line("NoNewPrivs:").split_whitespace().nth(1), Some("1"));
    // VMs are still built with the /dev/kvm opened before.
    assert_eq!(srv.post("/fn/crash", &[], b"").status, 500);
    assert_eq!(srv.post("/fn/echo", &[], b"as nobody").text(), "as nobody");
}

#[test]
fn start_errors_are_one_line() {
    let vessel = vessel_tests::app("vessel");
    let run = |args: &[&str]| {
        let out = Command::new(&vessel)
            .arg("serve")
            .args(args)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["/nonexistent/app"]);
    assert_eq!(code, Some(125));
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _) = run(&[]);
    assert_eq!(code, Some(125), "an app is required");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, err) = run(&["--native", "--listen", &addr]);
    assert_eq!(code, Some(125));
    assert!(
        err.contains("cannot listen on") && err.lines().count() == 1,
        "{err}"
    );
    let (code, err) = run(&["--native", "--listen", "127.0.0.1:0", "--pool", "0"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("--pool 0"), "{err}");
}

/// The file under vmm/deploy/ named `name`.
fn deploy_file(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vmm/deploy")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `--listen X` and `--user X` taken out of `args` (the tests choose their own).
fn without_listen_and_user(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--listen" || a == "--user" {
            it.next();
        } else {
            out.push(a);
        }
    }
    out
}

#[test]
fn the_deployment_examples_start_serve_and_stop() {
    if !kvm_or_skip() {
        return;
    }
    // Kubernetes: the container's args, and its probes on /healthz.
    let k8s = deploy_file("kubernetes.yaml");
    let line = k8s
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: "))
        .expect("args line");
    let args: Vec<String> = serde_json::from_str(line).expect("args are a JSON-style list");
    assert!(
        k8s.contains("readinessProbe:") && k8s.contains("path: /healthz"),
        "{k8s}"
    );
    assert!(
        k8s.contains("devices.kubevirt.io/kvm"),
        "the pod gets /dev/kvm"
    );
    // systemd: ExecStart's flags (after the app path), with backslash continuations.
    let unit = deploy_file("vessel-serve.service");
    let exec = unit
        .split("ExecStart=")
        .nth(1)
        .expect("ExecStart")
        .replace("\\\n", " ");
    let exec = exec.lines().next().unwrap_or("");
    let words: Vec<String> = exec.split_whitespace().skip(3).map(String::from).collect();
    assert!(exec.contains("vessel serve /opt/vessel/fn-echo"), "{exec}");
    assert!(
        unit.contains("DeviceAllow=/dev/kvm rw") && exec.contains("--user vessel"),
        "{unit}"
    );
    for args in [args, words] {
        let args = without_listen_and_user(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = Server::start("fn-echo", &refs);
        assert_eq!(srv.get("/healthz").status, 200, "{refs:?}");
        assert_eq!(srv.post("/fn/echo", &[], b"deployed").text(), "deployed");
        let (status, log) = srv.terminate(Duration::from_secs(20));
        assert_eq!(status.code(), Some(0), "{refs:?}: {log}");
    }
}
