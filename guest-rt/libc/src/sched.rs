//! Which std threads run, wait or have no vCPU yet, so that a program
//! that spawned more threads than the VM's vCPUs can run stops with a
//! clear message instead of hanging.
//!
//! There is no preemption: a std thread keeps its vCPU until it returns,
//! and one spawned while every vCPU is taken waits in the run queue (a
//! thread that joins it runs it). If then every running thread waits on a
//! futex with no timeout (a lock, a condition variable, a channel) and
//! nothing wakes any of them for [`STUCK_NS`], nothing ever will: the
//! thread that would is the one without a vCPU. [`wait_untimed`] notices
//! and ends the VM naming the `--cpus` that would have run them all.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use rust_alloc::string::String;

/// Threads created, started on a vCPU, returned (the main thread is none).
static CREATED: AtomicU64 = AtomicU64::new(0);
static STARTED: AtomicU64 = AtomicU64::new(0);
static FINISHED: AtomicU64 = AtomicU64::new(0);
/// Threads (the main one included) in an untimed futex wait.
static WAITING: AtomicU64 = AtomicU64::new(0);
/// Bumped by every futex wake-up and thread start or end.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// How long an untimed wait halts before it looks again.
pub const SLICE_NS: u64 = 250_000_000;
/// How long every running thread must wait, none woken, with threads
/// left without a vCPU, before the VM stops.
pub const STUCK_NS: u64 = 1_000_000_000;

/// `pthread_create` made a thread (queued for a vCPU).
pub fn created() {
    CREATED.fetch_add(1, Ordering::SeqCst);
}

/// A thread starts on a vCPU.
pub fn started() {
    STARTED.fetch_add(1, Ordering::SeqCst);
    progress();
}

/// A thread's start routine returned.
pub fn finished() {
    FINISHED.fetch_add(1, Ordering::SeqCst);
    progress();
}

/// Something may have woken a waiter.
pub fn progress() {
    PROGRESS.fetch_add(1, Ordering::SeqCst);
}

/// Spawned threads that no vCPU has started, when every running thread
/// waits (0 otherwise).
fn starved() -> u64 {
    let started = STARTED.load(Ordering::SeqCst);
    let queued = CREATED.load(Ordering::SeqCst).saturating_sub(started);
    let running = 1 + started.saturating_sub(FINISHED.load(Ordering::SeqCst));
    if queued > 0 && WAITING.load(Ordering::SeqCst) >= running {
        queued
    } else {
        0
    }
}

/// End the VM: `queued` threads can never start.
fn stuck(queued: u64) -> ! {
    let live = 1 + CREATED
        .load(Ordering::SeqCst)
        .saturating_sub(FINISHED.load(Ordering::SeqCst));
    let mut msg = String::new();
    let _ = write!(
        msg,
        "std program: every running thread waits and {queued} spawned thread(s) have no \
         vCPU to start on (threads are not preempted: each needs a vCPU of its own); \
         run with --cpus {} or more (this VM has {})",
        live.max(2),
        guest_rt::env::vcpu_count()
    );
    guest_rt::process::abort(&msg)
}

/// Wait with no timeout: `halt(ns)` halts for at most `ns` and returns
/// whether the wait is over (the futex word changed). Stops the VM if the
/// program can no longer make progress (see the module docs).
pub fn wait_untimed(mut halt: impl FnMut(u64) -> bool) {
    WAITING.fetch_add(1, Ordering::SeqCst);
    let mut quiet = 0;
    loop {
        let before = PROGRESS.load(Ordering::SeqCst);
        if halt(SLICE_NS) {
            break;
        }
        if PROGRESS.load(Ordering::SeqCst) != before || starved() == 0 {
            quiet = 0;
            continue;
        }
        quiet += SLICE_NS;
        if quiet >= STUCK_NS {
            stuck(starved().max(1));
        }
    }
    WAITING.fetch_sub(1, Ordering::SeqCst);
}
