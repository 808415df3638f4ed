//! Shared by the `vessel serve` tests: start a server on a free loopback
//! port, speak plain HTTP/1.1 to it, read what it counts, stop it.

// Each test file uses part of these helpers.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `vessel serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

/// One response: status, headers (names lower case), body.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Header `name`'s value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// `vessel serve APP --listen 127.0.0.1:0 ARGS...`, once it listens.
    pub fn start(app: &str, args: &[&str]) -> Server {
        let vessel = vessel_tests::app("vessel");
        let mut cmd = Command::new(vessel);
        cmd.arg("serve");
        if !app.is_empty() {
            cmd.arg(vessel_tests::app(app));
        }
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vessel serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("vessel serve: listening on http://") {
                    let addr = rest.split(' ').next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!("vessel serve did not start: {}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `POST path` with `headers` and `body`.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.addr, "POST", path, headers, body)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        request(self.addr, "GET", path, &[], b"")
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until no request runs or waits (what follows a response,
    /// a discard or a restore, is counted then).
    pub fn settled(&self) -> &Server {
        let t = Instant::now();
        while self.metric("vessel_pool_busy") != 0.0 || self.metric("vessel_queue_depth") != 0.0 {
            assert!(t.elapsed() < Duration::from_secs(30), "never settled");
            std::thread::sleep(Duration::from_millis(10));
        }
        self
    }

    /// The value of metric line `name` (with its labels) at `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let m = self.get("/metrics");
        assert_eq!(m.status, 200);
        parse_metrics(&m.text())
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or(0.0)
    }

    /// SIGTERM, then wait (at most `within`) for the exit.
    pub fn terminate(mut self, within: Duration) -> (ExitStatus, String) {
        // SAFETY: kill with our own child's pid.
        unsafe { libc::kill(self.child.id().cast_signed(), libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50));
                return (st, self.log());
            }
            assert!(
                t.elapsed() < within,
                "no exit {within:?} after SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every sample line of a Prometheus text exposition as (name with
/// labels, value); panics on a line that is neither a comment nor a sample.
pub fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            let bare = name.split('{').next().unwrap_or("");
            assert!(
                !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad metric name in {l:?}"
            );
            if let Some(labels) = name.strip_prefix(bare) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                    "{l:?}"
                );
            }
            (name.to_string(), value)
        })
        .collect()
}

/// One HTTP/1.1 exchange on a new connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send head");
    // A server may answer (413) before reading a large body and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    let body = raw[end + 4..].to_vec();
    if let Some(len) = headers.iter().find(|(n, _)| n == "content-length") {
        assert_eq!(len.1.parse::<usize>().ok(), Some(body.len()), "body length");
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// Open fds, threads and resident KiB of process `pid`.
pub fn footprint(pid: u32) -> (usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (fds, threads, rss)
}
