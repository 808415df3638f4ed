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

/// CPUID.1:ECX bits of the vector ISA: FMA (12), XSAVE (26), AVX (28), F16C (29).
const CPUID1_ECX_VECTOR: u32 = (1 << 12) | (1 << 26) | (1 << 28) | (1 << 29);
/// CPUID.1:ECX bit 26: XSAVE.
const CPUID1_ECX_XSAVE: u32 = 1 << 26;
/// CPUID.7.0:EBX bits of AVX2 (5), BMI1/2 (3, 8) and AVX-512 F, DQ, IFMA,
/// CD, BW, VL (16, 17, 21, 28, 30, 31).
const CPUID7_EBX_VECTOR: u32 = (1 << 3)
    | (1 << 5)
    | (1 << 8)
    | (1 << 16)
    | (1 << 17)
    | (1 << 21)
    | (1 << 28)
    | (1 << 30)
    | (1 << 31);
/// CPUID.7.0:ECX bits of AVX-512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ (1, 6, 11, 12, 14).
const CPUID7_ECX_VECTOR: u32 = (1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14);
/// CPUID.7.0:EBX bits that need the AVX-512 state components (F, DQ, IFMA, CD, BW, VL).
const CPUID7_EBX_AVX512: u32 =
    (1 << 16) | (1 << 17) | (1 << 21) | (1 << 28) | (1 << 30) | (1 << 31);
/// XCR0 bits 1 and 2: SSE and AVX (the upper halves of the YMM registers).
const XCR0_YMM: u32 = 0b110;
/// XCR0 bits 5-7: the AVX-512 opmask and ZMM state.
const XCR0_ZMM: u32 = 0b1110_0000;

/// Offer the host's vector ISA (XSAVE, AVX, AVX2, AVX-512) in the guest
/// CPUID when KVM's supported table leaves the feature bits out but its
/// XSAVE leaf (0xd) says it can hold that state, as the software KVM on
/// some of this project's machines does (Intel hosts: leaf 1 without XSAVE
/// and AVX, leaf 7 without AVX2 and AVX-512, leaf 0xd with XCR0 0xe7).
/// Guest CPL3 code runs on the host CPU there, so the host's own CPUID is
/// the truth; without XSAVE in the guest CPUID, KVM refuses CR4.OSXSAVE
/// and XCR0, and guests would be SSE-only. Two host CPUIDs (each traps
/// where the host is itself a guest: about 10 us), only on such a host.
pub fn offer_vector_isa(cpuid: &mut HostCpu) {
    let entry = |c: &HostCpu, f: u32| {
        c.as_slice()
            .iter()
            .find(|e| e.function == f && e.index == 0)
            .copied()
    };
    let (Some(l1), Some(xsave)) = (entry(cpuid, 1), entry(cpuid, 0xd)) else {
        return;
    };
    if l1.ecx & CPUID1_ECX_XSAVE != 0 || xsave.eax & XCR0_YMM != XCR0_YMM {
        return;
    }
    let host1 = core::arch::x86_64::__cpuid(1);
    let host7 = core::arch::x86_64::__cpuid_count(7, 0);
    let avx512 = if xsave.eax & XCR0_ZMM == XCR0_ZMM {
        u32::MAX
    } else {
        !CPUID7_EBX_AVX512
    };
    for e in cpuid.as_mut_slice() {
        match (e.function, e.index) {
            (1, 0) => e.ecx |= host1.ecx & CPUID1_ECX_VECTOR,
            (7, 0) => {
                e.ebx |= host7.ebx & CPUID7_EBX_VECTOR & avx512;
                if avx512 == u32::MAX {
                    e.ecx |= host7.ecx & CPUID7_ECX_VECTOR;
                }
            }
            _ => {}
        }
    }
}
