//! Vessel's host side as a library: load a guest image, build a KVM VM for
//! it, serve its hypercalls and report how it ended.
//!
//! ```no_run
//! let mut host = vmm::Host::open().unwrap();
//! let bytes = std::fs::read("target/x86_64-unknown-linux-musl/release/hello").unwrap();
//! let image = vmm::load_image(bytes).unwrap();
//! let cfg = vmm::VmConfig { args: vec!["hello".into()], ..Default::default() };
//! let outcome = vmm::run(&mut host, &image, &cfg, &mut vmm::StdIo).unwrap();
//! std::process::exit(outcome.exit_code());
//! ```
//!
//! The `vessel` binary is a thin command-line user of this crate.
#![warn(missing_docs)]

pub mod arch;
mod boot;
pub mod caps;
pub mod config;
pub mod console;
pub mod debug;
pub mod elf;
pub mod error;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod hypercall;
pub mod ipa;
pub mod layout;
pub mod lazy;
pub mod limits;
pub mod memory;
pub mod outcome;
pub mod pack;
mod park;
pub mod ring;
mod run;
pub mod sandbox;
pub mod seccomp;
pub mod serve;
mod smp;
pub mod snapshot;
pub mod softapf;
pub mod stats;
pub mod stop;
pub mod sve;
pub mod vcpu;
pub mod vm;
mod wake;

pub use config::VmConfig;
pub use console::{HostIo, StdIo};
pub use error::{Error, Result};
pub use host::{open_kvm, Host};
pub use outcome::{Fault, FaultKind, Outcome, StopReason};
pub use run::Doorbell;
pub use sandbox::{Sandbox, SandboxError};
pub use stop::StopHandle;
pub use vcpu::Vcpu;
pub use vm::Vm;

/// Build a VM for `image` on `host` and run it to its end.
pub fn run(
    host: &mut Host,
    image: &elf::GuestImage,
    cfg: &VmConfig,
    io: &mut dyn HostIo,
) -> Result<Outcome> {
    Vm::new(host, image, cfg)?.run(io)
}

/// [`run`], also returning what the run did ([`stats::Stats`]: exits,
/// hypercalls, async page faults, pages fetched, bytes, times).
pub fn run_with_stats(
    host: &mut Host,
    image: &elf::GuestImage,
    cfg: &VmConfig,
    io: &mut dyn HostIo,
) -> Result<(Outcome, stats::Stats)> {
    let mut vm = Vm::new(host, image, cfg)?;
    let outcome = vm.run(io)?;
    Ok((outcome, vm.stats()))
}

/// The largest guest image the launcher reads.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Read a guest image file: opened without blocking (a FIFO is refused, not
/// waited on), checked to be a regular file, read with a size cap.
pub fn read_image(path: &std::path::Path) -> Result<Vec<u8>> {
    use config::ConfigError;
    use std::io::Read;
    let err = |source: std::io::Error| Error::ReadImage {
        path: path.to_path_buf(),
        source,
    };
    let file = lazy::open_nonblocking(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(ConfigError::ImageNotAFile(path.to_path_buf()).into());
    }
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(ConfigError::ImageTooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The cap holds even if the file grows while it is read.
    file.take(MAX_IMAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(ConfigError::ImageGrew(path.to_path_buf()).into());
    }
    Ok(bytes)
}

/// Parse and check a guest image for this host's architecture.
///
/// The image is not tied to a memory size: [`VmConfig::mem_size`] is the
/// one place that decides it, and [`Vm::new`] checks that the image, the
/// stacks and a heap fit in that much RAM.
pub fn load_image(bytes: Vec<u8>) -> Result<elf::GuestImage> {
    check_image_for(bytes, arch::MACHINE)
}

/// Check a guest image for a launcher of `machine` (which may not be this
/// host's architecture: `vessel pack --launcher` packs foreign launchers).
pub fn check_image_for(bytes: Vec<u8>, machine: elf::Machine) -> Result<elf::GuestImage> {
    use vessel_abi::arch::{aarch64 as a64, x86_64 as x86};
    let (lo, hi) = match machine {
        elf::Machine::X86_64 => (x86::IMAGE_BASE, x86::MAX_RAM),
        elf::Machine::Aarch64 => (a64::IMAGE_BASE, a64::RAM_BASE + a64::MAX_RAM),
    };
    elf::GuestImage::parse(bytes, machine, lo, hi)
}

/// The machine a launcher executable runs on, from its ELF header.
pub fn launcher_machine(launcher: &[u8]) -> Result<elf::Machine, pack::PackError> {
    use object::Object;
    let f = object::File::parse(launcher).map_err(pack::PackError::NotElf)?;
    match f.architecture() {
        object::Architecture::X86_64 => Ok(elf::Machine::X86_64),
        object::Architecture::Aarch64 => Ok(elf::Machine::Aarch64),
        other => Err(pack::PackError::Architecture(other)),
    }
}
