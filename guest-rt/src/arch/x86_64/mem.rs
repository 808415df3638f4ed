//! The C memory functions the compiler calls for copies, fills and
//! comparisons: `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`.
//!
//! x86_64 guests are built for the hard-float Linux target, whose
//! `compiler_builtins` leaves these to libc; a guest links no libc, so the
//! runtime defines them. Copies and fills are `rep movsb` / `rep stosb`
//! (fast strings, which run natively at CPL3); comparisons are plain loops
//! (LLVM does not turn a comparison loop back into a `memcmp` call).
//! Each keeps its C contract: the caller guarantees the pointers are valid
//! for `n` bytes, and for `memcpy` that the ranges do not overlap.

use core::arch::asm;

/// C `memcpy`: copy `n` bytes from `src` to `dest` (not overlapping).
#[no_mangle]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the C contract: both ranges are valid for `n` bytes and do
    // not overlap; DF is clear (the System V ABI's state at every call).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

/// C `memmove`: copy `n` bytes from `src` to `dest`; the ranges may overlap.
#[no_mangle]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n == 0 {
        return dest;
    }
    let (d, s) = (dest as usize, src as usize);
    if d <= s || d - s >= n {
        // SAFETY: a forward copy never overwrites a source byte before it
        // is read when dest is below src or past the end of the source.
        unsafe { memcpy(dest, src, n) };
        return dest;
    }
    // dest overlaps the source from above: copy backwards (DF = 1), last
    // byte first, and clear DF again as the ABI requires.
    // SAFETY: the C contract: both ranges are valid for `n` (>= 1) bytes,
    // so `n - 1` stays inside each.
    unsafe {
        asm!("std", "rep movsb", "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack));
    }
    dest
}

/// C `memset`: fill `n` bytes at `dest` with the low byte of `c`.
#[no_mangle]
unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the C contract: `dest` is valid for `n` bytes; DF is clear.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") c.to_le_bytes()[0],
            options(nostack, preserves_flags));
    }
    dest
}

/// C `memcmp`: compare `n` bytes as unsigned; <0, 0 or >0.
#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the C contract: both ranges are valid for `n` bytes.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// C `bcmp`: zero when the `n` bytes are equal.
#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
