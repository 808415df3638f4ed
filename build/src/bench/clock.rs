//! `cargo xtask bench clock`: how the guest's own clock (TSC on x86_64, the
//! generic timer on arm64) compares with the host's monotonic clock over
//! the same busy loop (`selftest clock`). The integration tests check only
//! what is structural (both advance; the wall clock lies within the run);
//! the rate is a measurement, printed here, never asserted.

use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{plot, results};
use crate::{guests, Arch};

/// `host H ns guest G ns realtime R` -> (H, G).
fn parse(out: &str) -> Option<(u64, u64)> {
    let w: Vec<&str> = out.split_whitespace().collect();
    let at = |key: &str| w.iter().position(|x| *x == key)?.checked_add(1);
    let host = w.get(at("host")?)?.parse().ok()?;
    let guest = w.get(at("guest")?)?.parse().ok()?;
    Some((host, guest))
}

/// `runs` (at least 1) runs of `selftest clock`; the median ratio.
pub fn clock(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let exe = guests::packed(Arch::X86_64, "selftest");
    let (mut guest_ns, mut host_ns) = (Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&exe).arg("clock").output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("selftest clock failed ({}): {stdout}", out.status);
        }
        let (host, guest) =
            parse(&stdout).with_context(|| format!("selftest clock printed: {stdout}"))?;
        ratios.push(guest as f64 / host.max(1) as f64);
        guest_ns.push(guest as f64 / 1e6);
        host_ns.push(host as f64 / 1e6);
    }
    let e = results::Entry::new(
        "clock",
        "guest-vs-host-elapsed",
        "ms",
        "equal",
        &mut guest_ns,
        &mut host_ns,
    );
    let json = results::record("clock", std::slice::from_ref(&e))?;
    let svg = plot::group("clock", std::slice::from_ref(&e))?;
    ratios.sort_by(f64::total_cmp);
    println!("clock benchmark ({runs} runs of `selftest clock`, x86_64)");
    println!(
        "  guest / host elapsed   median {:.3}  (min {:.3}, max {:.3}; goal: 1.00)",
        ratios[runs / 2],
        ratios[0],
        ratios[runs - 1]
    );
    println!(
        "  written: {}\n  written: {}",
        json.display(),
        svg.display()
    );
    Ok(())
}
