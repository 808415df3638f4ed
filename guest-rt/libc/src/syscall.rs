//! `syscall`, for the numbers std calls it with: `futex` (over guest-rt's
//! Wait/Wake), `getrandom` (the host's), `gettid`, `statx` and everything else
//! ENOSYS (std then falls back to `stat`/`fstat`).
//!
//! C declares `syscall` variadic, which stable Rust cannot define; on both
//! targets a variadic call passes its first arguments exactly like a
//! fixed one (x86_64: rdi..r9; aarch64 Linux: x0..x7), so the six
//! register arguments are read as fixed parameters.

use core::ffi::c_long;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::errno::set_errno;

/// `-1` with errno = `e`, as `syscall` returns failures.
fn fail(e: i32) -> c_long {
    set_errno(e);
    -1
}

/// The raw system call entry std uses for futex, getrandom and statx.
#[no_mangle]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a: c_long,
    b: c_long,
    c: c_long,
    d: c_long,
    _e: c_long,
) -> c_long {
    match n {
        libc::SYS_futex => {
            // SAFETY: C's contract for futex: `a` is a live futex word, `d`
            // null or a timespec.
            unsafe {
                futex(
                    a as *const AtomicU32,
                    b as i32,
                    c.cast_unsigned() as u32, // the low half: C passed an unsigned int
                    d as *const libc::timespec,
                )
            }
        }
        libc::SYS_getrandom => getrandom(a as *mut u8, usize::try_from(b).unwrap_or(0)),
        libc::SYS_gettid => c_long::from(crate::pthread::gettid()),
        _ => fail(libc::ENOSYS),
    }
}

/// Random bytes from the host into `buf`.
fn getrandom(buf: *mut u8, len: usize) -> c_long {
    if len == 0 {
        return 0;
    }
    // SAFETY: C's contract: `buf` has `len` writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match guest_rt::random::fill(out) {
        Ok(()) => c_long::try_from(len).unwrap_or(c_long::MAX),
        Err(_) => fail(libc::EIO),
    }
}

/// FUTEX_WAIT(_BITSET) and FUTEX_WAKE (private or not; the bitset is not
/// looked at: every waiter re-checks its word).
///
/// # Safety
/// `word` points at a live 4-byte-aligned u32; `timeout` is null or
/// readable.
unsafe fn futex(
    word: *const AtomicU32,
    op: i32,
    val: u32,
    timeout: *const libc::timespec,
) -> c_long {
    let cmd = op & !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let deadline = if timeout.is_null() {
                None
            } else {
                // SAFETY: the caller's contract.
                match crate::time::ns_of(unsafe { &*timeout }) {
                    Some(ns) => Some(ns),
                    None => return fail(libc::EINVAL),
                }
            };
            // FUTEX_WAIT's timeout is relative, FUTEX_WAIT_BITSET's an
            // absolute CLOCK_MONOTONIC time (std's use).
            let absolute = cmd == libc::FUTEX_WAIT_BITSET;
            // SAFETY: the caller's contract.
            unsafe { wait(word, val, deadline, absolute) }
        }
        libc::FUTEX_WAKE => {
            crate::sched::progress();
            guest_rt::futex::wake_all();
            0
        }
        _ => fail(libc::ENOSYS),
    }
}

/// Halt while `*word == val`, until woken or past the timeout.
///
/// guest-rt's Wait watches an aligned 8-byte word: the one holding this
/// 4-byte futex. A change of its other half is a spurious wake-up, which
/// futex callers allow.
///
/// # Safety
/// As [`futex`].
unsafe fn wait(word: *const AtomicU32, val: u32, timeout: Option<u64>, absolute: bool) -> c_long {
    let start = crate::time::monotonic_ns();
    let deadline = timeout.map(|t| if absolute { t } else { start.saturating_add(t) });
    // SAFETY: the caller's contract: `word` is live and aligned.
    let w = unsafe { &*word };
    let wide = ((word as usize) & !7) as *const AtomicU64;
    // SAFETY: the aligned 8 bytes around a live 4-byte word lie in the
    // same mapped page; they are only read, atomically.
    let wide = unsafe { &*wide };
    if w.load(Ordering::SeqCst) != val {
        return fail(libc::EAGAIN);
    }
    let seen = wide.load(Ordering::SeqCst);
    let Some(d) = deadline else {
        // No timeout: halt in slices, watching for threads that can never
        // run (crate::sched).
        crate::sched::wait_untimed(|ns| {
            if w.load(Ordering::SeqCst) == val && wide.load(Ordering::SeqCst) == seen {
                guest_rt::futex::wait(wide, seen, ns);
            }
            wide.load(Ordering::SeqCst) != seen
        });
        return 0;
    };
    let left = match d.checked_sub(crate::time::monotonic_ns()) {
        Some(l) if l > 0 => l,
        _ => return fail(libc::ETIMEDOUT),
    };
    if w.load(Ordering::SeqCst) == val {
        guest_rt::futex::wait(wide, seen, left);
    }
    match deadline {
        Some(d) if crate::time::monotonic_ns() >= d && w.load(Ordering::SeqCst) == val => {
            fail(libc::ETIMEDOUT)
        }
        _ => 0,
    }
}
