//! Signals do not exist in a Vessel VM (nothing can send one, and faults
//! end the VM with a report), so the signal calls std makes at start are
//! documented no-ops that succeed: `signal` and `sigaction` report the
//! default disposition, `sigaltstack` a disabled stack. Also the ways out:
//! `exit`, `_exit`, `abort` (exit 134), `pause`.

use core::ffi::c_int;

/// Installing a handler is accepted (it never runs); the old one was the
/// default.
#[no_mangle]
pub extern "C" fn signal(_sig: c_int, _handler: libc::sighandler_t) -> libc::sighandler_t {
    libc::SIG_DFL
}

/// As [`signal`]: `old`, when given, says "default, no flags".
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    _sig: c_int,
    _act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if !old.is_null() {
        // SAFETY: C's contract: `old` is writable; all-zero is SIG_DFL
        // with no flags and an empty mask.
        unsafe { old.write(core::mem::zeroed()) };
    }
    0
}

/// Alternate signal stacks are accepted; the old one is "disabled".
#[no_mangle]
pub unsafe extern "C" fn sigaltstack(_new: *const libc::stack_t, old: *mut libc::stack_t) -> c_int {
    if !old.is_null() {
        // SAFETY: C's contract: `old` is writable.
        unsafe {
            old.write(libc::stack_t {
                ss_sp: core::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            })
        };
    }
    0
}

/// Signal masks: accepted, the old mask is empty.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(
    _how: c_int,
    _set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    if !old.is_null() {
        // SAFETY: C's contract: `old` is writable; zero is the empty set.
        unsafe { old.write(core::mem::zeroed()) };
    }
    0
}

/// Wait for a signal: none can come, so this vCPU halts for good (the
/// VM ends when another vCPU exits, or at the launcher's timeout).
#[no_mangle]
pub extern "C" fn pause() -> c_int {
    loop {
        guest_rt::time::sleep(core::time::Duration::from_secs(3600));
    }
}

/// End the VM with `code` (buffered stdout goes with it).
#[no_mangle]
pub extern "C" fn exit(code: c_int) -> ! {
    guest_rt::process::exit(code)
}

/// As [`exit`].
#[no_mangle]
pub extern "C" fn _exit(code: c_int) -> ! {
    guest_rt::process::exit(code)
}

/// As [`exit`].
#[no_mangle]
pub extern "C" fn _Exit(code: c_int) -> ! {
    guest_rt::process::exit(code)
}

/// End the VM with exit code 134 (as a shell reports a process killed by
/// SIGABRT), the launcher saying why: what a panic does in a std program
/// built with `panic = "abort"`, after std printed the panic message.
#[no_mangle]
pub extern "C" fn abort() -> ! {
    guest_rt::process::abort(
        "abort() called (a std program panics this way: it is built with panic = \"abort\")",
    )
}
