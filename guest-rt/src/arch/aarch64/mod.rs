//! aarch64 guest support: entry point, the VBAR_EL1 vector table, doorbell,
//! counter and SVE.
//!
//! The launcher starts vCPU 0 at EL1 (EL1h) with the MMU, caches, VBAR_EL1,
//! CPACR_EL1 and the stack already set up (see vmm/src/arch/aarch64). The
//! only exception code is the vector table below: each of its 16 entries
//! records an `Arm64FaultFrame` and reports it through the fault doorbell.

use vessel_abi::arch::aarch64::{DOORBELL, DOORBELL_FAULT};
use vessel_abi::BootInfo;

core::arch::global_asm!(
    // Entry: EL1h, x0 = BootInfo, sp = top of vCPU 0's stack.
    ".pushsection .text._start,\"ax\"",
    ".global _start",
    "_start:",
    "    mov x29, #0",
    "    mov x30, #0",
    "    bl {start}",
    "    udf #0",
    ".popsection",
    // VBAR_EL1 table: 16 entries of 0x80 bytes, 2 KiB aligned. Entry k
    // (k / 4: current EL SP0, current EL SPx, lower EL 64, lower EL 32;
    // k % 4: sync, IRQ, FIQ, SError) records its number in x9.
    ".pushsection .text.vessel_vectors,\"ax\"",
    ".balign 2048",
    ".global vessel_vectors",
    "vessel_vectors:",
    ".set vessel_vec, 0",
    ".rept 16",
    "    .balign 0x80",
    "    mov x9, #vessel_vec",
    "    b vessel_fault_common",
    "    .set vessel_vec, vessel_vec + 1",
    ".endr",
    // Fatal: fill vessel_fault_frame (vessel_abi::Arm64FaultFrame) without
    // touching the stack (it may be what faulted), then report its address.
    "vessel_fault_common:",
    "    adrp x10, vessel_fault_frame",
    "    add x10, x10, :lo12:vessel_fault_frame",
    "    str x9, [x10, #0]",
    "    mrs x11, esr_el1",
    "    str x11, [x10, #8]",
    "    mrs x11, far_el1",
    "    str x11, [x10, #16]",
    "    mrs x11, elr_el1",
    "    str x11, [x10, #24]",
    "    mrs x11, spsr_el1",
    "    str x11, [x10, #32]",
    "    mov x11, sp",
    "    str x11, [x10, #40]",
    "    dsb sy",
    "    movz x12, #{fault_hi}, lsl #16",
    "    movk x12, #{fault_lo}",
    "    str x10, [x12]",
    "1:  wfi",
    "    b 1b",
    ".popsection",
    ".pushsection .bss.vessel_fault_frame,\"aw\",@nobits",
    ".balign 16",
    "vessel_fault_frame:",
    ".zero 48",
    ".popsection",
    start = sym crate::boot::vessel_rt_start,
    fault_hi = const (DOORBELL_FAULT >> 16) & 0xffff,
    fault_lo = const DOORBELL_FAULT & 0xffff,
);

const _: () = assert!(DOORBELL_FAULT >> 32 == 0);
const _: () = assert!(core::mem::size_of::<vessel_abi::Arm64FaultFrame>() == 48);

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
            ".quad 128",
            ".quad {sve}",
            ".quad 0, 0, 0, 0",
            ".popsection",
            magic = const $crate::abi::HEADER_MAGIC,
            version = const $crate::abi::ABI_VERSION,
            count = const $crate::abi::arch::aarch64::EXCEPTION_VECTORS,
            sve = const $sve_bits,
        );
    };
}

/// Ring the hypercall doorbell with the guest-physical address of a frame.
/// The launcher has answered in the frame when this returns.
#[inline(always)]
pub fn doorbell(frame: u64) {
    // SAFETY: DOORBELL is a device page with no memory behind it: the
    // 8-byte store (a single `str`, which KVM can decode) exits to the
    // launcher and writes nothing. No `nomem`: a compiler barrier.
    unsafe {
        core::arch::asm!("str {v}, [{a}]", a = in(reg) DOORBELL, v = in(reg) frame,
            options(nostack));
    }
}

/// The guest's cycle counter (CNTVCT_EL0); its rate is `BootInfo::counter_khz`.
#[inline(always)]
pub fn cycles() -> u64 {
    let v: u64;
    // SAFETY: reads the virtual counter; no other effect.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Name of the architecture, for messages.
pub const NAME: &str = "aarch64";

/// Called once at boot with the checked BootInfo: with SVE granted, select
/// the granted maximum in ZCR_EL1.LEN (the launcher enabled CPACR_EL1.ZEN).
pub(crate) fn init(b: &BootInfo) {
    if b.features & vessel_abi::features::SVE == 0 || b.vector_bits < 128 {
        return;
    }
    let len = (b.vector_bits / 128).clamp(1, 16) - 1;
    // SAFETY: ZCR_EL1 (S3_0_C1_C2_0) exists because the launcher granted
    // SVE; LEN only selects the vector length for later SVE instructions.
    unsafe { core::arch::asm!("msr S3_0_C1_C2_0, {}", "isb", in(reg) len, options(nostack)) };
}

/// The effective SVE vector length in bits as `RDVL` reports it, or None
/// when the launcher did not grant SVE.
pub fn sve_vector_bits() -> Option<u32> {
    if crate::boot::info().features & vessel_abi::features::SVE == 0 {
        return None;
    }
    let bytes: u64;
    // SAFETY: SVE is enabled (feature bit set by the launcher, which set
    // CPACR_EL1.ZEN); RDVL only reads the vector length.
    unsafe {
        core::arch::asm!(".arch_extension sve", "rdvl {}, #1", out(reg) bytes,
            options(nomem, nostack))
    };
    Some((bytes * 8) as u32)
}
