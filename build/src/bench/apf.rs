//! `cargo xtask bench apf`: what async page faults buy, and what they cost.
//!
//! 1. 16 lazyscan tasks over a lazy region with 20 ms per fetched page:
//!    async PF on vs forced synchronous (`--no-async-pf`), same session.
//! 2. No-fault cost: the same app summing the region again after it is
//!    populated (`--passes`, `steady_us`), async PF on vs off, alternating.
//!
//! Ratios are printed, never asserted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{plot, results};
use crate::{guests, project_root, Arch};

fn run(exe: &Path, launcher: &[&str], app: &[&str]) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = Command::new(exe)
        .args(launcher)
        .arg("--")
        .args(app)
        .output()?;
    let d = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{} {launcher:?} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((d, stdout))
}

fn field(out: &str, key: &str) -> Result<u64> {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .with_context(|| format!("lazyscan printed no {key}= in: {out}"))
}

/// `runs` (at least 1) alternating pairs for the no-fault cost.
pub fn apf(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let exe = guests::packed(Arch::X86_64, "lazyscan");
    let dir = project_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let small = dir.join("apf-2m.bin");
    let big = dir.join("apf-32m.bin");
    for (p, len) in [(&small, 2usize << 20), (&big, 32 << 20)] {
        std::fs::write(p, vessel_tests::lazy_test_bytes(len).0)?;
    }
    let lazy_small = format!("data={}", small.display());
    let lazy_big = format!("data={}", big.display());

    println!("apf benchmark: lazyscan, 16 tasks");
    let (t_async, o) = run(&exe, &["--lazy", &lazy_small, "--lazy-latency", "20"], &[])?;
    let pages = field(&o, "not_present")?;
    let (t_sync, _) = run(
        &exe,
        &[
            "--lazy",
            &lazy_small,
            "--lazy-latency",
            "20",
            "--no-async-pf",
        ],
        &[],
    )?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("  2 MiB region, 20 ms per page fetch ({pages} async faults):");
    println!("    async PF           {:9.1} ms", ms(t_async));
    println!("    synchronous        {:9.1} ms", ms(t_sync));
    println!(
        "    speed-up sync/async {:8.2}x  (goal: >= 10x)",
        t_sync.as_secs_f64() / t_async.as_secs_f64()
    );

    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (_, o) = run(&exe, &["--lazy", &lazy_big], &["--passes", "4"])?;
        on.push(field(&o, "steady_us")?);
        let (_, o) = run(
            &exe,
            &["--lazy", &lazy_big, "--no-async-pf"],
            &["--passes", "4"],
        )?;
        off.push(field(&o, "steady_us")?);
    }
    let to_ms = |v: &[u64]| v.iter().map(|&us| us as f64 / 1e3).collect::<Vec<f64>>();
    let entries = [
        results::Entry::new(
            "apf",
            "2MiB-20ms-16tasks-async-vs-sync",
            "ms",
            "lower",
            &mut [ms(t_async)],
            &mut [ms(t_sync)],
        ),
        results::Entry::new(
            "apf",
            "no-fault-on-vs-off",
            "ms",
            "lower",
            &mut to_ms(&on),
            &mut to_ms(&off),
        ),
    ];
    let json = results::record("apf", &entries)?;
    let svg = plot::group("apf", &entries)?;
    results::print(
        &format!("  no-fault cost: 3 passes over a populated 32 MiB region, median of {runs} (guest = async PF on, native = off; goal: <= 1.02)"),
        &entries,
        &[&json, &svg],
    );
    Ok(())
}
