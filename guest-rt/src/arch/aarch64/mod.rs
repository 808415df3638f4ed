//! aarch64 guest support: entry point, the VBAR_EL1 vector table, doorbell,
//! counter and SVE.
//!
//! The launcher starts vCPU 0 at EL1 (EL1h) with the MMU, caches, VBAR_EL1,
//! CPACR_EL1 and the stack already set up (see vmm/src/arch/aarch64). The
//! only exception code is the vector table below: each of its 16 entries
//! records an `Arm64FaultFrame` and reports it through the fault doorbell.

mod mem;
mod tp;

pub use tp::{set_thread_pointer, thread_pointer};

use core::mem::{offset_of, size_of};

use vessel_abi::arch::aarch64::{
    APF_ABORT_DFSC, APF_ABORT_EC, DOORBELL, DOORBELL_FAULT, EXCEPTION_VECTORS,
};
use vessel_abi::{Arm64FaultFrame, BootInfo};

/// The vector table entry for a synchronous exception at EL1 with SP_EL1
/// (entry 4: "current EL, SPx, synchronous"), where the app runs.
const SYNC_EL1H: u64 = 4;
/// Bytes `vessel_sync_el1h` saves below the interrupted sp before the
/// vector registers: x0-x30, ELR, SPSR, FPSR, FPCR, rounded up to 16.
const GPR_FRAME: u64 = 288;

core::arch::global_asm!(
    // Entry (every vCPU): EL1h, x0 = BootInfo, sp = top of its stack.
    ".pushsection .text._start,\"ax\"",
    ".global _start",
    "_start:",
    "    mov x29, #0",
    "    mov x30, #0",
    "    bl {start}",
    "    udf #0",
    ".popsection",
    // VBAR_EL1 table: EXCEPTION_VECTORS entries of VECTOR_STRIDE bytes,
    // aligned to its own size (2 KiB, as VBAR_EL1 requires). Entry k
    // (k / 4: current EL SP0, current EL SPx, lower EL 64, lower EL 32;
    // k % 4: sync, IRQ, FIQ, SError) records its number in x9.
    ".arch_extension sve",
    ".pushsection .text.vessel_vectors,\"ax\"",
    ".balign {table_size}",
    ".global vessel_vectors",
    "vessel_vectors:",
    ".set vessel_vec, 0",
    ".rept {count}",
    "    .balign {stride}",
    "    .if vessel_vec == {sync_el1h}",
    "    b vessel_sync_el1h",
    "    .else",
    "    mov x9, #vessel_vec",
    "    b vessel_fault_common",
    "    .endif",
    "    .set vessel_vec, vessel_vec + 1",
    ".endr",
    // Synchronous exception at EL1h: the launcher's "page not present" is
    // an injected external data abort (EC 0x25, DFSC 0x10). Anything else
    // is fatal. The ESR check uses only x9 (kept in TPIDR_EL1), so a fault
    // on the stack itself still reaches the fault doorbell.
    "vessel_sync_el1h:",
    "    msr tpidr_el1, x9",
    "    mrs x9, esr_el1",
    "    ubfx x9, x9, #26, #6",
    "    cmp x9, #{abort_ec}",
    "    b.ne 8f",
    "    mrs x9, esr_el1",
    "    and x9, x9, #0x3f",
    "    cmp x9, #{abort_dfsc}",
    "    b.ne 8f",
    "    mrs x9, tpidr_el1",
    // Save the whole interrupted context on its own stack: x0-x30, ELR,
    // SPSR, FPSR, FPCR, then Z0-31/P0-15/FFR with SVE on, else Q0-31.
    "    sub sp, sp, #{gpr}",
    "    stp x0, x1, [sp, #0]",
    "    stp x2, x3, [sp, #16]",
    "    stp x4, x5, [sp, #32]",
    "    stp x6, x7, [sp, #48]",
    "    stp x8, x9, [sp, #64]",
    "    stp x10, x11, [sp, #80]",
    "    stp x12, x13, [sp, #96]",
    "    stp x14, x15, [sp, #112]",
    "    stp x16, x17, [sp, #128]",
    "    stp x18, x19, [sp, #144]",
    "    stp x20, x21, [sp, #160]",
    "    stp x22, x23, [sp, #176]",
    "    stp x24, x25, [sp, #192]",
    "    stp x26, x27, [sp, #208]",
    "    stp x28, x29, [sp, #224]",
    "    mrs x0, elr_el1",
    "    stp x30, x0, [sp, #240]",
    "    mrs x0, spsr_el1",
    "    mrs x1, fpsr",
    "    stp x0, x1, [sp, #256]",
    "    mrs x0, fpcr",
    "    str x0, [sp, #272]",
    "    adrp x0, VESSEL_SVE_ON",
    "    ldrb w0, [x0, :lo12:VESSEL_SVE_ON]",
    "    cbz w0, 1f",
    "    addvl sp, sp, #-32",
    "    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    str z\\n, [sp, #\\n, mul vl]",
    "    .endr",
    "    addpl sp, sp, #-32",
    "    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    "    str p\\n, [sp, #\\n, mul vl]",
    "    .endr",
    "    rdffr p0.b",
    "    str p0, [sp, #16, mul vl]",
    "    b 2f",
    "1:  sub sp, sp, #512",
    "    stp q0, q1, [sp, #0]",
    "    stp q2, q3, [sp, #32]",
    "    stp q4, q5, [sp, #64]",
    "    stp q6, q7, [sp, #96]",
    "    stp q8, q9, [sp, #128]",
    "    stp q10, q11, [sp, #160]",
    "    stp q12, q13, [sp, #192]",
    "    stp q14, q15, [sp, #224]",
    "    stp q16, q17, [sp, #256]",
    "    stp q18, q19, [sp, #288]",
    "    stp q20, q21, [sp, #320]",
    "    stp q22, q23, [sp, #352]",
    "    stp q24, q25, [sp, #384]",
    "    stp q26, q27, [sp, #416]",
    "    stp q28, q29, [sp, #448]",
    "    stp q30, q31, [sp, #480]",
    "2:  mrs x0, far_el1",
    "    bl {apf_fault}",
    "    cbz x0, 9f",
    "    adrp x1, VESSEL_SVE_ON",
    "    ldrb w1, [x1, :lo12:VESSEL_SVE_ON]",
    "    cbz w1, 3f",
    "    ldr p0, [sp, #16, mul vl]",
    "    wrffr p0.b",
    "    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    "    ldr p\\n, [sp, #\\n, mul vl]",
    "    .endr",
    "    addpl sp, sp, #31",
    "    addpl sp, sp, #1",
    "    .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    ldr z\\n, [sp, #\\n, mul vl]",
    "    .endr",
    "    addvl sp, sp, #31",
    "    addvl sp, sp, #1",
    "    b 4f",
    "3:",
    "    ldp q0, q1, [sp, #0]",
    "    ldp q2, q3, [sp, #32]",
    "    ldp q4, q5, [sp, #64]",
    "    ldp q6, q7, [sp, #96]",
    "    ldp q8, q9, [sp, #128]",
    "    ldp q10, q11, [sp, #160]",
    "    ldp q12, q13, [sp, #192]",
    "    ldp q14, q15, [sp, #224]",
    "    ldp q16, q17, [sp, #256]",
    "    ldp q18, q19, [sp, #288]",
    "    ldp q20, q21, [sp, #320]",
    "    ldp q22, q23, [sp, #352]",
    "    ldp q24, q25, [sp, #384]",
    "    ldp q26, q27, [sp, #416]",
    "    ldp q28, q29, [sp, #448]",
    "    ldp q30, q31, [sp, #480]",
    "    add sp, sp, #512",
    "4:  ldr x0, [sp, #272]",
    "    msr fpcr, x0",
    "    ldp x0, x1, [sp, #256]",
    "    msr spsr_el1, x0",
    "    msr fpsr, x1",
    "    ldp x30, x0, [sp, #240]",
    "    msr elr_el1, x0",
    "    ldp x28, x29, [sp, #224]",
    "    ldp x26, x27, [sp, #208]",
    "    ldp x24, x25, [sp, #192]",
    "    ldp x22, x23, [sp, #176]",
    "    ldp x20, x21, [sp, #160]",
    "    ldp x18, x19, [sp, #144]",
    "    ldp x16, x17, [sp, #128]",
    "    ldp x14, x15, [sp, #112]",
    "    ldp x12, x13, [sp, #96]",
    "    ldp x10, x11, [sp, #80]",
    "    ldp x8, x9, [sp, #64]",
    "    ldp x6, x7, [sp, #48]",
    "    ldp x4, x5, [sp, #32]",
    "    ldp x2, x3, [sp, #16]",
    "    ldp x0, x1, [sp, #0]",
    "    add sp, sp, #{gpr}",
    "    eret",
    // Not a "page not present": report it like any other exception (the
    // reported SP includes the saved frame).
    "8:",
    "9:  mov x9, #{sync_el1h}",
    "    b vessel_fault_common",
    // Fatal: fill vessel_fault_frame (vessel_abi::Arm64FaultFrame) without
    // touching the stack (it may be what faulted), then report its address.
    "vessel_fault_common:",
    "    adrp x10, vessel_fault_frame",
    "    add x10, x10, :lo12:vessel_fault_frame",
    "    str x9, [x10, #{f_kind}]",
    "    mrs x11, esr_el1",
    "    str x11, [x10, #{f_esr}]",
    "    mrs x11, far_el1",
    "    str x11, [x10, #{f_far}]",
    "    mrs x11, elr_el1",
    "    str x11, [x10, #{f_elr}]",
    "    mrs x11, spsr_el1",
    "    str x11, [x10, #{f_spsr}]",
    "    mov x11, sp",
    "    str x11, [x10, #{f_sp}]",
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
    ".zero {f_size}",
    ".popsection",
    start = sym crate::boot::vessel_rt_start,
    table_size = const EXCEPTION_VECTORS as u64 * VECTOR_STRIDE,
    count = const EXCEPTION_VECTORS,
    stride = const VECTOR_STRIDE,
    sync_el1h = const SYNC_EL1H,
    abort_ec = const APF_ABORT_EC,
    abort_dfsc = const APF_ABORT_DFSC,
    gpr = const GPR_FRAME,
    apf_fault = sym vessel_apf_fault,
    f_kind = const offset_of!(Arm64FaultFrame, kind),
    f_esr = const offset_of!(Arm64FaultFrame, esr),
    f_far = const offset_of!(Arm64FaultFrame, far),
    f_elr = const offset_of!(Arm64FaultFrame, elr),
    f_spsr = const offset_of!(Arm64FaultFrame, spsr),
    f_sp = const offset_of!(Arm64FaultFrame, sp),
    f_size = const size_of::<Arm64FaultFrame>(),
    fault_hi = const (DOORBELL_FAULT >> 16) & 0xffff,
    fault_lo = const DOORBELL_FAULT & 0xffff,
);

const _: () = {
    // The fault doorbell address fits the movz/movk pair above.
    assert!(DOORBELL_FAULT >> 32 == 0);
    // x0-x30, ELR, SPSR, FPSR, FPCR fit the frame, which keeps sp 16-aligned.
    assert!(35 * 8 <= GPR_FRAME && GPR_FRAME.is_multiple_of(16));
    // Every field is a u64 the stub stores with `str x`.
    assert!(size_of::<Arm64FaultFrame>() == 6 * 8);
    assert!(SYNC_EL1H < EXCEPTION_VECTORS as u64);
};

/// `GuestHeader::vector_count` and `vector_stride`.
pub(crate) const VECTOR_COUNT: u32 = EXCEPTION_VECTORS;
pub(crate) use vessel_abi::arch::aarch64::VECTOR_STRIDE;

/// `GuestHeader::vector_table` (the VBAR_EL1 table) and `irq_entry` (none:
/// arm64 takes no interrupts).
pub(crate) const fn header_entries() -> (*const (), *const ()) {
    extern "C" {
        fn vessel_vectors();
    }
    (vessel_vectors as *const (), core::ptr::null())
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

/// Guest address of the launcher's `VcpuInfo` table (`BootInfo::vcpus`),
/// stored by every vCPU at its start (all store the same value).
static VCPU_TABLE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Remember where the `VcpuInfo` table is (called first thing on every vCPU).
pub(crate) fn set_vcpu_table(b: &BootInfo) {
    VCPU_TABLE.store(b.vcpus, core::sync::atomic::Ordering::Relaxed);
}

/// The id of the vCPU this code runs on: MPIDR_EL1.Aff0, which the
/// launcher sets to the vCPU's index.
#[inline(always)]
pub fn vcpu_id() -> u32 {
    let mpidr: u64;
    // SAFETY: reads this vCPU's MPIDR_EL1 (EL1 register); no other effect.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & vessel_abi::arch::aarch64::MPIDR_VCPU_MASK) as u32
}

/// The guest address of this vCPU's hypercall frame (`VcpuInfo::frame`).
#[inline(always)]
pub fn vcpu_frame() -> u64 {
    let table = VCPU_TABLE.load(core::sync::atomic::Ordering::Relaxed);
    let at = table + u64::from(vcpu_id()) * size_of::<vessel_abi::VcpuInfo>() as u64;
    // SAFETY: boot checked the table is set and `vcpu_count` entries long,
    // and the launcher gives MPIDR Aff0 values below `vcpu_count` only.
    unsafe { (*(at as *const vessel_abi::VcpuInfo)).frame }
}

/// Called on every vCPU at its start with the checked BootInfo: with SVE
/// granted, select the granted maximum in this vCPU's ZCR_EL1.LEN (the
/// launcher enabled CPACR_EL1.ZEN).
pub(crate) fn init(b: &BootInfo) {
    if b.features & vessel_abi::features::SVE == 0 || b.vector_bits < 128 {
        return;
    }
    let len = (b.vector_bits / 128).clamp(1, 16) - 1;
    // SAFETY: every vCPU writes the same value at its start, before any
    // exception on it can read it.
    unsafe { core::ptr::addr_of_mut!(VESSEL_SVE_ON).write_volatile(1) };
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

/// Nothing to size on aarch64: the vector table saves SVE state when
/// `VESSEL_SVE_ON` says so.
pub fn init_apf_state() {}

/// Whether the async-PF entry saves Z/P/FFR (SVE granted) or only Q0-31.
#[no_mangle]
static mut VESSEL_SVE_ON: u8 = 0;

/// Called by `vessel_sync_el1h` for an external data abort, on the faulting
/// context's stack with that context saved: a launcher "page not present"
/// parks the task until the page is ready and returns 1 (the context is
/// restored and the access retried); anything else returns 0 (fatal).
extern "C" fn vessel_apf_fault(_far: u64) -> u64 {
    match crate::apf::take_not_present() {
        Some(token) => {
            crate::apf::vessel_apf_park(token);
            1
        }
        None => 0,
    }
}

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
