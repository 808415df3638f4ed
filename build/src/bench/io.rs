//! `cargo xtask bench io`: what the I/O ring buys, and what it costs.
//!
//! 1. Exits per 1,000 small console writes and per 1,000 4 KiB file reads:
//!    queued through the ring vs one request per exit (counted by the guest).
//! 2. A ring NOP round trip (doorbell, I/O thread, completion) vs a raw
//!    doorbell exit the launcher answers at once (an unknown call number).
//! 3. Sequential 1 MiB reads and writes of a 64 MiB file: the guest vs the
//!    same loop run natively here, alternating, medians.
//! 4. 16 tasks reading 16 files with 20 ms per request: async vs blocking.
//!
//! Ratios are printed, never asserted.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::{guests, project_root, Arch};

fn probe(dir: &Path, flags: &[&str], steps: &[&str]) -> Result<String> {
    let exe = guests::packed(Arch::X86_64, "fsprobe");
    let d = format!("{}:/d", dir.display());
    let out = Command::new(&exe)
        .args(["--dir", &d])
        .args(flags)
        .arg("--")
        .args(steps)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains(": err ") {
        bail!(
            "fsprobe {steps:?} failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

fn field(out: &str, key: &str) -> Result<f64> {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .with_context(|| format!("no `{key}=` in {out}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn native_seq(path: &Path, out: &Path) -> Result<(f64, f64)> {
    let mut buf = vec![0u8; 1 << 20];
    let mut f = std::fs::File::open(path)?;
    let t = Instant::now();
    let mut total = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    let read = t.elapsed().as_secs_f64();
    let mut o = std::fs::File::create(out)?;
    let t = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = left.min(1 << 20);
        o.write_all(&buf[..n])?;
        left -= n;
    }
    o.sync_all()?;
    Ok((read, t.elapsed().as_secs_f64()))
}

pub fn io(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let dir = project_root().join("target/bench/io");
    std::fs::create_dir_all(&dir)?;
    for i in 0..16u8 {
        std::fs::write(dir.join(format!("f{i}")), vec![i; 4096])?;
    }
    std::fs::write(dir.join("r"), vec![7u8; 64 << 10])?;
    std::fs::write(dir.join("big"), vessel_tests::lazy_test_bytes(64 << 20).0)?;
    println!("io benchmark (x86_64, this machine)");

    let c = probe(&dir, &[], &["bench-console", "1000"])?;
    let (ring, call) = (field(&c, "ring_exits")?, field(&c, "call_exits")?);
    println!("  1,000 console writes: {ring} exits through the ring, {call} one per call: {:.0}x fewer (goal >= 10x)", call / ring.max(1.0));
    let r = probe(&dir, &[], &["bench-reads", "/d/r", "1000"])?;
    let (b, s) = (field(&r, "batched_exits")?, field(&r, "blocking_exits")?);
    println!(
        "  1,000 4 KiB reads:    {b} exits queued, {s} blocking: {:.0}x fewer (goal >= 10x)",
        s / b.max(1.0)
    );

    let (mut ring_us, mut raw_us) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let n = probe(&dir, &[], &["bench-nop", "2000"])?;
        ring_us.push(field(&n, "ring_nop_us")? / 2000.0);
        raw_us.push(field(&n, "raw_exit_us")? / 2000.0);
    }
    let (ru, xu) = (median(ring_us), median(raw_us));
    println!(
        "  round trip: ring NOP {ru:.1} us, raw doorbell exit {xu:.1} us: {:.2}x (goal <= 1.1)",
        ru / xu
    );

    let (mut g_r, mut g_w, mut n_r, mut n_w) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let s = probe(&dir, &[], &["bench-seq", "/d/big", "/d/out"])?;
        let mb = field(&s, "bytes")? / 1e6;
        g_r.push(mb / (field(&s, "read_us")? / 1e6));
        g_w.push(mb / (field(&s, "write_us")? / 1e6));
        let (r, w) = native_seq(&dir.join("big"), &dir.join("out-native"))?;
        n_r.push(mb / r);
        n_w.push(mb / w);
    }
    let (gr, gw, nr, nw) = (median(g_r), median(g_w), median(n_r), median(n_w));
    println!("  64 MiB, 1 MiB requests: read {gr:.0} MB/s guest vs {nr:.0} native: {:.2}x; write {gw:.0} vs {nw:.0}: {:.2}x (goal >= 0.8x)", gr / nr, gw / nw);

    let lat = ["--io-latency", "20"];
    let a = probe(&dir, &lat, &["async", "/d", "16"])?;
    let s = probe(&dir, &lat, &["bench-blocking", "/d", "16"])?;
    let (am, sm) = (field(&a, "ms")?, field(&s, "ms")?);
    println!("  16 tasks x 16 files, 20 ms per request: async {am} ms, blocking {sm} ms: {:.1}x (goal >= 10x)", sm / am.max(1.0));
    Ok(())
}
