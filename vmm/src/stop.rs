//! Stopping a running vCPU from another thread: `--timeout`, SIGINT and
//! SIGTERM, or an embedding program that wants its guest ended.
//!
//! [`StopHandle::stop`] records the reason, sets `immediate_exit` in the
//! vCPU's `kvm_run` and sends the vCPU thread one kick signal. A vCPU inside
//! KVM_RUN leaves it with EINTR; one outside it (serving a hypercall) finds
//! `immediate_exit` at its next KVM_RUN, which then returns at once. The
//! signal handler also marks the thread as kicked, so a host write blocked
//! on a full pipe (the signal interrupts it: no SA_RESTART) gives up instead
//! of retrying; see [`kicked`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use kvm_ioctls::VcpuFd;

use crate::error::{Error, Result};
use crate::outcome::StopReason;

thread_local! {
    static KICKED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread was kicked since it attached a vCPU: a host write
/// that got EINTR should give up rather than retry.
pub fn kicked() -> bool {
    KICKED.with(Cell::get)
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A const-initialised thread-local Cell without a destructor: a plain
    // store to this thread's TLS block, safe in a signal handler.
    KICKED.with(|k| k.set(true));
}

fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

/// The running vCPU: its thread and its `kvm_run.immediate_exit` byte, as
/// integers (a `pthread_t` is a pointer on musl and not `Send`).
#[derive(Default)]
struct Target {
    thread: usize,
    immediate_exit: usize,
}

#[derive(Default)]
struct Inner {
    reason: Option<StopReason>,
    target: Option<Target>,
}

/// Ends a guest's run from any thread. Clones share the state.
#[derive(Clone, Default)]
pub struct StopHandle {
    inner: Arc<Mutex<Inner>>,
}

impl StopHandle {
    /// Install the kick signal's handler (idempotent).
    fn install() -> Result<()> {
        static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| Error::Other(format!("cannot install the vCPU kick handler: {e}")))
    }

    /// Attach the calling thread's `vcpu`; stops from now on reach it.
    /// Returns a guard that detaches it when dropped (before the vCPU goes).
    pub fn attach<'a>(&'a self, vcpu: &mut VcpuFd) -> Result<Attached<'a>> {
        Self::install()?;
        KICKED.with(|k| k.set(false));
        vcpu.set_kvm_immediate_exit(0);
        let run = vcpu.get_kvm_run();
        let immediate_exit = std::ptr::addr_of_mut!(run.immediate_exit) as usize;
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() } as usize;
        let mut g = self.lock();
        g.target = Some(Target {
            thread,
            immediate_exit,
        });
        let already = g.reason.is_some();
        drop(g);
        if already {
            vcpu.set_kvm_immediate_exit(1);
        }
        Ok(Attached { handle: self })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop the guest for `why` (the first reason given wins).
    pub fn stop(&self, why: StopReason) {
        let mut g = self.lock();
        g.reason.get_or_insert(why);
        if let Some(t) = &g.target {
            // SAFETY: `immediate_exit` points into the attached vCPU's
            // kvm_run mapping, which lives until `Attached` is dropped; that
            // takes this lock first, so the mapping is alive here. KVM reads
            // the byte at every KVM_RUN entry.
            let flag = unsafe { AtomicU8::from_ptr(t.immediate_exit as *mut u8) };
            flag.store(1, Ordering::SeqCst);
            // SAFETY: the target thread is alive while attached (it detaches
            // under this lock before it ends).
            unsafe { libc::pthread_kill(t.thread as libc::pthread_t, kick_signal()) };
        }
    }

    /// Whether a vCPU is attached (running).
    pub fn is_attached(&self) -> bool {
        self.lock().target.is_some()
    }

    /// Stop for `why`, then kick again every 100 ms while the vCPU is still
    /// attached and `done` has not fired: a kick that lands between a host
    /// write's check of [`kicked`] and the blocking call is not lost.
    pub fn stop_until_detached(&self, why: StopReason, done: &mpsc::Receiver<()>) {
        self.stop(why);
        while self.is_attached()
            && done.recv_timeout(Duration::from_millis(100)) == Err(mpsc::RecvTimeoutError::Timeout)
        {
            self.stop(why);
        }
    }

    /// Why the guest was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        self.lock().reason
    }
}

/// A vCPU attached to a [`StopHandle`]; dropping it detaches.
pub struct Attached<'a> {
    handle: &'a StopHandle,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.handle.lock().target = None;
        // No kick reaches this thread any more; later writes (the output a
        // stopped guest left behind) may block again, with their own bound.
        KICKED.with(|k| k.set(false));
    }
}

/// Stops the guest with [`StopReason::Timeout`] once `limit` passes.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(limit: Option<Duration>, handle: &StopHandle) -> Result<Watchdog> {
        let Some(limit) = limit else {
            return Ok(Watchdog {
                done: None,
                thread: None,
            });
        };
        let (tx, rx) = mpsc::channel::<()>();
        let handle = handle.clone();
        let thread = std::thread::Builder::new()
            .name("vessel-watchdog".into())
            .stack_size(64 << 10)
            .spawn(move || {
                if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                    handle.stop_until_detached(StopReason::Timeout, &rx);
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the watchdog thread: {e}")))?;
        Ok(Watchdog {
            done: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
