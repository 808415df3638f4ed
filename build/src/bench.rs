//! `cargo xtask bench boot`: how long a packed app takes as a whole process,
//! against the least a raw KVM program needs to run guest code.
//!
//! Both are run alternately in one session (so machine noise hits both
//! alike); the report gives both medians and their ratio. No pass/fail:
//! performance goals are read from the ratio, not asserted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::{guests, project_root, Arch};

mod apf;
mod clock;
mod embed;
pub use apf::apf;
pub use clock::clock;
pub use embed::embed;

fn time_once(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let d = t.elapsed();
    if !out.status.success() && out.status.code() != Some(1) {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(d)
}

pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

pub fn boot(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let out_dir = project_root().join("target/bench");
    sh.create_dir(&out_dir)?;
    let raw = out_dir.join("raw_kvm");
    let src = project_root().join("build/src/bench/raw_kvm.c");
    cmd!(sh, "cc -O2 -o {raw} {src}").run()?;
    let hello = guests::packed(Arch::X86_64, "hello");
    boot_compare(&hello, &raw, runs)
}

fn boot_compare(hello: &Path, raw: &Path, runs: usize) -> Result<()> {
    // Warm the page cache and the KVM module first.
    for _ in 0..3 {
        time_once(&mut Command::new(hello))?;
        time_once(&mut Command::new(raw))?;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(time_once(&mut Command::new(hello))?);
        b.push(time_once(&mut Command::new(raw))?);
    }
    let (ma, mb) = (median(&mut a), median(&mut b));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("boot benchmark ({runs} alternating runs each, whole process: spawn to exit)");
    println!(
        "  target/vessel/hello          median {:8.3} ms  (min {:.3}, max {:.3})",
        ms(ma),
        ms(a[0]),
        ms(a[runs - 1])
    );
    println!(
        "  raw KVM program (baseline)   median {:8.3} ms  (min {:.3}, max {:.3})",
        ms(mb),
        ms(b[0]),
        ms(b[runs - 1])
    );
    println!(
        "  ratio hello / raw            {:.2}  (goal: <= 1.30)",
        ma.as_secs_f64() / mb.as_secs_f64()
    );
    Ok(())
}
