//! `cargo xtask bench smp`: parallel speed-up of a guest on 2 vCPUs against
//! 1, with the same kernel on 1 and 2 native threads as the baseline, and
//! boot time with 4 vCPUs against 1.
//!
//! The kernel is apps/pi's lattice-point count (integer only, so the
//! soft-float guest and the host run the same instructions); the guest
//! times the kernel itself (no boot in it). Every configuration runs
//! alternately in one session, so machine noise hits all alike. No
//! pass/fail: the goals are read from the printed ratios.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::time_once;
use crate::{guests, project_root, Arch};

/// Radius of the pi kernel: about a second on one core here.
const RADIUS: &str = "20000";

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `ns N` from a run's stdout: the kernel's own time.
fn kernel_time(cmd: &mut Command) -> Result<Duration> {
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {stdout}", out.status);
    }
    let ns = stdout
        .split_whitespace()
        .skip_while(|w| *w != "ns")
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
        .with_context(|| format!("{cmd:?} printed no `ns`: {stdout}"))?;
    Ok(Duration::from_nanos(ns))
}

fn guest(pi: &Path, cpus: &str) -> Command {
    let mut c = Command::new(pi);
    c.args(["--cpus", cpus, "--", "--threads", cpus, RADIUS]);
    c
}

fn native(bin: &Path, threads: &str) -> Command {
    let mut c = Command::new(bin);
    c.args([threads, RADIUS]);
    c
}

pub fn smp(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let out_dir = project_root().join("target/bench");
    sh.create_dir(&out_dir)?;
    let bin = out_dir.join("pi_native");
    let src = project_root().join("build/src/bench/pi_native.rs");
    cmd!(sh, "rustc -O --edition 2021 -o {bin} {src}").run()?;
    let pi = guests::packed(Arch::X86_64, "pi");
    let hello = guests::packed(Arch::X86_64, "hello");
    let mut t: [Vec<Duration>; 6] = Default::default();
    for _ in 0..runs {
        t[0].push(kernel_time(&mut guest(&pi, "1"))?);
        t[1].push(kernel_time(&mut guest(&pi, "2"))?);
        t[2].push(kernel_time(&mut native(&bin, "1"))?);
        t[3].push(kernel_time(&mut native(&bin, "2"))?);
    }
    for _ in 0..runs * 10 {
        t[4].push(time_once(Command::new(&hello).args(["--cpus", "1"]))?);
        t[5].push(time_once(Command::new(&hello).args(["--cpus", "4"]))?);
    }
    let m: Vec<f64> = t.iter_mut().map(|v| median(v).as_secs_f64()).collect();
    let guest_up = m[0] / m[1];
    let native_up = m[2] / m[3];
    println!(
        "smp benchmark ({runs} alternating runs of apps/pi radius {RADIUS}; boot: {} runs)",
        runs * 10
    );
    println!("  guest  1 vCPU   median {:8.1} ms", m[0] * 1e3);
    println!("  guest  2 vCPUs  median {:8.1} ms", m[1] * 1e3);
    println!("  native 1 thread median {:8.1} ms", m[2] * 1e3);
    println!("  native 2 threads median {:7.1} ms", m[3] * 1e3);
    println!("  speed-up guest 2/1 vCPUs    {guest_up:.2}  (goal: >= 1.80)");
    println!("  speed-up native 2/1 threads {native_up:.2}  (baseline)");
    println!(
        "  guest / native speed-up     {:.3}  (goal: >= 0.95)",
        guest_up / native_up
    );
    println!("  boot hello --cpus 1  median {:.3} ms", m[4] * 1e3);
    println!("  boot hello --cpus 4  median {:.3} ms", m[5] * 1e3);
    println!(
        "  ratio boot 4 / 1 vCPUs      {:.2}  (goal: <= 1.50)",
        m[5] / m[4]
    );
    Ok(())
}
