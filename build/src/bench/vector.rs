//! `cargo xtask bench vector`: every kernel of `vessel-kernels` (Rust and
//! assembly, at each ISA level this machine has) in the guest against the
//! same function run natively here, alternating: one guest process
//! (`vector --bench`), then one native pass in this process, `runs` times.
//! Throughput medians and their ratio (goal: >= 0.98 everywhere).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{plot, results};
use crate::{guests, Arch};

/// (unit, rates in M/s per run) by case name `kernel/impl/isa`.
type Rates = BTreeMap<String, (String, Vec<f64>)>;

/// Throughput in millions per second of one sample.
fn rate(ops: f64, ns: f64) -> f64 {
    ops * 1e3 / ns.max(1e-9)
}

/// Run `cmd` once and add its `bench kernel=.. impl=.. isa=.. unit=..
/// ops=.. ns=..` lines (`vessel_kernels::bench::Sample::line`) to `into`.
fn lines_run(cmd: &mut Command, into: &mut Rates) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut seen = 0;
    for line in stdout.lines().filter_map(|l| l.strip_prefix("bench ")) {
        let kv: BTreeMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let get = |k: &str| {
            kv.get(k)
                .copied()
                .with_context(|| format!("no {k}= in `{line}`"))
        };
        let case = format!("{}/{}/{}", get("kernel")?, get("impl")?, get("isa")?);
        let (ops, ns): (f64, f64) = (get("ops")?.parse()?, get("ns")?.parse()?);
        let slot = into
            .entry(case)
            .or_insert_with(|| (String::new(), Vec::new()));
        slot.0 = get("unit")?.to_string();
        slot.1.push(rate(ops, ns));
        seen += 1;
    }
    if seen == 0 {
        bail!("{cmd:?} printed no `bench ` lines: {stdout}");
    }
    Ok(())
}

/// Pair each guest case with its native one: the entries of `group`.
fn entries(group: &str, guest: &mut Rates, native: &mut Rates) -> Result<Vec<results::Entry>> {
    let mut v = Vec::new();
    for (case, (unit, g)) in guest.iter_mut() {
        let Some((_, n)) = native.get_mut(case) else {
            bail!("case {case} ran in the guest but not natively");
        };
        v.push(results::Entry::new(group, case, unit, "higher", g, n));
    }
    Ok(v)
}

/// One native pass over the same tables, in this process.
fn native_run(into: &mut Rates) {
    let t0 = Instant::now();
    let now = || t0.elapsed().as_nanos() as u64;
    vessel_kernels::bench::run(&mut vessel_kernels::available(), &now, &mut |s| {
        let case = format!("{}/{}/{}", s.kernel, s.imp, s.isa);
        let slot = into
            .entry(case)
            .or_insert_with(|| (String::new(), Vec::new()));
        slot.0 = s.unit.to_string();
        slot.1.push(rate(s.ops as f64, s.ns));
    });
}

/// `runs` (at least 1) alternating guest and native passes.
pub fn vector(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let exe = guests::packed(Arch::X86_64, "vector");
    let (mut guest, mut native) = (Rates::new(), Rates::new());
    for _ in 0..runs {
        lines_run(Command::new(&exe).args(["--", "--bench"]), &mut guest)?;
        native_run(&mut native);
    }
    let entries = entries("vector", &mut guest, &mut native)?;
    let json = results::record("vector", &entries)?;
    let svg = plot::group("vector", &entries)?;
    let f = vessel_kernels::x86_64::features();
    results::print(
        &format!(
            "vector benchmark ({runs} alternating guest/native runs; ISAs here: sse2={} avx2={} avx512f={}; goal: ratio >= 0.98)",
            f.sse2, f.avx2, f.avx512f
        ),
        &entries,
        &[&json, &svg],
    );
    if !f.avx512f {
        println!("  avx512: not measured: this CPU has no AVX-512F (the guest refuses it too)");
    }
    Ok(())
}

/// `cargo xtask bench lines NAME --guest APP --native CMD...`: a kernel of
/// your own. Both commands print `bench ...` lines (guest-rt/README.md,
/// "Your own kernel crate"); they run alternately `runs` times and the
/// cases are paired by kernel/impl/isa into group `NAME`.
pub fn lines(name: &str, guest: &std::path::Path, native: &[String], runs: usize) -> Result<()> {
    let Some((prog, args)) = native.split_first() else {
        bail!("--native needs a command");
    };
    let (mut g, mut n) = (Rates::new(), Rates::new());
    for _ in 0..runs {
        lines_run(Command::new(guest).args(["--", "--bench"]), &mut g)?;
        lines_run(Command::new(prog).args(args), &mut n)?;
    }
    let entries = entries(name, &mut g, &mut n)?;
    let json = results::record(name, &entries)?;
    let svg = plot::group(name, &entries)?;
    results::print(
        &format!(
            "{name} benchmark ({runs} alternating runs: {} -- --bench vs {})",
            guest.display(),
            native.join(" ")
        ),
        &entries,
        &[&json, &svg],
    );
    Ok(())
}
