//! Per-call timeouts without a thread: a POSIX timer per host thread that
//! sends that thread the vCPU kick signal, which ends KVM_RUN (see
//! `stop.rs`); the vCPU loop then sees the call's deadline has passed.

use std::cell::RefCell;
use std::time::Duration;

use crate::error::{Error, Result};

/// A `timer_create` timer aimed at the thread that made it.
struct ThreadTimer {
    id: libc::timer_t,
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: `id` came from timer_create and is deleted once, here.
        unsafe { libc::timer_delete(self.id) };
    }
}

thread_local! {
    static TIMER: RefCell<Option<ThreadTimer>> = const { RefCell::new(None) };
}

fn timer_error(source: std::io::Error) -> Error {
    Error::Thread {
        what: "the call timer",
        source,
    }
}

fn create() -> Result<ThreadTimer> {
    crate::stop::install_kick()?;
    // SAFETY: a zeroed sigevent is valid; the fields below are set.
    let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
    ev.sigev_notify = libc::SIGEV_THREAD_ID;
    ev.sigev_signo = crate::stop::kick_signal();
    // SAFETY: gettid has no preconditions.
    ev.sigev_notify_thread_id = unsafe { libc::gettid() };
    let mut id: libc::timer_t = std::ptr::null_mut();
    // SAFETY: `ev` and `id` are live; the kernel writes only `id`.
    if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &raw mut ev, &raw mut id) } != 0 {
        return Err(timer_error(std::io::Error::last_os_error()));
    }
    Ok(ThreadTimer { id })
}

fn set(after: Duration) -> Result<()> {
    TIMER.with(|t| {
        let mut t = t.borrow_mut();
        if t.is_none() {
            *t = Some(create()?);
        }
        let Some(timer) = t.as_ref() else {
            return Ok(());
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i64::MAX as u64).cast_signed(),
                tv_nsec: i64::from(after.subsec_nanos()),
            },
        };
        // SAFETY: a live timer of this thread and a valid itimerspec.
        let r = unsafe { libc::timer_settime(timer.id, 0, &raw const spec, std::ptr::null_mut()) };
        if r != 0 {
            return Err(timer_error(std::io::Error::last_os_error()));
        }
        Ok(())
    })
}

/// Kicks this thread once `after` passes, unless dropped first.
pub(crate) struct CallTimer(());

impl CallTimer {
    /// Arm this thread's timer (made at its first use).
    pub(crate) fn arm(after: Duration) -> Result<CallTimer> {
        // A zero timespec would disarm: the smallest real timeout instead.
        set(after.max(Duration::from_nanos(1)))?;
        Ok(CallTimer(()))
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        let _ = set(Duration::ZERO);
    }
}
