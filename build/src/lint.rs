//! `cargo xtask lint`: formatting and clippy, with warnings as errors, for
//! the host crates (also built for the aarch64 launcher's target) and for
//! the guest crates on both guest targets, and `cargo doc` of vmm, vessel-abi
//! and guest-rt with warnings as errors. The lints themselves are policy in
//! the root Cargo.toml's `[workspace.lints]`.

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::{guests, setup, stdapps, Arch};

/// Run every check, then fail naming those that failed.
pub fn lint(sh: &Shell) -> Result<()> {
    let mut failed = Vec::new();
    let mut check = |what: String, ok: bool| {
        if !ok {
            failed.push(what);
        }
    };
    check(
        "cargo fmt --all -- --check".into(),
        cmd!(sh, "cargo fmt --all -- --check").run().is_ok(),
    );
    // The whole workspace on the host: the host crates with their tests,
    // arm64-init, and the guest crates, which are empty off their targets.
    check(
        "clippy (host)".into(),
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --quiet -- -D warnings"
        )
        .run()
        .is_ok(),
    );
    // The aarch64 launcher and /init: vmm's arch/aarch64 only builds there.
    setup::setup(sh, Arch::Aarch64)?;
    let musl = Arch::Aarch64.launcher_target();
    check(
        format!("clippy ({musl})"),
        cmd!(
            sh,
            "cargo clippy --target {musl} -p vmm -p vessel-arm64-init --all-targets --quiet -- -D warnings"
        )
        .run()
        .is_ok(),
    );
    for arch in [Arch::X86_64, Arch::Aarch64] {
        setup::guest_target(sh, arch)?;
        let target = arch.guest_target();
        // std programs and their C library build for the x86_64 guest
        // target only (aarch64-unknown-none has no std). They are checked
        // apart from the no_std apps: one cargo run unifies the features
        // of shared dependencies (serde_json's `std` would reach fn-json).
        let (std_apps, rt_apps): (Vec<String>, Vec<String>) = guests::apps()?
            .into_iter()
            .partition(|a| stdapps::is_std_app(a));
        let mut sets = vec![(String::from("guest-rt"), rt_apps)];
        if arch == Arch::X86_64 {
            sets.push((String::from("vessel-libc"), std_apps));
        }
        for (lib, apps) in sets {
            let pkgs: Vec<String> = std::iter::once(lib)
                .chain(apps)
                .flat_map(|p| ["-p".to_string(), p])
                .collect();
            let pkgs = &pkgs;
            check(
                format!("clippy ({target}: {})", pkgs[1]),
                cmd!(
                    sh,
                    "cargo clippy --target {target} {pkgs...} --quiet -- -D warnings"
                )
                .run()
                .is_ok(),
            );
        }
    }
    // The API documentation builds without a warning (broken links,
    // private links); missing docs are already clippy errors above, since
    // vmm, vessel-abi and guest-rt `#![warn(missing_docs)]`.
    for what in crate::doc::build(sh, true)? {
        failed.push(format!("cargo doc ({what})"));
    }
    if !failed.is_empty() {
        bail!("lint failed: {}", failed.join(", "));
    }
    eprintln!(
        "xtask: lint clean (fmt; clippy for the host, the aarch64 launcher and both guest targets; cargo doc)"
    );
    Ok(())
}
