//! `cargo xtask fuzz`: run the launcher's fuzz targets (`vmm/fuzz`) for a
//! while each, with the stable-Rust mutation runner `vessel-fuzz`.

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

/// The targets, in the order `--all` runs them (as `vessel_fuzz::TARGETS`).
pub const TARGETS: [&str; 6] = ["hypercall", "ring", "path", "elf", "boot_info", "snapshot"];

/// Run `targets` (all of them when `all` or none named) for `secs` each,
/// or until `runs` runs.
pub fn run(
    sh: &Shell,
    targets: &[String],
    all: bool,
    secs: u64,
    runs: Option<u64>,
    seed: u64,
) -> Result<()> {
    let list: Vec<String> = if all || targets.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        targets.to_vec()
    };
    for t in &list {
        if !TARGETS.contains(&t.as_str()) {
            bail!("no fuzz target `{t}` (targets: {})", TARGETS.join(", "));
        }
    }
    cmd!(sh, "cargo build --release --quiet -p vessel-fuzz").run()?;
    let bin = crate::project_root().join("target/release/vessel-fuzz");
    let (secs, seed) = (secs.to_string(), seed.to_string());
    let runs = runs.map_or(u64::MAX, |r| r).to_string();
    let mut failed = Vec::new();
    for t in &list {
        eprintln!("xtask: fuzz {t} for {secs} s");
        if cmd!(sh, "{bin} {t} --seconds {secs} --runs {runs} --seed {seed}")
            .run()
            .is_err()
        {
            failed.push(t.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz findings in: {} (inputs in vmm/fuzz/crashes/)",
            failed.join(", ")
        );
    }
    Ok(())
}
