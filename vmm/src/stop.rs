//! Stopping a running vCPU: `--timeout`, SIGINT and SIGTERM, a closed
//! stdout, or an embedding program that wants its guest ended.
//!
//! One signal handler does the work on the vCPU's own thread: it sets that
//! thread's `kvm_run.immediate_exit` (so a KVM_RUN about to start returns at
//! once with EINTR; one already running is interrupted by the signal itself)
//! and marks the thread as kicked, so a host write blocked on a full pipe
//! (interrupted: no SA_RESTART) gives up instead of retrying ([`kicked`]).
//!
//! - [`StopHandle::stop`] records a reason and sends every attached vCPU
//!   thread the kick signal (SIGRTMIN); when one vCPU ends the VM (exit,
//!   crash) the same kick ends the others.
//! - [`handle_stop_signals`] installs the same handler for SIGINT and
//!   SIGTERM: the process's signal reaches the vCPU thread because every
//!   thread the launcher starts blocks them ([`quiet`]); the run then ends
//!   as [`StopReason::Signal`]. No thread waits for signals, so a boot pays
//!   for none.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use kvm_ioctls::VcpuFd;

use crate::error::{Error, Result};
use crate::outcome::StopReason;

thread_local! {
    static KICKED: Cell<bool> = const { Cell::new(false) };
    /// Address of this thread's attached `kvm_run.immediate_exit`, or 0.
    static IMMEDIATE_EXIT: Cell<usize> = const { Cell::new(0) };
}

/// SIGINT or SIGTERM, once received (0: none).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

/// Whether this thread was kicked since it attached a vCPU: a host write
/// that got EINTR should give up rather than retry.
pub fn kicked() -> bool {
    KICKED.with(Cell::get)
}

/// Forget a kick this thread had (the debugger's stop, now served): later
/// host writes may block again.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn clear_kicked() {
    KICKED.with(|k| k.set(false));
}

/// The SIGINT or SIGTERM the process received, if any (after
/// [`handle_stop_signals`]).
pub fn signalled() -> Option<i32> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

extern "C" fn on_kick(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    if sig == libc::SIGINT || sig == libc::SIGTERM || sig == libc::SIGXCPU {
        let _ = SIGNALLED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    }
    // Const-initialised thread-locals without destructors: plain accesses
    // to this thread's TLS block, safe in a signal handler.
    KICKED.with(|k| k.set(true));
    let at = IMMEDIATE_EXIT.with(Cell::get);
    if at != 0 {
        // SAFETY: `at` is this thread's attached vCPU's kvm_run byte; the
        // mapping lives until `Attached` is dropped on this same thread,
        // which clears IMMEDIATE_EXIT first. KVM reads it at KVM_RUN entry.
        unsafe { AtomicU8::from_ptr(at as *mut u8) }.store(1, Ordering::SeqCst);
    }
}

pub(crate) fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

pub(crate) fn install(sig: libc::c_int) -> Result<()> {
    vmm_sys_util::signal::register_signal_handler(sig, on_kick).map_err(|source| {
        Error::SignalHandler {
            signal: sig,
            source,
        }
    })
}

/// End a running guest on SIGINT or SIGTERM the way `--timeout` ends it
/// (its buffered output is written; the outcome is
/// [`StopReason::Signal`]). For programs that own the process's signals,
/// like the `vessel` launcher.
pub fn handle_stop_signals() -> Result<()> {
    install(libc::SIGINT)?;
    install(libc::SIGTERM)
}

/// While alive, threads this thread starts block SIGINT and SIGTERM (they
/// inherit the mask), so those signals reach the vCPU thread. Take one
/// around every `spawn` of a launcher thread.
pub struct Quiet {
    old: libc::sigset_t,
    /// The mask belongs to the thread that took the guard: not `Send`.
    _thread: std::marker::PhantomData<*const ()>,
}

/// Block SIGINT and SIGTERM in the calling thread until the guard drops.
pub fn quiet() -> Quiet {
    // SAFETY: zeroed sigset_t values are valid arguments to sigemptyset and
    // pthread_sigmask, which write only to them and this thread's mask.
    let (mut set, mut old): (libc::sigset_t, libc::sigset_t) = unsafe { std::mem::zeroed() };
    // SAFETY: as above: live sigsets, the calling thread's own mask.
    unsafe {
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, libc::SIGINT);
        libc::sigaddset(&raw mut set, libc::SIGTERM);
        libc::sigaddset(&raw mut set, libc::SIGXCPU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, &raw mut old);
    }
    Quiet {
        old,
        _thread: std::marker::PhantomData,
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        // SAFETY: restores the mask `quiet` saved, on the same thread (the
        // guard is not Send).
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const self.old, std::ptr::null_mut())
        };
    }
}

#[derive(Default)]
struct Inner {
    reason: Option<StopReason>,
    /// One vCPU ended the VM (exit, crash): the others stop too.
    ended: bool,
    /// The attached vCPU threads, as integers (a `pthread_t` is a pointer
    /// on musl and not `Send`).
    threads: Vec<usize>,
}

impl Inner {
    fn kick_all(&self) {
        for &t in &self.threads {
            // SAFETY: each target thread is alive while attached (it
            // detaches under this lock before it ends).
            unsafe { libc::pthread_kill(t as libc::pthread_t, kick_signal()) };
        }
    }
}

/// Ends a guest's run from any thread. Clones share the state; every vCPU
/// thread of the VM attaches, and a stop reaches all of them.
#[derive(Clone, Default)]
pub struct StopHandle {
    inner: Arc<Mutex<Inner>>,
}

/// Install the kick signal's handler (once per process).
pub(crate) fn install_kick() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), vmm_sys_util::errno::Error>> =
        OnceLock::new();
    let signal = kick_signal();
    INSTALLED
        .get_or_init(|| vmm_sys_util::signal::register_signal_handler(signal, on_kick))
        .map_err(|source| Error::SignalHandler { signal, source })
}

impl StopHandle {
    /// Attach the calling thread's `vcpu`; stops from now on reach it.
    /// Returns a guard that detaches it when dropped (before the vCPU goes).
    pub fn attach<'a>(&'a self, vcpu: &mut VcpuFd) -> Result<Attached<'a>> {
        install_kick()?;
        vcpu.set_kvm_immediate_exit(0);
        let run = vcpu.get_kvm_run();
        let at = std::ptr::addr_of_mut!(run.immediate_exit) as usize;
        KICKED.with(|k| k.set(false));
        IMMEDIATE_EXIT.with(|c| c.set(at));
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() } as usize;
        let mut g = self.lock();
        g.threads.push(thread);
        if g.reason.is_some() || g.ended {
            vcpu.set_kvm_immediate_exit(1);
        }
        Ok(Attached {
            handle: self,
            thread,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop the guest for `why` (the first reason given wins).
    pub fn stop(&self, why: StopReason) {
        let mut g = self.lock();
        g.reason.get_or_insert(why);
        g.kick_all();
    }

    /// Kick every attached vCPU thread out of KVM_RUN without a stop
    /// reason (the debugger stops the VM; the threads park, then call
    /// [`clear_kicked`]).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn kick(&self) {
        self.lock().kick_all();
    }

    /// One vCPU ended the VM (it exited or crashed): kick every other vCPU
    /// thread out of KVM_RUN; their loops see [`StopHandle::ended`].
    pub(crate) fn end(&self) {
        let mut g = self.lock();
        g.ended = true;
        g.kick_all();
    }

    /// Whether a vCPU ended the VM ([`StopHandle::end`]).
    pub(crate) fn ended(&self) -> bool {
        self.lock().ended
    }

    /// Whether a vCPU is attached (running).
    pub fn is_attached(&self) -> bool {
        !self.lock().threads.is_empty()
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

    /// Forget the stop reason (a sandbox restored to a snapshot runs again).
    pub(crate) fn clear(&self) {
        self.lock().reason = None;
    }

    /// Why the guest was stopped, if it was: a reason given to this handle,
    /// or a SIGINT/SIGTERM the process received.
    pub fn reason(&self) -> Option<StopReason> {
        self.lock()
            .reason
            .or_else(|| signalled().map(StopReason::Signal))
    }
}

/// A vCPU attached to a [`StopHandle`]; dropping it detaches.
pub struct Attached<'a> {
    handle: &'a StopHandle,
    thread: usize,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.handle.lock().threads.retain(|&t| t != self.thread);
        // No kick reaches this thread any more; later writes (the output a
        // stopped guest left behind) may block again, with their own bound.
        IMMEDIATE_EXIT.with(|c| c.set(0));
        KICKED.with(|k| k.set(false));
    }
}

/// Stops the guest with [`StopReason::Timeout`] once `limit` passes.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Start the watchdog: after `limit` (None: never) it stops the run through `handle`.
    pub fn start(limit: Option<Duration>, handle: &StopHandle) -> Result<Watchdog> {
        let Some(limit) = limit else {
            return Ok(Watchdog {
                done: None,
                thread: None,
            });
        };
        let (tx, rx) = mpsc::channel::<()>();
        let handle = handle.clone();
        let _quiet = quiet();
        let thread = std::thread::Builder::new()
            .name("vessel-watchdog".into())
            .stack_size(64 << 10)
            .spawn(move || {
                crate::seccomp::enter(crate::seccomp::Role::Timer);
                if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                    handle.stop_until_detached(StopReason::Timeout, &rx);
                }
            })
            .map_err(Error::thread("the watchdog thread"))?;
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
