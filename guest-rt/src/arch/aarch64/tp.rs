//! The thread pointer (aarch64: TPIDR_EL0), which `std` programs' thread
//! locals are addressed from (the TLS block lies 16 bytes above it). The
//! app runs at EL1, where the register is always writable.

/// Point TPIDR_EL0 at `tp`.
///
/// # Safety
/// Code that reads thread locals from here on finds a valid TLS block at
/// `tp`.
pub unsafe fn set_thread_pointer(tp: u64) {
    // SAFETY: the caller's contract; the write changes nothing else.
    unsafe {
        core::arch::asm!("msr tpidr_el0, {}", in(reg) tp, options(nostack, preserves_flags));
    }
}

/// TPIDR_EL0 (0 until someone set it).
///
/// # Safety
/// None beyond running in the guest; `unsafe` to match x86_64.
pub unsafe fn thread_pointer() -> u64 {
    let tp: u64;
    // SAFETY: reading the register has no effect.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nostack, nomem, preserves_flags));
    }
    tp
}
