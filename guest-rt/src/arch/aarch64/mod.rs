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

/// Stop with an undefined-instruction exception (udf), which the launcher
/// reports as a guest fault.
pub fn trap() -> ! {
    // SAFETY: udf raises an undefined-instruction exception; the launcher
    // reports it and ends the VM.
    unsafe { core::arch::asm!("udf #0", options(noreturn)) }
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

// Task switching for the executor (`crate::task`): a plain switch of the
// AAPCS64 callee-saved state (x19-x30, d8-d15, sp). Tasks switch only at
// calls, so nothing else needs saving.
core::arch::global_asm!(
    ".pushsection .text.vessel_switch,\"ax\"",
    // vessel_switch(save: *mut u64 = x0, to: u64 = x1)
    ".global vessel_switch",
    "vessel_switch:",
    "    sub sp, sp, #{frame}",
    "    stp x19, x20, [sp, #0]",
    "    stp x21, x22, [sp, #16]",
    "    stp x23, x24, [sp, #32]",
    "    stp x25, x26, [sp, #48]",
    "    stp x27, x28, [sp, #64]",
    "    stp x29, x30, [sp, #80]",
    "    stp d8, d9, [sp, #96]",
    "    stp d10, d11, [sp, #112]",
    "    stp d12, d13, [sp, #128]",
    "    stp d14, d15, [sp, #144]",
    "    mov x9, sp",
    "    str x9, [x0]",
    "    mov sp, x1",
    "    ldp x19, x20, [sp, #0]",
    "    ldp x21, x22, [sp, #16]",
    "    ldp x23, x24, [sp, #32]",
    "    ldp x25, x26, [sp, #48]",
    "    ldp x27, x28, [sp, #64]",
    "    ldp x29, x30, [sp, #80]",
    "    ldp d8, d9, [sp, #96]",
    "    ldp d10, d11, [sp, #112]",
    "    ldp d12, d13, [sp, #128]",
    "    ldp d14, d15, [sp, #144]",
    "    add sp, sp, #{frame}",
    "    ret",
    // A new task starts here with its id in x19.
    ".global vessel_task_trampoline",
    "vessel_task_trampoline:",
    "    mov x0, x19",
    "    bl {task_main}",
    "    udf #0",
    ".popsection",
    frame = const SWITCH_FRAME,
    task_main = sym crate::task::vessel_task_main,
);

/// Bytes `vessel_switch` keeps on a suspended task's stack.
const SWITCH_FRAME: u64 = 160;

extern "C" {
    fn vessel_switch(save: *mut u64, to: u64);
    fn vessel_task_trampoline();
}

/// Nothing to size on aarch64: async page faults are not offered here yet.
pub fn init_apf_state() {}

/// Switch stacks: save this context's stack pointer to `*save` and resume
/// the context whose stack pointer is `to`.
///
/// # Safety
/// `to` must be a stack pointer saved by `switch` or made by
/// [`init_stack`], whose stack is still alive; `save` must stay valid until
/// someone switches back.
pub unsafe fn switch(save: *mut u64, to: u64) {
    // SAFETY: the caller's contract.
    unsafe { vessel_switch(save, to) }
}

/// Prepare a fresh stack (top 16-byte aligned) so that switching to the
/// returned stack pointer calls `vessel_task_main(arg)` on it.
pub fn init_stack(stack: &mut [u64], arg: u64) -> u64 {
    let top = (stack.as_mut_ptr() as u64 + stack.len() as u64 * 8) & !15;
    let sp = top - SWITCH_FRAME;
    // Frame restored by vessel_switch: x19 = arg, x29 = 0, x30 = trampoline,
    // everything else zero.
    for i in 0..SWITCH_FRAME / 8 {
        let w = match i {
            0 => arg,
            11 => vessel_task_trampoline as *const () as u64,
            _ => 0,
        };
        // SAFETY: sp..top lies inside `stack` (SWITCH_FRAME bytes below its
        // aligned top).
        unsafe { ((sp + 8 * i) as *mut u64).write(w) };
    }
    sp
}
