//! x86_64 vCPU set-up and control: CPUID, XCR0, segments, control
//! registers and entry state; halting, waking and async-PF registration.

use kvm_bindings::{kvm_xcrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};

use super::descriptors::{gdt_fixed, segment, task_register, USER_CS, USER_DS};
use super::layout::{GDT, IDT, PAGE_TABLES, TSS, TSS_STRIDE, WAKE_VECTOR};
use super::regs::*;
use crate::elf::GuestImage;
use crate::error::{KvmContext, Result};
use crate::layout::Layout;
use crate::softapf::ApfError;
use crate::sve::{SveError, SveRequest, VlSet};

/// Bits of XCR0 Vessel enables when the host has them: x87, SSE, AVX,
/// AVX-512 opmask/ZMM_Hi256/Hi16_ZMM.
pub(super) const XCR0_WANTED: u64 = 0xe7;

/// What the host lets a vCPU be: KVM's supported CPUID table.
pub type HostCpu = kvm_bindings::CpuId;

/// Ask KVM for the CPU model. Slow where the host is itself a guest (every
/// host CPUID traps: about 0.5 ms here), so `Host` asks once per process.
pub fn host_cpu(kvm: &Kvm) -> Result<HostCpu> {
    let mut cpu = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .kvm("KVM_GET_SUPPORTED_CPUID")?;
    super::caps::offer_fsgsbase(&mut cpu);
    super::caps::offer_vector_isa(&mut cpu);
    Ok(cpu)
}

/// Configure vCPU `id`: CPUID, XCR0, segments, control registers, entry state.
#[allow(clippy::too_many_arguments)]
pub fn setup_vcpu(
    kvm: &Kvm,
    cpuid: &HostCpu,
    vcpu: &VcpuFd,
    id: u32,
    l: &Layout,
    image: &GuestImage,
    boot: u64,
    _vector_bits: u32,
) -> Result<()> {
    let entry = image.entry;
    vcpu.set_cpuid2(cpuid).kvm("KVM_SET_CPUID2")?;
    let leaf = |f: u32, i: u32| {
        cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == f && e.index == i)
            .copied()
    };
    let has_xsave = leaf(1, 0).map(|e| e.ecx & (1 << 26) != 0).unwrap_or(false);

    let mut sregs = vcpu.get_sregs().kvm("KVM_GET_SREGS")?;
    let gdt = gdt_fixed();
    sregs.cs = segment(gdt[4], USER_CS);
    let ds = segment(gdt[3], USER_DS);
    sregs.ds = ds;
    sregs.es = ds;
    sregs.fs = ds;
    sregs.gs = ds;
    sregs.ss = ds;
    // GS base: this vCPU's VcpuInfo (`mov %gs:0` is its id at CPL3; the app
    // changes it only with wrgsbase, under CR4.FSGSBASE below; nothing on
    // the host side trusts it).
    sregs.gs.base = crate::boot::vcpu_info_addr(boot, id);
    sregs.tr = task_register(TSS + u64::from(id) * TSS_STRIDE, id as u16);
    sregs.gdt.base = GDT;
    sregs.gdt.limit = ((5 + 2 * u64::from(l.vcpus)) * 8 - 1) as u16;
    sregs.idt.base = IDT;
    sregs.idt.limit = 256 * 16 - 1;
    sregs.cr3 = PAGE_TABLES;
    // PE | MP | ET | NE | WP | PG
    sregs.cr0 = (1 << 0) | (1 << 1) | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 31);
    // PAE | OSFXSR | OSXMMEXCPT (| OSXSAVE) (| FSGSBASE: `std` programs
    // set their thread pointer with wrfsbase at CPL3; the BootInfo feature
    // THREAD_POINTER says so, from the same check).
    sregs.cr4 = (1 << 5) | (1 << 9) | (1 << 10) | if has_xsave { 1 << 18 } else { 0 };
    if super::thread_pointer_supported(cpuid) {
        sregs.cr4 |= 1 << 16;
    }
    // LME | LMA
    sregs.efer = (1 << 8) | (1 << 10);
    // LAPIC enabled in x2APIC mode (BSP): the guest's interrupt stub EOIs
    // with one wrmsr, no MMIO page needed.
    sregs.apic_base = 0xfee0_0000 | (1 << 11) | (1 << 10) | if id == 0 { 1 << 8 } else { 0 };
    vcpu.set_sregs(&sregs).kvm("KVM_SET_SREGS")?;
    // Spurious-interrupt vector register: APIC software-enabled, vector 0xff.
    set_msrs(vcpu, &[(X2APIC_SVR, 0x1ff)], "x2APIC SVR")?;

    if has_xsave && kvm.check_extension_raw(kvm_bindings::KVM_CAP_XCRS.into()) > 0 {
        let host = leaf(0xd, 0)
            .map(|e| u64::from(e.eax) | u64::from(e.edx) << 32)
            .unwrap_or(3);
        let mut xcrs = kvm_xcrs {
            nr_xcrs: 1,
            ..Default::default()
        };
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = (host & XCR0_WANTED) | 1;
        vcpu.set_xcrs(&xcrs).kvm("KVM_SET_XCRS")?;
    }

    let stack_top = l.stacks[id as usize].1;
    let regs = kvm_bindings::kvm_regs {
        rip: entry,
        rsp: stack_top,
        rdi: boot,
        // IF=1: CPL3 code cannot change IF, and "page ready" / wake-up
        // interrupts must reach the guest's stub.
        rflags: 0x202,
        ..Default::default()
    };
    vcpu.set_regs(&regs).kvm("KVM_SET_REGS")?;
    if id != 0 {
        // With the in-kernel LAPIC an application processor starts waiting
        // for INIT/SIPI; Vessel starts every vCPU at the entry directly.
        let mp = kvm_bindings::kvm_mp_state {
            mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE,
        };
        vcpu.set_mp_state(mp).kvm("KVM_SET_MP_STATE(RUNNABLE)")?;
    }
    Ok(())
}

/// vCPU initialisation before its registers are set. SVE is an arm64
/// feature: asking for it here is an error.
pub fn init_vcpu(
    _kvm: &Kvm,
    _vm: &VmFd,
    _vcpu: &VcpuFd,
    sve: Option<SveRequest>,
) -> Result<Option<(u32, VlSet)>> {
    match sve {
        Some(req) => Err(SveError::NotThisArch(req).into()),
        None => Ok(None),
    }
}

/// General-purpose registers of the vCPU (`--dump-regs`; x86_64 has no SVE).
pub fn dump_regs(vcpu: &VcpuFd, id: u32, _vector_bits: u32) -> String {
    match vcpu.get_regs() {
        Ok(r) => format!(
            "vcpu{id} rip {:#x} rsp {:#x} rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} rbp {:#x} r8 {:#x} r9 {:#x} r10 {:#x} r11 {:#x} r12 {:#x} r13 {:#x} r14 {:#x} r15 {:#x} rflags {:#x}\n",
            r.rip, r.rsp, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rflags
        ),
        Err(e) => format!("vcpu{id}: KVM_GET_REGS: {e}\n"),
    }
}

/// Cycle counter frequency the guest sees (TSC), in kHz.
pub fn counter_khz(vcpu: &VcpuFd) -> u64 {
    vcpu.get_tsc_khz().map(u64::from).unwrap_or(0)
}

/// Serve `Call::ApfEnable`: point KVM's async-PF MSRs at the guest's area.
/// The area and vector were checked by the caller.
pub fn apf_enable(vcpu: &VcpuFd, area: u64, vector: u32) -> Result<()> {
    set_msrs(
        vcpu,
        &[
            (MSR_KVM_ASYNC_PF_INT, u64::from(vector)),
            (
                MSR_KVM_ASYNC_PF_EN,
                area | KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT,
            ),
        ],
        "async page faults",
    )
}

/// Wake halted vCPU `id` from any thread: an MSI on [`WAKE_VECTOR`] to its
/// local APIC (physical destination mode, x2APIC id = vCPU id; ids below
/// 256 fit the address's destination field).
pub fn wake(vm: &VmFd, id: u32) -> Result<()> {
    const _: () = assert!(vessel_abi::MAX_VCPUS <= 256);
    let msi = kvm_bindings::kvm_msi {
        address_lo: 0xfee0_0000 | (id << 12),
        data: WAKE_VECTOR,
        ..Default::default()
    };
    vm.signal_msi(msi).kvm("KVM_SIGNAL_MSI").map(|_| ())
}

/// Halt the vCPU until an interrupt arrives (the "wait" hypercall).
pub fn halt(vcpu: &VcpuFd) -> Result<()> {
    let mp = kvm_bindings::kvm_mp_state {
        mp_state: kvm_bindings::KVM_MP_STATE_HALTED,
    };
    vcpu.set_mp_state(mp).kvm("KVM_SET_MP_STATE(HALTED)")
}

/// KVM serves async page faults itself here; the launcher never does.
pub const SOFT_APF: bool = false;

/// A halted vCPU wakes on an interrupt (MSI), so Wait halts in KVM_RUN and
/// Wake sends an MSI; the launcher never blocks a vCPU thread itself.
pub const LAUNCHER_WAITS: bool = false;

/// Never reached: lazy regions stay in MISSING mode on x86_64.
pub fn inject_lazy_fault(_vcpu: &VcpuFd) -> Result<u64> {
    Err(ApfError::NotThisArch.into())
}
