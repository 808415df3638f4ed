//! The C memory functions the compiler calls for copies, fills and
//! comparisons: `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`.
//!
//! x86_64 guests are built for the hard-float Linux target, whose
//! `compiler_builtins` leaves these to libc; a guest links no libc, so the
//! runtime defines them. Copies and fills are `rep movsb` / `rep stosb`
//! (fast strings, which run natively at CPL3), short copies overlapping
//! loads and stores; comparisons go eight bytes at a time (LLVM does not
//! turn a comparison loop back into a `memcmp` call).
//! Each keeps its C contract: the caller guarantees the pointers are valid
//! for `n` bytes, and for `memcpy` that the ranges do not overlap.

use core::arch::asm;

/// C `memcpy`: copy `n` bytes from `src` to `dest` (not overlapping).
///
/// Up to 32 bytes: two overlapping loads and stores of the widest size
/// that fits (`rep movsb` costs tens of cycles to start on this CPU, and
/// short copies, string clones, dominate allocation-heavy code); longer
/// copies are `rep movsb`.
#[no_mangle]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n <= 32 {
        // SAFETY: the C contract: both ranges are valid for `n` bytes.
        unsafe { copy_short(dest, src, n) };
        return dest;
    }
    // SAFETY: the C contract: both ranges are valid for `n` bytes and do
    // not overlap; DF is clear (the System V ABI's state at every call).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

/// Copy `n` (<= 32) bytes: the first and the last `w` bytes, `w` the
/// widest power of two up to 16 not above `n` (so the two cover all).
/// Every load happens before any store, so overlapping ranges are fine.
///
/// # Safety
/// Both ranges are valid for `n` bytes.
#[inline(always)]
unsafe fn copy_short(d: *mut u8, s: *const u8, n: usize) {
    /// Load the head and tail words of type T, then store both.
    ///
    /// # Safety
    /// As `copy_short`, with `size_of::<T>() <= n`.
    #[inline(always)]
    unsafe fn two<T: Copy>(d: *mut u8, s: *const u8, n: usize) {
        let w = size_of::<T>();
        // SAFETY: the caller's contract: [0, w) and [n - w, n) lie inside
        // both ranges.
        unsafe {
            let (a, b) = (
                s.cast::<T>().read_unaligned(),
                s.add(n - w).cast::<T>().read_unaligned(),
            );
            d.cast::<T>().write_unaligned(a);
            d.add(n - w).cast::<T>().write_unaligned(b);
        }
    }
    // SAFETY: each arm's width is at most `n`.
    unsafe {
        match n {
            16.. => two::<u128>(d, s, n),
            8.. => two::<u64>(d, s, n),
            4.. => two::<u32>(d, s, n),
            2.. => two::<u16>(d, s, n),
            1 => d.write(s.read()),
            0 => {}
        }
    }
}

/// C `memmove`: copy `n` bytes from `src` to `dest`; the ranges may overlap.
#[no_mangle]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n <= 32 {
        // SAFETY: the C contract; copy_short loads everything before it
        // stores, so overlap is fine.
        unsafe { copy_short(dest, src, n) };
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
///
/// Eight bytes at a time (unaligned loads); the first differing word is
/// compared as big-endian, which orders it as its bytes would.
#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: the C contract: both ranges are valid for `n` bytes, and
        // [i, i + 8) lies inside them.
        let (x, y) = unsafe {
            (
                a.add(i).cast::<u64>().read_unaligned(),
                b.add(i).cast::<u64>().read_unaligned(),
            )
        };
        if x != y {
            return if u64::from_be(x) < u64::from_be(y) {
                -1
            } else {
                1
            };
        }
        i += 8;
    }
    while i < n {
        // SAFETY: as above, for byte `i < n`.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// C `bcmp`: zero when the `n` bytes are equal.
#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
