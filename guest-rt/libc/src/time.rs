//! Clocks: `clock_gettime` reads the guest's cycle counter (no exit); the
//! wall clock is the host's, read once and then carried by the counter.
//! `nanosleep` halts the vCPU.

use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use crate::errno::fail;

/// Nanoseconds on the guest's monotonic clock (the cycle counter).
pub fn monotonic_ns() -> u64 {
    let khz = guest_rt::env::boot_info().counter_khz.max(1);
    let cycles = u128::from(guest_rt::arch::cycles());
    u64::try_from(cycles * 1_000_000 / u128::from(khz)).unwrap_or(u64::MAX)
}

/// Wall-clock time minus [`monotonic_ns`], fixed at the first call (0: not
/// read yet).
static REALTIME_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since the Unix epoch.
fn realtime_ns() -> u64 {
    let mut off = REALTIME_OFFSET.load(Ordering::Relaxed);
    if off == 0 {
        off = guest_rt::time::realtime_ns()
            .wrapping_sub(monotonic_ns())
            .max(1);
        REALTIME_OFFSET.store(off, Ordering::Relaxed);
    }
    monotonic_ns().wrapping_add(off)
}

/// `ns` as a timespec.
fn timespec(ns: u64) -> libc::timespec {
    // SAFETY: a timespec is two integers: all-zero is valid.
    let mut t: libc::timespec = unsafe { core::mem::zeroed() };
    t.tv_sec = (ns / 1_000_000_000).cast_signed();
    t.tv_nsec = (ns % 1_000_000_000).cast_signed();
    t
}

/// A timespec as nanoseconds (None when negative or out of range).
pub fn ns_of(t: &libc::timespec) -> Option<u64> {
    let s = u64::try_from(t.tv_sec).ok()?;
    let n = u64::try_from(t.tv_nsec)
        .ok()
        .filter(|&n| n < 1_000_000_000)?;
    s.checked_mul(1_000_000_000)?.checked_add(n)
}

/// CLOCK_MONOTONIC (and _RAW, _COARSE, BOOTTIME; the CPU-time clocks too,
/// as a thread is never preempted), CLOCK_REALTIME (and _COARSE); else
/// EINVAL.
#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int {
    let ns = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE => realtime_ns(),
        libc::CLOCK_MONOTONIC
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_PROCESS_CPUTIME_ID
        | libc::CLOCK_THREAD_CPUTIME_ID => monotonic_ns(),
        _ => return fail(libc::EINVAL),
    };
    // SAFETY: C's contract: `ts` is writable.
    unsafe { ts.write(timespec(ns)) };
    0
}

/// Halt this vCPU for `req` (never interrupted: `rem` is left alone).
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, _rem: *mut libc::timespec) -> c_int {
    // SAFETY: C's contract: `req` is readable.
    let Some(ns) = ns_of(unsafe { &*req }) else {
        return fail(libc::EINVAL);
    };
    guest_rt::time::sleep(Duration::from_nanos(ns));
    0
}
