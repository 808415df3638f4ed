//! `cargo xtask soak [--vms N]`: the soak test (tests/soak.rs) at full
//! length: N VMs back to back in one process through the library API and
//! N launcher processes one after another, each checked flat; the
//! figures it prints go in vmm/README.md ("Soak").

use anyhow::{bail, Result};
use std::process::Command;

use crate::{guests, project_root, setup, Arch};

/// Build what the soak runs, then run tests/soak.rs with `vms` VMs of
/// each kind, its figures on stderr.
pub fn run(sh: &xshell::Shell, vms: usize) -> Result<()> {
    setup::setup(sh, Arch::X86_64)?;
    let apps: Vec<String> = ["selftest", "lazyscan", "wc", "funcs"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    guests::build(sh, Arch::X86_64, &apps)?.check()?;
    eprintln!("xtask: soak: {vms} VMs through the library, then {vms} launcher processes");
    let status = Command::new("cargo")
        .args(["test", "--release", "-p", "vessel-tests", "--test", "soak"])
        .args(["--", "--nocapture", "--test-threads", "1"])
        .current_dir(project_root())
        .env("VESSEL_SOAK_VMS", vms.to_string())
        .env("VESSEL_REQUIRE_KVM", "1")
        .env("VESSEL_DIR", guests::packed_dir(Arch::X86_64))
        .env("VESSEL_BIN", guests::launcher(Arch::X86_64))
        .status()?;
    if !status.success() {
        bail!("the soak failed ({status}); its figures and the check that failed are above");
    }
    Ok(())
}
