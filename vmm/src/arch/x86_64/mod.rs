//! x86_64: everything architecture-specific on the host.
//!
//! The launcher prepares all privileged state (page tables, GDT, IDT, TSS,
//! CPUID, control registers, XCR0) and starts each vCPU directly at CPL3:
//! on this project's machines CPL0 guest code is emulated instruction by
//! instruction, CPL3 code runs natively. On VMX hosts this costs nothing.

mod caps;
pub mod debug;
mod descriptors;
mod fault;
pub mod layout;
mod memory;
pub mod paging;
mod regs;
mod state;
mod vcpu;

use kvm_ioctls::{Kvm, VmFd};
use vessel_abi::arch::x86_64 as abi;

use crate::elf::Machine;
use crate::error::{KvmContext, Result};

pub use caps::{async_pf_supported, CAPS};
pub use fault::{crash_report, fault_report, fault_report_trusted};
pub use layout::{LAZY_ALIGN, LAZY_BASE, LAZY_LIMIT, PAGE_TABLES, PAGE_TABLE_SIZE};
pub use memory::setup_memory;
pub use state::{cpu_of, restore_vcpu, save_vcpu, VcpuState, SETTLE_BEFORE_RESTORE};
pub use vcpu::*;

/// Whether this architecture has SVE (the GuestHeader request applies).
pub const HAS_SVE: bool = false;
/// The ELF machine guests for this launcher are built for.
pub const MACHINE: Machine = Machine::X86_64;
/// Guest-physical address where RAM starts.
pub const RAM_BASE: u64 = 0;
/// The most guest RAM (the ABI's limit).
pub const MAX_RAM: u64 = abi::MAX_RAM;
pub use vessel_abi::MAX_VCPUS;
/// Lowest RAM size that leaves room for the system area, an image and a stack.
pub const MIN_RAM: u64 = 4 << 20;

/// The guest-physical addresses this layout uses for RAM-backed data.
pub fn image_window(ram_size: u64) -> (u64, u64) {
    (abi::IMAGE_BASE, ram_size)
}

/// The boot area: `[start, end)` guest-physical.
pub fn boot_area() -> (u64, u64) {
    (layout::BOOT_AREA, abi::IMAGE_BASE)
}

/// The doorbell addresses (see `vm::Doorbell`).
pub use abi::{DOORBELL, DOORBELL_FAULT};

/// Create the VM; `_top` (the highest guest-physical address used) needs no
/// choice on x86_64.
pub fn create_vm(kvm: &Kvm, _top: u64) -> Result<VmFd> {
    let vm = kvm.create_vm().kvm("KVM_CREATE_VM")?;
    // Needed on VMX hosts before the first KVM_RUN; harmless elsewhere.
    vm.set_tss_address(0xfffb_d000).kvm("KVM_SET_TSS_ADDR")?;
    Ok(vm)
}

/// The in-kernel interrupt controller, created after the memory slots.
///
/// Vessel needs only the local APIC (MSIs, LAPIC timer, halt and wake, KVM's
/// async-PF "ready" interrupt), so it asks for the split irqchip (LAPIC in
/// the kernel, no PIC/IOAPIC) where KVM has it. Measured here: a VM with the
/// full irqchip takes 10-13 ms to tear down, a split one well under 1 ms;
/// and a memslot added after either irqchip waits 6-8 ms for an SRCU grace
/// period, against 0.1 ms before it. Both would dominate boot time.
pub fn create_devices(vm: &VmFd) -> Result<()> {
    if vm.check_extension_raw(kvm_bindings::KVM_CAP_SPLIT_IRQCHIP.into()) == 1 {
        let cap = kvm_bindings::kvm_enable_cap {
            cap: kvm_bindings::KVM_CAP_SPLIT_IRQCHIP,
            args: [0, 0, 0, 0],
            ..Default::default()
        };
        vm.enable_cap(&cap)
            .kvm("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP)")
    } else {
        vm.create_irq_chip().kvm("KVM_CREATE_IRQCHIP")
    }
}
