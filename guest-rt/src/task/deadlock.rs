//! The deadlock report: when every task waits and nothing can ever wake
//! one, the runtime says what each task waits on and ends the VM with
//! [`vessel_abi::exit::DEADLOCK`] instead of halting forever.
//!
//! "Nothing can wake one" means: no task is runnable, no timer is set
//! (the caller checks), no task is parked on an async page fault, no I/O
//! is in flight on the ring, no closure is queued for a thread and no
//! other vCPU is running one. Wakers are only called by tasks, timers,
//! page-ready tokens and I/O completions on vCPU 0 (the executor is not for
//! other vCPUs), so then none ever will be.

use alloc::vec::Vec;

use super::{with, State};

/// What a task waits on, as far as the runtime knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A future the runtime does not know (the app's own).
    Unknown,
    /// `Receiver::recv` on a channel that still has senders.
    Channel,
    /// The `JoinHandle` of this task.
    Task(u64),
}

/// Note what the running task (if any) is about to wait on.
pub(super) fn waiting_on(w: Wait) {
    with(|e| {
        if let Some(t) = e.current.and_then(|id| e.tasks.get_mut(&id)) {
            t.waits = w;
        }
    })
}

/// How long the idle executor waits before it looks again while a thread
/// runs on another vCPU (which may wake nothing when it ends).
pub(super) const THREAD_RECHECK_NS: u64 = 10_000_000;

/// Called when nothing is runnable and no timer is set: report and end
/// the VM if nothing else can wake a task either. Returns whether a thread
/// is queued or running (then the caller looks again after
/// [`THREAD_RECHECK_NS`]).
pub(super) fn check() -> bool {
    if crate::thread::others_busy() {
        return true;
    }
    let parked = with(|e| !e.parked.is_empty());
    if parked || crate::ring::busy() {
        return false;
    }
    let waits: Vec<(u64, Wait)> = with(|e| {
        e.tasks
            .iter()
            .filter(|(_, t)| t.state == State::Idle)
            .map(|(id, t)| (*id, t.waits))
            .collect()
    });
    crate::eprintln!(
        "guest-rt: deadlock: all {} task(s) wait and nothing can wake one (no timer, page fault, I/O or thread pending):",
        waits.len()
    );
    for (id, w) in waits {
        match w {
            Wait::Channel => {
                crate::eprintln!("  task {id} waits on a channel receive (no value will come)")
            }
            Wait::Task(t) => crate::eprintln!("  task {id} waits on task {t} (its JoinHandle)"),
            Wait::Unknown => {
                crate::eprintln!("  task {id} waits on a future of its own that nothing will wake")
            }
        }
    }
    crate::process::exit(vessel_abi::exit::DEADLOCK)
}
