//! What the arm64 suite needs installed: qemu-system-aarch64 (apt) and
//! Debian's arm64 kernel with KVM built in (`apt-get download`, extracted
//! under target/arm64-kernel).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{project_root, setup};

fn kernel_dir() -> PathBuf {
    project_root().join("target/arm64-kernel")
}

/// The kernel the suite boots: `$VESSEL_ARM64_KERNEL` if set (to try
/// another kernel, e.g. Debian 13's 6.12), else the one `setup` installs.
pub fn kernel() -> PathBuf {
    std::env::var_os("VESSEL_ARM64_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| kernel_dir().join("vmlinuz"))
}

/// What `setup` checked, for `cargo xtask setup`'s closing line.
pub fn checked() -> String {
    let pkg = std::fs::read_to_string(kernel_dir().join("kernel-package")).unwrap_or_default();
    format!(
        "qemu-system-aarch64 installed, arm64 kernel {} at {}",
        pkg.trim(),
        kernel().display()
    )
}

/// qemu-system-aarch64 and an arm64 kernel with KVM built in.
pub fn setup(sh: &Shell) -> Result<()> {
    if cmd!(sh, "qemu-system-aarch64 --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        setup::apt_install(sh, &["qemu-system-arm"])?;
    }
    let dir = kernel_dir();
    if dir.join("vmlinuz").exists() {
        return Ok(());
    }
    let pkg = kernel_package(sh)?;
    install_kernel(sh, &pkg, &dir)?;
    eprintln!("xtask: arm64 kernel {pkg} in {}", dir.display());
    Ok(())
}

fn sudo() -> &'static str {
    if setup::is_root() {
        "env"
    } else {
        "sudo"
    }
}

/// The versioned kernel package Debian's `linux-image-arm64` names (arm64
/// is added as a foreign architecture first if it is not one yet).
fn kernel_package(sh: &Shell) -> Result<String> {
    let sudo = sudo();
    let foreign = cmd!(sh, "dpkg --print-foreign-architectures").read()?;
    if !foreign.lines().any(|l| l.trim() == "arm64") {
        cmd!(sh, "{sudo} dpkg --add-architecture arm64").run()?;
        cmd!(sh, "{sudo} apt-get update -q").run()?;
    }
    let deps = match cmd!(sh, "apt-cache depends linux-image-arm64:arm64").read() {
        Ok(d) => d,
        Err(_) => {
            cmd!(sh, "{sudo} apt-get update -q").run()?;
            cmd!(sh, "apt-cache depends linux-image-arm64:arm64").read()?
        }
    };
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|p| p.trim().trim_end_matches(":arm64"))
        .find(|p| p.starts_with("linux-image-"))
        .context("apt-cache depends linux-image-arm64:arm64 names no linux-image package")?;
    Ok(pkg.to_string())
}

/// Download `pkg`, check that KVM is built in, and keep its vmlinuz in `dir`.
fn install_kernel(sh: &Shell, pkg: &str, dir: &Path) -> Result<()> {
    let dl = dir.join("download");
    let _ = std::fs::remove_dir_all(&dl);
    sh.create_dir(&dl)?;
    {
        let _d = sh.push_dir(&dl);
        let spec = format!("{pkg}:arm64");
        cmd!(sh, "apt-get download -q {spec}").run()?;
    }
    let deb = std::fs::read_dir(&dl)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let x = dl.join("x");
    cmd!(sh, "dpkg-deb -x {deb} {x}").run()?;
    let (vmlinuz, config) = boot_files(&x.join("boot"))?;
    if let Some(c) = config {
        let text = std::fs::read_to_string(&c)?;
        if !text.lines().any(|l| l == "CONFIG_KVM=y") {
            bail!(
                "{pkg}: KVM is not built in (CONFIG_KVM=y missing); the initramfs has no modules"
            );
        }
    }
    std::fs::copy(&vmlinuz, dir.join("vmlinuz"))?;
    std::fs::write(dir.join("kernel-package"), format!("{pkg}\n"))?;
    let _ = std::fs::remove_dir_all(&dl);
    Ok(())
}

/// The package's `/boot/vmlinuz-*` and, if present, its `/boot/config-*`.
fn boot_files(boot: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let mut vmlinuz = None;
    let mut config = None;
    for e in std::fs::read_dir(boot)? {
        let p = e?.path();
        let n = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if n.starts_with("vmlinuz-") {
            vmlinuz = Some(p);
        } else if n.starts_with("config-") {
            config = Some(p);
        }
    }
    let vmlinuz = vmlinuz.context("the kernel package has no /boot/vmlinuz-*")?;
    Ok((vmlinuz, config))
}
