//! A SIGSEGV or SIGBUS in the launcher itself prints where before it dies.

/// Say where the launcher itself crashed (it never should: the guest is
/// checked at every step) before dying of the signal as usual.
extern "C" fn on_crash(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let mut buf = [0u8; 128];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    let hex = |mut v: u64| {
        let mut d = [b'0'; 16];
        for i in (0..16).rev() {
            d[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
        }
        d
    };
    put(b"vessel: launcher crashed (a bug in Vessel): signal 0x");
    put(&hex(u64::from(sig.cast_unsigned()))[14..]);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    put(b" code 0x");
    put(&hex(u64::from(code.cast_unsigned()))[8..]);
    put(b" addr 0x");
    put(&hex(addr));
    put(b"\n");
    // SAFETY: write(2) is async-signal-safe; buf[..n] is initialized.
    unsafe { libc::write(2, buf.as_ptr().cast(), n) };
    // SA_RESETHAND restored the default action: returning re-runs the
    // faulting instruction, which now ends the process with the signal.
}

pub fn install_crash_report() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a zeroed sigaction is valid; we fill handler and flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_crash as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND;
        // SAFETY: installs a handler that only calls async-signal-safe write(2);
        // std set up an alternate signal stack for this thread (SA_ONSTACK).
        unsafe { libc::sigaction(sig, &raw const sa, std::ptr::null_mut()) };
    }
}
