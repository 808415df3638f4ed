//! C string helpers std calls (the memory ones, `memcpy` and friends, are
//! guest-rt's own: `guest-rt/src/arch/*/mem.rs`).

use core::ffi::c_char;

/// Length of the NUL-terminated string at `s`.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const c_char) -> usize {
    let mut n = 0;
    // SAFETY: C's contract: `s` is NUL-terminated, so every byte read up to
    // the NUL is inside it.
    while unsafe { s.add(n).read() } != 0 {
        n += 1;
    }
    n
}

/// The bytes of the NUL-terminated string at `s` (without the NUL).
///
/// # Safety
/// `s` is NUL-terminated and lives and stays unchanged for `'a`.
pub unsafe fn c_bytes<'a>(s: *const c_char) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(s.cast::<u8>(), strlen(s)) }
}
