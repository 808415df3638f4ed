//! Vessel's host side as a library: load a guest image, build a KVM VM for
//! it, serve its hypercalls and report how it ended.
//!
//! ```no_run
//! let mut host = vmm::Host::open().unwrap();
//! let bytes = std::fs::read("target/x86_64-unknown-none/release/hello").unwrap();
//! let image = vmm::load_image(bytes, 128 << 20).unwrap();
//! let cfg = vmm::VmConfig { args: vec!["hello".into()], ..Default::default() };
//! let outcome = vmm::run(&mut host, &image, &cfg, &mut vmm::StdIo).unwrap();
//! std::process::exit(outcome.exit_code());
//! ```
//!
//! The `vessel` binary is a thin command-line user of this crate.

pub mod arch;
mod boot;
pub mod caps;
pub mod elf;
pub mod error;
pub mod hypercall;
pub mod lazy;
pub mod memory;
pub mod pack;
pub mod vm;

pub use error::{Error, Result};
pub use hypercall::{HostIo, StdIo};
pub use vm::{open_kvm, run, Host, Outcome, Vm, VmConfig};

/// Parse and check a guest image for this host's architecture and a VM of
/// `mem_size` bytes.
pub fn load_image(bytes: Vec<u8>, mem_size: u64) -> Result<elf::GuestImage> {
    let (lo, hi) = arch::image_window(arch::RAM_BASE + mem_size);
    elf::GuestImage::parse(bytes, arch::MACHINE, lo, hi)
}
