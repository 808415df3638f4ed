//! x86_64 guest support: entry point, ring-0 exception stubs, doorbell.
//!
//! The launcher starts vCPU 0 at CPL3 with everything privileged already set
//! up (page tables, GDT, IDT, TSS, control registers). The only ring-0 code
//! is the exception stubs below: a handful of instructions with no SSE that
//! report the exception frame to the launcher through the fault doorbell.

use vessel_abi::arch::x86_64::{DOORBELL, DOORBELL_FAULT, EXCEPTION_VECTORS, STUB_STRIDE};

core::arch::global_asm!(
    // Entry: CPL3, rdi = BootInfo, rsp = top of vCPU 0's stack.
    ".pushsection .text._start,\"ax\"",
    ".global _start",
    "_start:",
    "    xor %ebp, %ebp",
    "    and $-16, %rsp",
    "    call {start}",
    "    ud2",
    ".popsection",
    // Exception stubs, one per vector, STUB_STRIDE bytes apart. Vectors that
    // push no error code push a zero so every frame has the same shape
    // (vessel_abi::X86FaultFrame).
    ".pushsection .text.vessel_vectors,\"ax\"",
    ".balign 16",
    ".global vessel_vectors",
    "vessel_vectors:",
    ".set vessel_vec, 0",
    ".rept {count}",
    "    .balign {stride}",
    "    .if (vessel_vec == 8) || (vessel_vec == 10) || (vessel_vec == 11) || (vessel_vec == 12) || (vessel_vec == 13) || (vessel_vec == 14) || (vessel_vec == 17) || (vessel_vec == 21) || (vessel_vec == 29) || (vessel_vec == 30)",
    "    .else",
    "    pushq $0",
    "    .endif",
    "    pushq $vessel_vec",
    "    jmp vessel_fault_common",
    "    .set vessel_vec, vessel_vec + 1",
    ".endr",
    "vessel_fault_common:",
    "    mov %rsp, %rax",
    "    movabs %rax, {fault}",
    "1:  hlt",
    "    jmp 1b",
    ".popsection",
    start = sym crate::boot::vessel_rt_start,
    count = const EXCEPTION_VECTORS,
    stride = const STUB_STRIDE,
    fault = const DOORBELL_FAULT,
    options(att_syntax)
);

/// Emits the guest image's `.vessel.header` (see `vessel_abi::GuestHeader`).
#[doc(hidden)]
#[macro_export]
macro_rules! __vessel_header {
    ($sve_bits:expr) => {
        core::arch::global_asm!(
            ".pushsection .vessel.header,\"a\"",
            ".balign 8",
            ".quad {magic}",
            ".long {version}",
            ".long {count}",
            ".quad vessel_vectors",
            ".quad {stride}",
            ".quad {sve}",
            ".quad 0, 0, 0, 0",
            ".popsection",
            magic = const $crate::abi::HEADER_MAGIC,
            version = const $crate::abi::ABI_VERSION,
            count = const $crate::abi::arch::x86_64::EXCEPTION_VECTORS,
            stride = const $crate::abi::arch::x86_64::STUB_STRIDE,
            sve = const $sve_bits,
        );
    };
}

/// Ring the hypercall doorbell with the guest-physical address of a frame.
/// The launcher has answered in the frame when this returns.
#[inline(always)]
pub fn doorbell(frame: u64) {
    // SAFETY: DOORBELL is a page with no memory behind it: the store exits to
    // the launcher and writes nothing. The asm has no `nomem`, so it is a
    // compiler barrier: frame writes before it and reads after it stay put.
    unsafe {
        core::arch::asm!("mov {v}, ({a})", a = in(reg) DOORBELL, v = in(reg) frame,
            options(nostack, att_syntax));
    }
}

/// The guest's cycle counter (TSC); its rate is `BootInfo::counter_khz`.
#[inline(always)]
pub fn cycles() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter and has no other effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Name of the architecture, for messages.
pub const NAME: &str = "x86_64";

/// Called once at boot with the checked BootInfo; nothing to do on x86_64.
pub(crate) fn init(_b: &vessel_abi::BootInfo) {}

/// SVE is an arm64 extension: always None here.
pub fn sve_vector_bits() -> Option<u32> {
    None
}
