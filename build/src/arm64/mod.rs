//! The arm64 suite: packed aarch64 apps run under real arm64 KVM inside
//! `qemu-system-aarch64 -M virt,virtualization=on` (TCG), booting Debian's
//! arm64 kernel with an initramfs whose /init (build/arm64-init) runs the
//! tests and reports one line each on the serial console.
//!
//! - `kernel`: installing QEMU and the kernel (`cargo xtask setup --arch aarch64`);
//! - `suite`: the test table;
//! - `initramfs`: the archive /init, the apps, the data and the table go in;
//! - `qemu`: booting the machine and counting what /init reports;
//! - `run`: `cargo xtask run APP --arch aarch64`, one app on that machine.
//! - `neon`: the check that plain Rust in a guest is NEON-vectorized.

mod fs_suite;
mod initramfs;
mod kernel;
mod neon;
mod qemu;
pub mod run;
mod scale_suite;
mod smp_suite;
mod suite;

use anyhow::Result;
use xshell::{cmd, Shell};

pub use kernel::{checked, setup};

use crate::testing::Counts;
use crate::{guests, Arch};

/// Build everything, boot the test machine once per CPU model, count.
pub fn test(sh: &Shell) -> Result<Counts> {
    setup(sh)?;
    guests::build_all(sh, Arch::Aarch64)?;
    build_init(sh)?;
    // std programs are not built for arm64 yet (guests::build says so).
    let apps: Vec<String> = guests::apps()?
        .into_iter()
        .filter(|a| !crate::stdapps::is_std_app(a))
        .collect();
    let base = initramfs::base(&apps)?;
    let mut counts = neon::check();
    for (name, cpu, tests) in [
        ("arm64 suite", "max,sve=on", suite::tests(&apps)),
        // A host whose SVE stops at 512 bits (vq 1..=4): the lengths it
        // cannot give must be refused naming those it can, and `max` and
        // the app's own request must mean 512.
        (
            "arm64 suite, SVE up to 512 bits",
            "max,sve=on,sve-max-vq=4",
            suite::restricted_sve_tests(),
        ),
    ] {
        let initrd = initramfs::write(&base, &tests)?;
        counts += qemu::boot(name, cpu, &initrd, tests.len())?;
    }
    eprintln!("xtask: `cargo xtask run APP --arch aarch64`, as a user runs it:");
    counts += run::self_test()?;
    Ok(counts)
}

/// Build the test machine's /init (build/arm64-init).
pub fn build_init(sh: &Shell) -> Result<()> {
    cmd!(
        sh,
        "cargo build --release -p vessel-arm64-init --target aarch64-unknown-linux-musl"
    )
    .run()?;
    Ok(())
}
