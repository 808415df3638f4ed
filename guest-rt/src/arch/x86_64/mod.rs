//! x86_64 guest support: entry point, ring-0 stubs, doorbell, task switch.
//!
//! The launcher starts every vCPU at CPL3 with everything privileged already
//! set up (page tables, GDT, IDT, TSS, control registers, x2APIC, IF=1, GS
//! base at the vCPU's `VcpuInfo`). The async-PF area is vCPU 0's: the stubs
//! below treat a #PF or interrupt on another vCPU as fatal or a wake-up. The only
//! ring-0 code is the stubs below, a few dozen SSE-free instructions (ring 0
//! is emulated instruction by instruction on this project's KVM):
//!
//! - exception stubs report fatal exceptions through the fault doorbell;
//! - the #PF stub first checks the async-PF area: a "page not present"
//!   (flags == PAGE_NOT_PRESENT, fault taken at CPL3) is *reflected to CPL3* like a signal:
//!   it writes the interrupted rip, rflags, rax and rbx onto the task's own
//!   stack (below a [`RED_ZONE`]-byte gap), and `iretq`s to
//!   `vessel_apf_upcall` at CPL3 on that stack with the token in rax;
//! - the IRQ stub (every vector >= 32) records a "page ready" token in a
//!   ring the runtime drains, clears the token, writes MSR_KVM_ASYNC_PF_ACK
//!   and EOIs (x2APIC); with no token (a wake-up MSI) it only EOIs.
//!
//! Everything else runs at CPL3. `vessel_apf_upcall` saves the remaining
//! GPRs and the full vector state (`xsave64`, or `fxsave64` without XSAVE)
//! on the task stack and calls the runtime's park function, which switches
//! to the scheduler with the plain callee-saved switch `vessel_switch`. When
//! the page is ready the scheduler switches back, the upcall restores the
//! vector state and GPRs, `popfq` (IF is not changed at CPL3, it is 1) and
//! `ret $RED_ZONE` returns to the faulting instruction with the original rsp, so
//! the access is retried. Why CPL3 and `ret` rather than `iretq` from ring
//! 0: every ring-0 instruction costs ~1 µs here, and xsave at ring 0 would
//! need SSE-clean emulation this KVM lacks; the CPL3 path runs natively.

mod mem;

use core::mem::offset_of;

use vessel_abi::apf::{ApfArea, PAGE_NOT_PRESENT};
use vessel_abi::arch::x86_64::msr::{KVM_ASYNC_PF_ACK, X2APIC_EOI};
use vessel_abi::arch::x86_64::{DOORBELL, DOORBELL_FAULT, EXCEPTION_VECTORS, STUB_STRIDE};

use crate::apf::ApfShared;

/// The System V red zone: 128 bytes below rsp that interrupted code may be
/// using, which the async-PF reflection must not overwrite.
const RED_ZONE: u64 = 128;
/// What the #PF stub writes below the red zone for `vessel_apf_upcall`:
/// rbx, rax, rflags, rip of the interrupted code.
const UPCALL_FRAME: u64 = RED_ZONE + 4 * 8;

core::arch::global_asm!(
    // Entry (every vCPU): CPL3, rdi = BootInfo, rsp = top of its stack.
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
    "    .if vessel_vec == 14",
    "    jmp vessel_pf_entry",
    "    .elseif (vessel_vec == 8) || (vessel_vec == 10) || (vessel_vec == 11) || (vessel_vec == 12) || (vessel_vec == 13) || (vessel_vec == 14) || (vessel_vec == 17) || (vessel_vec == 21) || (vessel_vec == 29) || (vessel_vec == 30)",
    "    .else",
    "    pushq $0",
    "    .endif",
    "    pushq $vessel_vec",
    "    jmp vessel_fault_common",
    "    .set vessel_vec, vessel_vec + 1",
    ".endr",
    "vessel_fault_common:",
    // The interrupted rax stays readable just below the frame (a debugger
    // resumes the code after a #DB; vessel_abi::X86FaultFrame).
    "    push %rax",
    "    lea {rax_below}(%rsp), %rax",
    "    movabs %rax, {fault}",
    "1:  hlt",
    "    jmp 1b",
    // #PF (ring 0). Stack: error code, rip, cs, rflags, rsp, ss.
    "vessel_pf_entry:",
    "    push %rax",
    "    cmpq $0, %gs:{vcpu_id}",
    "    jne 2f",
    "    mov {apf}+{flags}(%rip), %eax",
    "    cmp ${not_present}, %eax",
    "    jne 2f",
    "    testb $3, 24(%rsp)",
    "    jz 2f",
    "    movl $0, {apf}+{flags}(%rip)",
    "    push %rbx",
    // 0 rbx, 8 rax, 16 err, 24 rip, 32 cs, 40 rflags, 48 rsp, 56 ss
    "    mov 48(%rsp), %rbx",
    "    sub ${upcall_frame}, %rbx",
    "    mov 24(%rsp), %rax",
    "    mov %rax, 24(%rbx)",
    "    mov 40(%rsp), %rax",
    "    mov %rax, 16(%rbx)",
    "    mov 8(%rsp), %rax",
    "    mov %rax, 8(%rbx)",
    "    mov (%rsp), %rax",
    "    mov %rax, (%rbx)",
    "    mov %rbx, 48(%rsp)",
    "    lea vessel_apf_upcall(%rip), %rax",
    "    mov %rax, 24(%rsp)",
    "    mov %cr2, %rax",
    "    pop %rbx",
    "    add $16, %rsp",
    "    iretq",
    "2:  pop %rax",
    "    pushq $14",
    "    jmp vessel_fault_common",
    // Every external interrupt (ring 0).
    ".global vessel_irq_entry",
    "vessel_irq_entry:",
    "    push %rax",
    "    push %rcx",
    "    push %rdx",
    // The async-PF area is vCPU 0's: another vCPU's interrupt is a wake-up.
    "    cmpq $0, %gs:{vcpu_id}",
    "    jne 3f",
    "    mov {apf}+{token}(%rip), %eax",
    "    test %eax, %eax",
    "    jz 3f",
    "    movl $0, {apf}+{token}(%rip)",
    "    mov {apf}+{head}(%rip), %rcx",
    "    mov %ecx, %edx",
    "    and ${ringmask}, %edx",
    "    push %rsi",
    "    lea {apf}+{ring}(%rip), %rsi",
    "    mov %eax, (%rsi,%rdx,4)",
    "    pop %rsi",
    "    inc %rcx",
    "    mov %rcx, {apf}+{head}(%rip)",
    "    mov ${apf_ack}, %ecx",
    "    mov $1, %eax",
    "    xor %edx, %edx",
    "    wrmsr",
    "3:  mov ${eoi}, %ecx",
    "    xor %eax, %eax",
    "    xor %edx, %edx",
    "    wrmsr",
    "    pop %rdx",
    "    pop %rcx",
    "    pop %rax",
    "    iretq",
    ".popsection",
    // CPL3 from here on.
    ".pushsection .text.vessel_upcall,\"ax\"",
    // Entered by iretq from vessel_pf_entry: rax = token, rsp -> [rbx, rax,
    // rflags, rip] of the interrupted code, whose rsp was this + UPCALL_FRAME.
    "vessel_apf_upcall:",
    "    push %rcx",
    "    push %rdx",
    "    push %rsi",
    "    push %rdi",
    "    push %rbp",
    "    push %r8",
    "    push %r9",
    "    push %r10",
    "    push %r11",
    "    push %r12",
    "    push %r13",
    "    push %r14",
    "    push %r15",
    "    mov %rsp, %rbx",
    "    mov %eax, %r12d",
    "    mov {xsize}(%rip), %rcx",
    "    test %rcx, %rcx",
    "    jz 5f",
    "    sub %rcx, %rsp",
    "    and $-64, %rsp",
    "    xor %eax, %eax",
    "    mov %rax, 512(%rsp)",
    "    mov %rax, 520(%rsp)",
    "    mov %rax, 528(%rsp)",
    "    mov %rax, 536(%rsp)",
    "    mov %rax, 544(%rsp)",
    "    mov %rax, 552(%rsp)",
    "    mov %rax, 560(%rsp)",
    "    mov %rax, 568(%rsp)",
    "    mov $-1, %eax",
    "    mov $-1, %edx",
    "    xsave64 (%rsp)",
    "    mov %r12d, %edi",
    "    call {park}",
    "    mov $-1, %eax",
    "    mov $-1, %edx",
    "    xrstor64 (%rsp)",
    "    jmp 6f",
    "5:  sub $512, %rsp",
    "    and $-16, %rsp",
    "    fxsave64 (%rsp)",
    "    mov %r12d, %edi",
    "    call {park}",
    "    fxrstor64 (%rsp)",
    "6:  mov %rbx, %rsp",
    "    pop %r15",
    "    pop %r14",
    "    pop %r13",
    "    pop %r12",
    "    pop %r11",
    "    pop %r10",
    "    pop %r9",
    "    pop %r8",
    "    pop %rbp",
    "    pop %rdi",
    "    pop %rsi",
    "    pop %rdx",
    "    pop %rcx",
    "    pop %rbx",
    "    pop %rax",
    "    popfq",
    "    ret ${red_zone}",
    // vessel_switch(save: *mut u64, to: u64): callee-saved switch.
    ".global vessel_switch",
    "vessel_switch:",
    "    push %rbp",
    "    push %rbx",
    "    push %r12",
    "    push %r13",
    "    push %r14",
    "    push %r15",
    "    mov %rsp, (%rdi)",
    "    mov %rsi, %rsp",
    "    pop %r15",
    "    pop %r14",
    "    pop %r13",
    "    pop %r12",
    "    pop %rbx",
    "    pop %rbp",
    "    ret",
    ".global vessel_task_trampoline",
    "vessel_task_trampoline:",
    "    mov %r12, %rdi",
    "    call {task_main}",
    "    ud2",
    ".popsection",
    apf = sym crate::apf::VESSEL_APF_SHARED,
    vcpu_id = const offset_of!(vessel_abi::VcpuInfo, id),
    flags = const offset_of!(ApfShared, area) + offset_of!(ApfArea, flags),
    token = const offset_of!(ApfShared, area) + offset_of!(ApfArea, token),
    head = const offset_of!(ApfShared, head),
    ring = const offset_of!(ApfShared, ring),
    ringmask = const crate::apf::RING - 1,
    not_present = const PAGE_NOT_PRESENT,
    apf_ack = const KVM_ASYNC_PF_ACK,
    eoi = const X2APIC_EOI,
    upcall_frame = const UPCALL_FRAME,
    red_zone = const RED_ZONE,
    xsize = sym XSAVE_SIZE,
    park = sym crate::apf::vessel_apf_park,
    task_main = sym crate::task::vessel_task_main,
    start = sym crate::boot::vessel_rt_start,
    count = const EXCEPTION_VECTORS,
    stride = const STUB_STRIDE,
    fault = const DOORBELL_FAULT,
    rax_below = const vessel_abi::X86FaultFrame::SAVED_RAX_BELOW,
    options(att_syntax)
);

/// `GuestHeader::vector_count` and `vector_stride`.
pub(crate) const VECTOR_COUNT: u32 = EXCEPTION_VECTORS;
pub(crate) const VECTOR_STRIDE: u64 = STUB_STRIDE;

/// `GuestHeader::vector_table` and `irq_entry`: the stubs above.
pub(crate) const fn header_entries() -> (*const (), *const ()) {
    extern "C" {
        fn vessel_vectors();
        fn vessel_irq_entry();
    }
    (vessel_vectors as *const (), vessel_irq_entry as *const ())
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

/// Stop with #UD (ud2), which the launcher reports as a guest fault.
pub fn trap() -> ! {
    // SAFETY: ud2 raises #UD; the launcher reports it and ends the VM.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Name of the architecture, for messages.
pub const NAME: &str = "x86_64";

extern "C" {
    fn vessel_switch(save: *mut u64, to: u64);
    fn vessel_task_trampoline();
}

/// Bytes `vessel_apf_upcall` needs for `xsave64` (0: use `fxsave64`).
#[no_mangle]
static mut XSAVE_SIZE: u64 = 0;

/// Size the vector-state save area from CPUID (once, at boot, before any
/// async page fault can arrive).
pub fn init_apf_state() {
    let osxsave = core::arch::x86_64::__cpuid(1).ecx & (1 << 27) != 0;
    if osxsave {
        // Leaf 0xd exists when XSAVE is enabled; ebx = size for XCR0 now.
        let size = u64::from(core::arch::x86_64::__cpuid_count(0xd, 0).ebx);
        // SAFETY: single vCPU, written at boot before the upcall can run.
        unsafe { XSAVE_SIZE = size + 64 }
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
    let sp = top - 56;
    // Frame popped by vessel_switch: r15 r14 r13 r12 rbx rbp, then ret.
    let words = [
        0,
        0,
        0,
        arg,
        0,
        0,
        vessel_task_trampoline as *const () as u64,
    ];
    for (i, w) in words.iter().enumerate() {
        // SAFETY: sp..top lies inside `stack` (56 bytes below its aligned top).
        unsafe { ((sp + 8 * i as u64) as *mut u64).write(*w) };
    }
    sp
}

/// Nothing to remember on x86_64: GS base leads to this vCPU's `VcpuInfo`.
pub(crate) fn set_vcpu_table(_b: &vessel_abi::BootInfo) {}

/// Called on every vCPU at its start with the checked BootInfo; nothing to
/// do on x86_64.
pub(crate) fn init(_b: &vessel_abi::BootInfo) {}

/// The id of the vCPU this code runs on: `VcpuInfo::id`, read through the
/// GS base the launcher pointed at this vCPU's entry.
#[inline(always)]
pub fn vcpu_id() -> u32 {
    let id: u64;
    // SAFETY: the launcher set GS base to this vCPU's VcpuInfo, mapped and
    // readable at CPL3; the load has no other effect.
    unsafe {
        core::arch::asm!("mov %gs:{off}, {id}", id = out(reg) id,
            off = const offset_of!(vessel_abi::VcpuInfo, id),
            options(nostack, readonly, preserves_flags, att_syntax))
    };
    id as u32
}

/// The guest address of this vCPU's hypercall frame (`VcpuInfo::frame`).
#[inline(always)]
pub fn vcpu_frame() -> u64 {
    let frame: u64;
    // SAFETY: as in `vcpu_id`.
    unsafe {
        core::arch::asm!("mov %gs:{off}, {f}", f = out(reg) frame,
            off = const offset_of!(vessel_abi::VcpuInfo, frame),
            options(nostack, readonly, preserves_flags, att_syntax))
    };
    frame
}

/// SVE is an arm64 extension: always None here.
pub fn sve_vector_bits() -> Option<u32> {
    None
}
