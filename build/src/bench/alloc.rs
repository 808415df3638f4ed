//! `cargo xtask bench alloc`: apps/heap's allocation-heavy kernels (a
//! `BTreeMap<String, u64>` of 100k, 200k and 1M formatted keys; Vec-of-Vecs
//! churn of 1M and 4M replacements) in the guest against the same source
//! compiled natively with the host's malloc, alternating runs. Times in ms;
//! the ratio is guest time / native time (goal: <= 1.5). Both sides print
//! a checksum per case, and the two must agree.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{plot, results};
use crate::{guests, project_root, Arch};

/// Case name -> (milliseconds per run, checksum).
type Times = BTreeMap<String, (Vec<f64>, String)>;

/// Run `cmd` once and add its `bench kernel=.. isa=.. ns=.. checksum=..`
/// lines to `into`.
fn run_once(cmd: &mut Command, into: &mut Times) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
        let case = format!("{}/{}", get("kernel")?, get("isa")?);
        let ns: f64 = get("ns")?.parse()?;
        let slot = into.entry(case).or_default();
        slot.0.push(ns / 1e6);
        slot.1 = get("checksum")?.to_string();
    }
    Ok(())
}

pub fn alloc(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build(sh, Arch::X86_64, &["heap".to_string()])?;
    let out_dir = project_root().join("target/bench");
    sh.create_dir(&out_dir)?;
    let bin = out_dir.join("alloc_native");
    let src = project_root().join("build/src/bench/alloc_native.rs");
    cmd!(sh, "rustc -O --edition 2021 -o {bin} {src}").run()?;
    let heap = guests::packed(Arch::X86_64, "heap");
    let (mut g, mut n) = (Times::new(), Times::new());
    for _ in 0..runs {
        run_once(
            Command::new(&heap).args(["--mem", "2G", "--", "--bench"]),
            &mut g,
        )?;
        run_once(&mut Command::new(&bin), &mut n)?;
    }
    let mut entries = Vec::new();
    for (case, (gt, gsum)) in g.iter_mut() {
        let Some((nt, nsum)) = n.get_mut(case) else {
            bail!("case {case} ran in the guest but not natively");
        };
        if gsum != nsum {
            bail!("case {case}: the guest's checksum {gsum} is not the native {nsum}");
        }
        entries.push(results::Entry::new("alloc", case, "ms", "lower", gt, nt));
    }
    let json = results::record("alloc", &entries)?;
    let svg = plot::group("alloc", &entries)?;
    results::print(
        &format!("alloc benchmark ({runs} alternating runs: target/vessel/heap --mem 2G -- --bench vs the same kernels natively; ratio = guest time / native time, goal <= 1.50)"),
        &entries,
        &[&json, &svg],
    );
    Ok(())
}
