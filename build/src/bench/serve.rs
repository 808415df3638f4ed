//! `cargo xtask bench serve`: `vessel serve` under load from wrk (Debian's
//! package) on loopback, for each lifecycle (`--fresh`, `--reuse`,
//! `--shared`) against the same echo handler compiled natively into the
//! same server (`--native`: same queue, same workers, no VM), alternating
//! in one session. Requests/s, p50/p99/p99.9 latency and peak RSS per
//! mode; ratios printed and recorded, never asserted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::results::{self, Entry};
use crate::{guests, Arch};

/// Seconds of load per mode per round.
const SECONDS: u32 = 5;
/// Open connections (Hyperlight's dashboard uses concurrency 50).
const CONNECTIONS: u32 = 50;

/// wrk's script: a small JSON POST, and one parseable line at the end.
const SCRIPT: &str = r#"wrk.method = "POST"
wrk.body = '{"name":"vessel","values":[1,2,3,4,5,6,7,8]}'
wrk.headers["Content-Type"] = "application/json"
done = function(s, lat, req)
  local e = s.errors
  io.write(string.format("vessel-wrk %.1f %.4f %.4f %.4f %d\n",
    s.requests / (s.duration / 1e6), lat:percentile(50) / 1e3,
    lat:percentile(99) / 1e3, lat:percentile(99.9) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#;

const MODES: [&str; 4] = ["native", "shared", "reuse", "fresh"];

/// One load run: req/s, p50, p99, p99.9 (ms), peak RSS (MiB).
#[derive(Default, Clone)]
struct Sample([f64; 5]);

fn start(vessel: &Path, app: &Path, mode: &str) -> Result<(Child, String)> {
    let mut child = Command::new(vessel)
        .arg("serve")
        .arg(app)
        .args([&format!("--{mode}"), "--pool", "2", "--queue", "4096"])
        .args(["--listen", "127.0.0.1:0"])
        .env("VESSEL_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start vessel serve")?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(r) = l.strip_prefix("vessel serve: listening on http://") {
                    break r.split(' ').next().unwrap_or("").to_string();
                }
            }
            _ => bail!("vessel serve --{mode} did not start"),
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, addr))
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn load(vessel: &Path, app: &Path, script: &Path, mode: &str) -> Result<Sample> {
    let (mut child, addr) = start(vessel, app, mode)?;
    let url = format!("http://{addr}/fn/echo");
    let out = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            &CONNECTIONS.to_string(),
            "-d",
            &format!("{SECONDS}s"),
        ])
        .arg("-s")
        .arg(script)
        .arg(&url)
        .output()
        .context("run wrk")?;
    let rss = peak_rss_mib(child.id());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("vessel-wrk "))
        .with_context(|| format!("no result line from wrk: {text}"))?;
    let v: Vec<f64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    if v.len() != 5 {
        bail!("bad wrk line {line:?}");
    }
    if v[4] > 0.0 {
        bail!("--{mode}: {} requests failed under load: {text}", v[4]);
    }
    if !status.success() {
        bail!("vessel serve --{mode} exited with {status} after SIGTERM");
    }
    Ok(Sample([v[0], v[1], v[2], v[3], rss]))
}

fn ensure_wrk(sh: &Shell) -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: installing wrk (Debian package) for the load test");
    cmd!(sh, "apt-get install -y wrk").run().context(
        "wrk is missing and `apt-get install -y wrk` failed (run `apt-get update` first?)",
    )?;
    Ok(())
}

/// `runs` rounds of every mode, alternating.
pub fn serve(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    ensure_wrk(sh)?;
    guests::build(sh, Arch::X86_64, &["fn-echo".to_string()])?.check()?;
    let vessel = guests::launcher(Arch::X86_64);
    let app = guests::packed(Arch::X86_64, "fn-echo");
    let dir = crate::project_root().join("target/bench");
    sh.create_dir(&dir)?;
    let script = dir.join("serve-wrk.lua");
    std::fs::write(&script, SCRIPT)?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); MODES.len()];
    for round in 0..runs {
        for (i, mode) in MODES.iter().enumerate() {
            let s = load(&vessel, &app, &script, mode)?;
            eprintln!(
                "  round {round} {mode:<7} {:>9.0} req/s  p50 {:.3} p99 {:.3} p99.9 {:.3} ms  rss {:.1} MiB",
                s.0[0], s.0[1], s.0[2], s.0[3], s.0[4]
            );
            samples[i].push(s);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let entries = entries(&samples, runs);
    let file = results::record("serve", &entries)?;
    results::print(
        &format!("serve: each lifecycle vs the native handler (wrk, {CONNECTIONS} connections, {SECONDS} s)"),
        &entries,
        &[&file],
    );
    Ok(())
}

fn entries(samples: &[Vec<Sample>], runs: usize) -> Vec<Entry> {
    let metric = |m: usize, k: usize| samples[m].iter().map(|s| s.0[k]).collect::<Vec<f64>>();
    let kinds = [
        ("req_per_s", "req/s", "higher"),
        ("p50", "ms", "lower"),
        ("p99", "ms", "lower"),
        ("p99.9", "ms", "lower"),
        ("peak_rss", "MiB", "lower"),
    ];
    let mut out = Vec::new();
    for (m, mode) in MODES.iter().enumerate().skip(1) {
        for (k, (name, unit, better)) in kinds.iter().enumerate() {
            let mut e = Entry::new(
                "serve",
                &format!("{mode}/{name}"),
                unit,
                better,
                &mut metric(m, k),
                &mut metric(0, k),
            );
            e.runs = runs;
            out.push(e);
        }
    }
    out
}
