//! Signals the launcher handles: SIGINT and SIGTERM end the guest the way
//! `--timeout` does (its buffered output is written, then the process
//! exits 130 or 143); SIGSEGV/SIGBUS in the launcher itself print where
//! before it dies.

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

/// SIGINT and SIGTERM, blocked in every launcher thread and taken by one
/// thread with `sigwait`, which stops the guest through its
/// [`vmm::StopHandle`] (the vCPU loop then writes the guest's buffered
/// output and the process exits 128 + the signal).
pub struct StopSignals {
    set: libc::sigset_t,
}

/// Dropping it tells the signal thread that the run is over.
pub struct Forwarding {
    _done: std::sync::mpsc::Sender<()>,
}

impl StopSignals {
    /// Block SIGINT and SIGTERM in the calling thread (and every thread it
    /// starts later).
    pub fn block() -> Result<StopSignals, vmm::Error> {
        // SAFETY: a zeroed sigset_t is a valid argument to sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live sigset_t; the calls only write to it and
        // to this thread's signal mask.
        let rc = unsafe {
            libc::sigemptyset(&raw mut set);
            libc::sigaddset(&raw mut set, libc::SIGINT);
            libc::sigaddset(&raw mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(vmm::Error::Other(format!(
                "cannot block SIGINT/SIGTERM: {}",
                std::io::Error::from_raw_os_error(rc)
            )));
        }
        Ok(StopSignals { set })
    }

    /// Start the thread that turns SIGINT/SIGTERM into a stop of `handle`.
    pub fn forward_to(&self, handle: vmm::StopHandle) -> Result<Forwarding, vmm::Error> {
        let set = self.set;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("vessel-signals".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is an initialised sigset_t whose signals are
                // blocked in every thread; sigwait writes the signal to `sig`.
                if unsafe { libc::sigwait(&raw const set, &raw mut sig) } == 0 {
                    handle.stop_until_detached(vmm::StopReason::Signal(sig), &rx);
                }
            })
            .map_err(|e| vmm::Error::Other(format!("cannot start the signal thread: {e}")))?;
        Ok(Forwarding { _done: tx })
    }
}
