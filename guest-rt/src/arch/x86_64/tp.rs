//! The thread pointer (x86_64: the FS base), which `std` programs' thread
//! locals are addressed from (`%fs:0` holds the pointer itself; the TLS
//! block lies below it). The launcher sets CR4.FSGSBASE when the CPU has
//! it and says so with `vessel_abi::features::THREAD_POINTER`, so CPL3 code
//! sets its own FS base with `wrfsbase`, no exit, no ring-0 code.

/// Point this vCPU's FS base at `tp`.
///
/// # Safety
/// The launcher offered `THREAD_POINTER` (`wrfsbase` is #UD without
/// CR4.FSGSBASE), and code that reads thread locals from here on finds a
/// valid TLS block at `tp`.
pub unsafe fn set_thread_pointer(tp: u64) {
    // SAFETY: the caller's contract; wrfsbase changes nothing else.
    unsafe {
        core::arch::asm!("wrfsbase {}", in(reg) tp, options(nostack, preserves_flags));
    }
}

/// This vCPU's FS base (0 until someone set it).
///
/// # Safety
/// As [`set_thread_pointer`]: the launcher offered `THREAD_POINTER`.
pub unsafe fn thread_pointer() -> u64 {
    let tp: u64;
    // SAFETY: the caller's contract; rdfsbase only reads.
    unsafe {
        core::arch::asm!("rdfsbase {}", out(reg) tp, options(nostack, nomem, preserves_flags));
    }
    tp
}
