//! aarch64: everything architecture-specific on the host.
//!
//! The app runs at EL1 (EL1h: SP_EL1 is its stack), not EL0. On arm64 KVM
//! EL1 code runs natively, so nothing is lost, and it keeps guest-rt tiny:
//! no exception-return path, no syscall layer, FP/SVE and the counter
//! usable directly, and the only privileged code is a 16-entry vector table
//! that reports a fault frame through the fault doorbell. The launcher sets
//! every privileged register itself before the first KVM_RUN: page tables
//! (identity map, 4 KiB granule, 39-bit VA), MAIR/TCR/TTBR0/SCTLR (MMU and
//! caches on), VBAR_EL1 (the guest's table from its GuestHeader), CPACR_EL1
//! (FP, and SVE when granted), SP_EL1/SP_EL0 and PSTATE (EL1h, DAIF masked).
//!
//! The memory map is in [`layout`].

mod caps;
pub mod debug;
mod fault;
mod layout;
mod memory;
mod paging;
mod regs;
mod state;
mod vcpu;

use kvm_ioctls::{Kvm, VmFd};
use vessel_abi::arch::aarch64 as abi;

use crate::elf::Machine;
use crate::error::{KvmContext, Result};

pub use caps::{async_pf_supported, CAPS};
pub use fault::{crash_report, fault_report, fault_report_trusted};
pub use layout::{LAZY_ALIGN, LAZY_BASE, LAZY_LIMIT, PAGE_TABLES, PAGE_TABLE_SIZE, RAM_BASE};
pub use memory::setup_memory;
pub use state::{cpu_of, restore_vcpu, save_vcpu, VcpuState, SETTLE_BEFORE_RESTORE};
pub use vcpu::*;

/// Whether this architecture has SVE (the GuestHeader request applies).
pub const HAS_SVE: bool = true;
/// The ELF machine guests for this launcher are built for.
pub const MACHINE: Machine = Machine::Aarch64;
/// Largest RAM: what the page-table area and a 39-bit VA space hold.
pub const MAX_RAM: u64 = abi::MAX_RAM;
/// Lowest RAM size that leaves room for the boot area, an image and a stack.
pub const MIN_RAM: u64 = 4 << 20;
pub use vessel_abi::MAX_VCPUS;

/// Where an image may lie in a VM whose RAM ends at `ram_end`: `[lo, hi)`.
pub fn image_window(ram_end: u64) -> (u64, u64) {
    (abi::IMAGE_BASE, ram_end)
}

/// The boot area: `[start, end)` guest-physical.
pub fn boot_area() -> (u64, u64) {
    (layout::BOOT_AREA, abi::IMAGE_BASE)
}

/// The doorbell addresses (see `vm::Doorbell`).
pub use abi::{DOORBELL, DOORBELL_FAULT};

/// Create a VM whose IPA size holds every guest-physical address below
/// `top`; refuse before creating it when the host cannot.
pub fn create_vm(kvm: &Kvm, top: u64) -> Result<VmFd> {
    let (vm_type, _bits) = crate::ipa::choose(top, kvm.get_host_ipa_limit())?;
    let vm = kvm
        .create_vm_with_type(vm_type)
        .kvm(format!("KVM_CREATE_VM(type {vm_type})"))?;
    // Loads/stores KVM cannot decode (ldp, SVE) to a hole would fail KVM_RUN;
    // with this they exit as KVM_EXIT_ARM_NISV, reported as a guest fault.
    if kvm.check_extension_raw(kvm_bindings::KVM_CAP_ARM_NISV_TO_USER.into()) > 0 {
        let cap = kvm_bindings::kvm_enable_cap {
            cap: kvm_bindings::KVM_CAP_ARM_NISV_TO_USER,
            ..Default::default()
        };
        vm.enable_cap(&cap)
            .kvm("KVM_ENABLE_CAP(ARM_NISV_TO_USER)")?;
    }
    Ok(vm)
}

/// In-kernel devices, created after the memslot: none on aarch64 (the guest
/// runs with interrupts masked; async page faults need no interrupt, see
/// [`async_pf_supported`]).
pub fn create_devices(_vm: &VmFd) -> Result<()> {
    Ok(())
}
