//! `vessel serve`: every lifecycle answers concurrent requests correctly,
//! each keeps (or resets) guest state as it promises, a guest that
//! crashes under load fails only its own requests, and the JSON app
//! computes what the host computes.

#[path = "serve_util.rs"]
mod serve_util;

use serve_util::Server;
use vessel_tests::kvm_or_skip;

/// 4 clients x 8 requests each, every body distinct, every answer its own.
fn concurrent_echo(srv: &Server) {
    std::thread::scope(|s| {
        for c in 0..4 {
            s.spawn(move || {
                for i in 0..8 {
                    let body = format!(
                        "{{\"client\":{c},\"i\":{i},\"pad\":\"{}\"}}",
                        "z".repeat(i * 100)
                    );
                    let r = srv.post(
                        "/fn/echo",
                        &[("content-type", "application/json")],
                        body.as_bytes(),
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                    assert_eq!(r.text(), body);
                    assert_eq!(r.header("content-type"), Some("application/json"));
                }
            });
        }
    });
}

/// `count` answers over `n` sequential requests on a one-VM pool.
fn counts(srv: &Server, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| srv.post("/fn/count", &[], b"").text())
        .collect()
}

#[test]
fn fresh_serves_concurrent_requests_each_in_a_new_vm() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--fresh", "--pool", "2"]);
    concurrent_echo(&srv);
    assert_eq!(counts(&srv, 3), ["1", "1", "1"]);
    // Every request had a VM of its own, none was restored.
    assert!(srv.settled().metric("vessel_vms_created_total") >= 35.0);
    assert!(srv.settled().metric("vessel_vms_discarded_total") >= 35.0);
    assert_eq!(srv.settled().metric("vessel_vms_restored_total"), 0.0);
}

#[test]
fn reuse_serves_concurrent_requests_and_restores_between_them() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--reuse", "--pool", "2"]);
    concurrent_echo(&srv);
    assert_eq!(counts(&srv, 3), ["1", "1", "1"]);
    assert_eq!(
        srv.settled().metric("vessel_vms_created_total"),
        2.0,
        "the pool's two VMs only"
    );
    assert!(srv.settled().metric("vessel_vms_restored_total") >= 35.0);
}

#[test]
fn shared_serves_concurrent_requests_and_keeps_state() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--shared", "--pool", "1"]);
    concurrent_echo(&srv);
    assert_eq!(counts(&srv, 3), ["1", "2", "3"]);
    assert_eq!(srv.settled().metric("vessel_vms_created_total"), 1.0);
    assert_eq!(srv.settled().metric("vessel_vms_restored_total"), 0.0);
}

#[test]
fn request_details_reach_the_guest_and_its_answer_the_client() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--reuse", "--pool", "1"]);
    let r = srv.post(
        "/fn/inspect?x=1&y=2",
        &[("x-status", "202"), ("x-reply", "hi there")],
        b"12345",
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("x-guest-reply"), Some("hi there"));
    let t = r.text();
    assert!(t.starts_with("POST x=1&y=2 5\n"), "{t}");
    assert!(
        t.contains("\nx-status: 202\n") && t.contains("\nhost: test\n"),
        "{t}"
    );
    // Routes that are not functions.
    assert_eq!(srv.get("/healthz").status, 200);
    assert_eq!(srv.get("/fn/echo").status, 405);
    assert_eq!(srv.get("/other").status, 404);
    let r = srv.post("/fn/nope", &[], b"");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("\"unknown_function\""), "{}", r.text());
    let r = srv.post("/fn/not_http", &[], b"");
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("\"not_an_http_function\""),
        "{}",
        r.text()
    );
}

#[test]
fn a_crash_under_load_fails_only_its_own_requests() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-echo", &["--reuse", "--pool", "2"]);
    let bad = ["crash", "panic", "garbage", "garbage?header"];
    std::thread::scope(|s| {
        for c in 0..4 {
            let srv = &srv;
            s.spawn(move || {
                for i in 0..10 {
                    if (i + c) % 2 == 0 {
                        let f = bad[(i + c) % bad.len()];
                        let r = srv.post(&format!("/fn/{f}"), &[], b"");
                        assert_eq!(r.status, 500, "{f}: {}", r.text());
                        let kind = f.split('?').next().unwrap_or(f);
                        let kind = if kind == "garbage" { "garbage" } else { kind };
                        let json: serde_json::Value =
                            serde_json::from_slice(&r.body).expect("JSON error");
                        assert_eq!(json["error"], kind, "{}", r.text());
                        assert!(r.body.len() < 600, "a short error: {}", r.text());
                    } else {
                        let body = format!("ok {c} {i}");
                        let r = srv.post("/fn/echo", &[], body.as_bytes());
                        assert_eq!((r.status, r.text()), (200, body));
                    }
                }
            });
        }
    });
    // Each failure threw its VM away; the server still serves.
    assert_eq!(srv.settled().metric("vessel_vms_discarded_total"), 20.0);
    assert_eq!(srv.metric("vessel_requests_total{code=\"500\"}"), 20.0);
    assert_eq!(srv.post("/fn/echo", &[], b"still").text(), "still");
}

#[test]
fn the_json_app_computes_what_the_host_does() {
    if !kvm_or_skip() {
        return;
    }
    let srv = Server::start("fn-json", &["--fresh", "--pool", "1"]);
    let values: Vec<f64> = (0..200).map(|i| f64::from((i * 37) % 101) - 50.5).collect();
    let body = serde_json::json!({ "values": values }).to_string();
    let r = srv.post(
        "/fn/stats",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    let sum: f64 = values.iter().sum();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(v["count"], 200);
    assert_eq!(v["sum"].as_f64(), Some(sum));
    assert_eq!(v["mean"].as_f64(), Some(sum / 200.0));
    assert_eq!(v["min"].as_f64(), Some(sorted[0]));
    assert_eq!(v["max"].as_f64(), Some(sorted[199]));
    let got: Vec<f64> = v["sorted"]
        .as_array()
        .expect("sorted")
        .iter()
        .filter_map(|x| x.as_f64())
        .collect();
    assert_eq!(got, sorted);
    assert_eq!(v["share"][3].as_f64(), Some(values[3] / sum));
    let r = srv.post("/fn/stats", &[], b"{\"values\": [1, \"two\"]}");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not a number"), "{}", r.text());
}
