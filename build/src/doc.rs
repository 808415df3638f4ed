//! `cargo xtask doc`: the API documentation of the launcher library, the
//! ABI crate and the guest runtime (for both guest targets).

use std::path::PathBuf;

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::{project_root, setup, Arch};

/// What is documented: a name, the `--target` (None: the host), the
/// packages, and whether it is guest code (built with `--cfg vessel_guest`,
/// which .cargo/config.toml gives guest builds but not rustdoc).
const PARTS: [(&str, Option<&str>, &[&str], bool); 4] = [
    ("host", None, &["vmm", "vessel-abi"], false),
    (
        "aarch64 launcher",
        Some("aarch64-unknown-linux-musl"),
        &["vmm"],
        false,
    ),
    (
        "x86_64 guest",
        Some("x86_64-unknown-linux-musl"),
        &["guest-rt"],
        true,
    ),
    (
        "aarch64 guest",
        Some("aarch64-unknown-none"),
        &["guest-rt"],
        true,
    ),
];

/// Build every part (`deny`: with warnings as errors); returns the parts
/// that failed.
pub fn build(sh: &Shell, deny: bool) -> Result<Vec<&'static str>> {
    setup::setup(sh, Arch::Aarch64)?;
    setup::guest_target(sh, Arch::X86_64)?;
    let mut failed = Vec::new();
    for (what, target, pkgs, guest) in PARTS {
        let mut flags = Vec::new();
        if deny {
            flags.push("-D warnings");
        }
        if guest {
            flags.push("--cfg vessel_guest");
        }
        let _flags = sh.push_env("RUSTDOCFLAGS", flags.join(" "));
        let target: Vec<&str> = target.map(|t| vec!["--target", t]).unwrap_or_default();
        let pkgs: Vec<String> = pkgs
            .iter()
            .flat_map(|p| ["-p".to_string(), p.to_string()])
            .collect();
        let ok = cmd!(sh, "cargo doc --no-deps --quiet {target...} {pkgs...}")
            .run()
            .is_ok();
        if !ok {
            failed.push(what);
        }
    }
    Ok(failed)
}

/// The index page of each crate's documentation.
pub fn index_pages() -> Vec<PathBuf> {
    let t = project_root().join("target");
    vec![
        t.join("doc/vmm/index.html"),
        t.join("doc/vessel_abi/index.html"),
        t.join("x86_64-unknown-linux-musl/doc/guest_rt/index.html"),
        t.join("aarch64-unknown-none/doc/guest_rt/index.html"),
    ]
}
