//! `cargo xtask bench std`: unmodified std programs against the same
//! source run natively.
//!
//! - `rayon-2-vcpus-vs-2-threads`: apps/std-rayon's reduction kernel (its
//!   own best-of-rounds time, no boot in it) with two rayon workers in
//!   both: the guest on `--cpus 3` (vCPUs 1 and 2 run the workers, vCPU 0
//!   runs `main`, which waits), the host with `RAYON_NUM_THREADS=2`. Goal
//!   <= 1.10.
//! - `std-start-vs-no_std-hello`: a std program's whole process (spawn to
//!   exit) when its `main` exits at once (`std-hello --exit 0`: std's
//!   start-up, argv, the TLS block, one line), against apps/hello, the
//!   no_std hello. Goal <= 1.20.
//!
//! Alternating runs in one session, medians and ratios printed and
//! recorded (target/bench/results.json, target/bench/std.svg); no pass/fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{ms, plot, results, time_once};
use crate::{guests, project_root, Arch};

/// The reduction's size and rounds: about 0.1 s a round natively here.
const N: &str = "20000000";
const ROUNDS: &str = "3";

/// The native build of std-rayon (the tests' directory, target/std/native).
fn native_rayon(sh: &Shell) -> Result<PathBuf> {
    let dir = project_root().join("target/std/native");
    cmd!(
        sh,
        "cargo build --release --quiet -p std-rayon --target-dir {dir}"
    )
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .run()?;
    Ok(dir.join("release/std-rayon"))
}

/// The nanoseconds a `std-rayon --time` run printed.
fn kernel_ns(cmd: &mut Command) -> Result<f64> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ns: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("{cmd:?} printed {text:?}, not nanoseconds"))?;
    Ok(Duration::from_nanos(ns).as_secs_f64() * 1e3)
}

fn guest_rayon(app: &Path) -> Command {
    let mut c = Command::new(app);
    c.args([
        "--cpus",
        "3",
        "-e",
        "RAYON_NUM_THREADS=2",
        "--",
        "--time",
        N,
        ROUNDS,
    ]);
    c
}

fn host_rayon(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args(["--time", N, ROUNDS])
        .env_clear()
        .env("RAYON_NUM_THREADS", "2");
    c
}

pub fn std_apps(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build(
        sh,
        Arch::X86_64,
        &["hello".into(), "std-hello".into(), "std-rayon".into()],
    )?
    .check()?;
    sh.create_dir(project_root().join("target/bench"))?;
    let native = native_rayon(sh)?;
    let rayon = guests::packed(Arch::X86_64, "std-rayon");
    let (mut g, mut n) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        g.push(kernel_ns(&mut guest_rayon(&rayon))?);
        n.push(kernel_ns(&mut host_rayon(&native))?);
    }
    let std_hello = guests::packed(Arch::X86_64, "std-hello");
    let hello = guests::packed(Arch::X86_64, "hello");
    let std_start = || {
        Command::new(&std_hello)
            .args(["--", "--exit", "0"])
            .output()
    };
    for _ in 0..3 {
        std_start()?;
        time_once(&mut Command::new(&hello))?;
    }
    let (mut s, mut h) = (Vec::new(), Vec::new());
    for _ in 0..runs * 8 {
        s.push(time_once(
            Command::new(&std_hello).args(["--", "--exit", "0"]),
        )?);
        h.push(time_once(&mut Command::new(&hello))?);
    }
    let entries = [
        results::Entry::new(
            "std",
            "rayon-2-vcpus-vs-2-threads",
            "ms",
            "lower",
            &mut g,
            &mut n,
        ),
        results::Entry::new(
            "std",
            "std-start-vs-no_std-hello",
            "ms",
            "lower",
            &mut ms(&s),
            &mut ms(&h),
        ),
    ];
    let json = results::record("std", &entries)?;
    let svg = plot::group("std", &entries)?;
    results::print(
        &format!(
            "std benchmark ({runs} alternating runs of std-rayon --time {N} {ROUNDS}, guest --cpus 3 with 2 workers vs native 2 workers, goal <= 1.10; {} runs of std-hello --exit 0 vs the no_std hello, whole process, goal <= 1.20)",
            runs * 8
        ),
        &entries,
        &[&json, &svg],
    );
    Ok(())
}
