//! The KVM capabilities Vessel relies on or could use on x86_64.

use kvm_ioctls::Kvm;

use super::regs::{KVM_CPUID_FEATURES, KVM_FEATURE_ASYNC_PF, KVM_FEATURE_ASYNC_PF_INT};
use super::vcpu::HostCpu;
use crate::caps::{CapInfo, CapKind};

/// Capabilities Vessel relies on or could use on x86_64.
pub const CAPS: &[CapInfo] = &[
    CapInfo::new(
        "KVM_CAP_IRQCHIP",
        kvm_bindings::KVM_CAP_IRQCHIP,
        CapKind::Bool,
        true,
        "in-kernel LAPIC: interrupts, halt and wake",
    ),
    CapInfo::new(
        "KVM_CAP_SIGNAL_MSI",
        kvm_bindings::KVM_CAP_SIGNAL_MSI,
        CapKind::Bool,
        false,
        "wake a halted vCPU from a host thread",
    ),
    CapInfo::new(
        "KVM_CAP_X2APIC_API",
        kvm_bindings::KVM_CAP_X2APIC_API,
        CapKind::Bitmask,
        false,
        "x2APIC ids and broadcast (not used yet)",
    ),
    CapInfo::new(
        "KVM_CAP_ASYNC_PF",
        kvm_bindings::KVM_CAP_ASYNC_PF,
        CapKind::Bool,
        false,
        "KVM async page faults for lazy regions",
    ),
    CapInfo::new(
        "KVM_CAP_ASYNC_PF_INT",
        kvm_bindings::KVM_CAP_ASYNC_PF_INT,
        CapKind::Bool,
        false,
        "'page ready' as an interrupt vector",
    ),
    CapInfo::new(
        "KVM_CAP_XSAVE",
        kvm_bindings::KVM_CAP_XSAVE,
        CapKind::Bool,
        false,
        "save/restore AVX/AVX-512 state",
    ),
    CapInfo::new(
        "KVM_CAP_XCRS",
        kvm_bindings::KVM_CAP_XCRS,
        CapKind::Bool,
        false,
        "set XCR0 for SSE/AVX/AVX-512 at CPL3",
    ),
    CapInfo::new(
        "KVM_CAP_TSC_DEADLINE_TIMER",
        kvm_bindings::KVM_CAP_TSC_DEADLINE_TIMER,
        CapKind::Bool,
        false,
        "LAPIC timer for guest sleeps (not used yet)",
    ),
    CapInfo::new(
        "KVM_CAP_GET_TSC_KHZ",
        kvm_bindings::KVM_CAP_GET_TSC_KHZ,
        CapKind::Bool,
        false,
        "guest clock rate in BootInfo",
    ),
];

/// Whether this host gives KVM async page faults with interrupt delivery:
/// both capabilities, and both paravirt CPUID bits KVM supports.
pub fn async_pf_supported(kvm: &Kvm, cpuid: &HostCpu) -> bool {
    let cap = |c: u32| kvm.check_extension_raw(c.into()) == 1;
    if !cap(kvm_bindings::KVM_CAP_ASYNC_PF) || !cap(kvm_bindings::KVM_CAP_ASYNC_PF_INT) {
        return false;
    }
    let want = KVM_FEATURE_ASYNC_PF | KVM_FEATURE_ASYNC_PF_INT;
    cpuid
        .as_slice()
        .iter()
        .any(|e| e.function == KVM_CPUID_FEATURES && e.eax & want == want)
}

/// CPUID.7.0:EBX bit 0: FSGSBASE.
const CPUID7_EBX_FSGSBASE: u32 = 1 << 0;
/// AT_HWCAP2 bit 1 (HWCAP2_FSGSBASE): the host kernel lets user space use
/// `wrfsbase` (Linux sets CR4.FSGSBASE itself since 5.9).
const HWCAP2_FSGSBASE: u64 = 1 << 1;

/// Whether guests may set their own thread pointer (`std` programs'
/// thread locals): the guest CPUID has FSGSBASE, so the launcher sets
/// CR4.FSGSBASE and CPL3 code can `wrfsbase` (see `offer_fsgsbase`).
pub fn thread_pointer_supported(cpuid: &HostCpu) -> bool {
    cpuid
        .as_slice()
        .iter()
        .any(|e| e.function == 7 && e.index == 0 && e.ebx & CPUID7_EBX_FSGSBASE != 0)
}

/// Add FSGSBASE to the guest CPUID when the host kernel offers it to user
/// space (its AT_HWCAP2, no CPUID instruction: each traps here) but KVM's
/// supported table leaves it out, as this project's software KVM does:
/// guest CPL3 code runs as host user code there, where `wrfsbase` works
/// (tests/std_apps.rs shows thread-locals per thread). KVM accepts
/// CR4.FSGSBASE once the guest CPUID has the bit.
pub fn offer_fsgsbase(cpuid: &mut HostCpu) {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    if hwcap2 & HWCAP2_FSGSBASE == 0 {
        return;
    }
    for e in cpuid.as_mut_slice() {
        if e.function == 7 && e.index == 0 {
            e.ebx |= CPUID7_EBX_FSGSBASE;
        }
    }
}
