//! `cargo xtask bench embed`: embedded calls, restores and sandbox
//! creation against baselines measured in the same run (a raw doorbell
//! exit, the raw-KVM floor of VM creation). The measuring program is
//! `vmm/examples/embed_bench.rs`, driving the `funcs` app; ratios are
//! printed, never asserted.

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::{guests, Arch};

/// `runs` rounds of every measurement.
pub fn embed(sh: &Shell, runs: usize) -> Result<()> {
    crate::setup::setup(sh, Arch::X86_64)?;
    guests::build(sh, Arch::X86_64, &["funcs".to_string()])?.check()?;
    let elf = guests::guest_elf(Arch::X86_64, "funcs");
    let runs = runs.to_string();
    cmd!(
        sh,
        "cargo run --release --quiet -p vmm --example embed_bench -- {elf} {runs}"
    )
    .run()?;
    Ok(())
}
