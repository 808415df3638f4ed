//! Installing what the build needs. Idempotent: checks before installing.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::Arch;

/// The rustup targets `arch` needs: its guest target and, for aarch64,
/// the launcher's musl target.
pub fn setup(sh: &Shell, arch: Arch) -> Result<()> {
    add_targets(sh, &targets(arch))
}

fn targets(arch: Arch) -> Vec<&'static str> {
    let mut targets = vec![arch.guest_target()];
    if arch == Arch::Aarch64 {
        targets.push(arch.launcher_target());
    }
    targets
}

/// What `cargo xtask setup` checked for `arch`, for its closing line.
pub fn checked(arch: Arch) -> String {
    format!("rustup targets {} installed", targets(arch).join(", "))
}

/// Only the guest target of `arch` (what `cargo xtask lint` needs).
pub fn guest_target(sh: &Shell, arch: Arch) -> Result<()> {
    add_targets(sh, &[arch.guest_target()])
}

fn add_targets(sh: &Shell, targets: &[&str]) -> Result<()> {
    let installed = cmd!(sh, "rustup target list --installed")
        .read()
        .context("rustup is needed to add guest targets")?;
    for &t in targets {
        if !installed.lines().any(|l| l.trim() == t) {
            cmd!(sh, "rustup target add {t}").run()?;
        }
    }
    Ok(())
}

/// Install Debian packages that are missing (root: apt-get; else sudo).
pub fn apt_install(sh: &Shell, packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let fmt = "${Status}";
            cmd!(sh, "dpkg-query -W -f={fmt} {p}")
                .quiet()
                .ignore_stderr()
                .read()
                .map(|s| !s.contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let prog = if is_root() { "env" } else { "sudo" };
    cmd!(sh, "{prog} apt-get update -q").run()?;
    cmd!(sh, "{prog} DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {missing...}").run()?;
    Ok(())
}

/// Install Python packages that are missing (pip, for the user running
/// the tests).
pub fn pip_install(sh: &Shell, packages: &[&str]) -> Result<()> {
    for p in packages {
        let import = format!("import {}", p.replace('-', "_"));
        if cmd!(sh, "python3 -c {import}")
            .quiet()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            continue;
        }
        cmd!(sh, "python3 -m pip install -q {p}").run()?;
    }
    Ok(())
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
