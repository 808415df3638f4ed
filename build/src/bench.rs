//! `cargo xtask bench [GROUP] [--runs N] [--compare OLD.json]`: the
//! benchmark groups (`boot`, `apf`, `clock`, `vector`, `alloc`, `std`, ...; all
//! without GROUP).
//!
//! Every group runs its subject and its baseline alternately in one
//! session (so machine noise hits both alike), prints both medians and
//! their ratio, and records them in `target/bench/results.json`
//! (`results`) with one SVG per group (`plot`). No pass/fail: performance
//! goals are read from the ratio, never asserted.
//!
//! `boot` (this file): how long a packed app takes as a whole process,
//! against the least a raw KVM program needs to run guest code.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::{guests, project_root, Arch};

mod alloc;
mod apf;
mod clock;
mod embed;
mod io;
pub mod plot;
pub mod results;
mod serve;
mod smp;
mod std_apps;
mod vector;
pub use alloc::alloc;
pub use apf::apf;
pub use clock::clock;
pub use embed::embed;
pub use io::io;
pub use serve::serve;
pub use smp::smp;
pub use std_apps::std_apps;
pub use vector::{lines, vector};

fn time_once(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let d = t.elapsed();
    if !out.status.success() && out.status.code() != Some(1) {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(d)
}

/// Milliseconds of each duration.
pub fn ms(v: &[Duration]) -> Vec<f64> {
    v.iter().map(|d| d.as_secs_f64() * 1e3).collect()
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
    // What --stats costs: hello with the report written vs without.
    let (mut s, mut p) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        s.push(time_once(
            Command::new(hello).args(["--stats-json", "/dev/null"]),
        )?);
        p.push(time_once(&mut Command::new(hello))?);
    }
    // What seccomp costs: hello (filters on, the default) vs --no-seccomp.
    let (mut f, mut n) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        f.push(time_once(&mut Command::new(hello))?);
        n.push(time_once(Command::new(hello).arg("--no-seccomp"))?);
    }
    let entries = [
        results::Entry::new(
            "boot",
            "hello-vs-raw-kvm",
            "ms",
            "lower",
            &mut ms(&a),
            &mut ms(&b),
        ),
        results::Entry::new(
            "boot",
            "hello-stats-vs-plain",
            "ms",
            "lower",
            &mut ms(&s),
            &mut ms(&p),
        ),
        results::Entry::new(
            "boot",
            "hello-seccomp-vs-none",
            "ms",
            "lower",
            &mut ms(&f),
            &mut ms(&n),
        ),
    ];
    let json = results::record("boot", &entries)?;
    let svg = plot::group("boot", &entries)?;
    results::print(
        &format!(
            "boot benchmark ({runs} alternating runs each, whole process: spawn to exit; hello vs a raw KVM program, goal <= 1.30; hello --stats-json vs hello, goal <= 1.01; hello under seccomp vs --no-seccomp, goal <= 1.05)"
        ),
        &entries,
        &[&json, &svg],
    );
    Ok(())
}
