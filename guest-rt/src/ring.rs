//! The guest side of the I/O ring ([`vessel_abi::ring`]).
//!
//! Requests are written to the submission queue and cost no exit; the
//! doorbell (RingEnter) is rung only when the runtime needs a result: a
//! blocking call waiting for its own completion, a full queue, or the
//! executor with nothing runnable. So a batch of requests made by many
//! tasks costs one exit. Completions are drained at every scheduling point
//! without an exit and wake the task waiting for each.
//!
//! The launcher keeps one ring per vCPU; guest-rt registers one, for
//! vCPU 0, where the executor runs: file calls from threads on other
//! vCPUs fail with `NotSupported` in this version (no ring state is shared
//! between vCPUs, so nothing races).
//!
//! Async requests own their buffer until the completion arrives, even if
//! the future waiting for it is dropped, so the launcher never writes into
//! memory the app reuses.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{Context, Poll, Waker};

use vessel_abi::ring::{self, Cqe, RingHeader, Sqe};
use vessel_abi::{Call, Errno};

use crate::cell::Global;

/// Entries per queue.
pub const ENTRIES: u32 = 256;
const N: usize = ENTRIES as usize;

#[repr(C, align(64))]
struct RingMem {
    header: RingHeader,
    sq: [Sqe; N],
    cq: [Cqe; N],
}

const _: () = {
    assert!(ring::entries_ok(ENTRIES));
    assert!(core::mem::offset_of!(RingMem, sq) as u64 == ring::SQ_OFFSET);
    assert!(core::mem::offset_of!(RingMem, cq) as u64 == ring::cq_offset(ENTRIES));
    assert!(core::mem::size_of::<RingMem>() as u64 == ring::ring_bytes(ENTRIES));
};

/// The ring lives in the image's zeroed data; the launcher reads and writes it.
static mut RING: RingMem = RingMem {
    header: RingHeader {
        sq_head: 0,
        sq_tail: 0,
        cq_head: 0,
        cq_tail: 0,
        in_flight: 0,
        reserved: [0; 11],
    },
    sq: [Sqe {
        op: 0,
        flags: 0,
        user_data: 0,
        handle: 0,
        offset: 0,
        a: vessel_abi::GuestSlice { addr: 0, len: 0 },
        b: vessel_abi::GuestSlice { addr: 0, len: 0 },
    }; N],
    cq: [Cqe {
        user_data: 0,
        result: 0,
    }; N],
};

/// What happens to a request's completion.
enum Waiting {
    /// Nobody waits yet (or a blocking caller will look).
    Nobody,
    /// A task waits; wake it.
    Task(Waker),
    /// Nobody will look (a close from Drop): drop the result.
    Detached,
}

struct State {
    ready: bool,
    next_id: u64,
    waiting: BTreeMap<u64, Waiting>,
    done: BTreeMap<u64, i64>,
    /// Buffers owned by async requests in flight.
    owned: BTreeMap<u64, Vec<u8>>,
    enters: u64,
}

static STATE: Global<State> =
    Global::new("guest-rt: I/O ring state re-entered while in use", || {
        State {
            ready: false,
            next_id: 1,
            waiting: BTreeMap::new(),
            done: BTreeMap::new(),
            owned: BTreeMap::new(),
            enters: 0,
        }
    });

fn mem() -> *mut RingMem {
    &raw mut RING
}

/// The header's u32 at byte offset `off`, shared with the launcher.
fn field(off: usize) -> &'static AtomicU32 {
    // SAFETY: `off` is the offset of an aligned u32 field of the static
    // ring's header (callers pass `offset_of!`); the static lives forever
    // and the launcher accesses these fields only with atomic loads/stores.
    unsafe { AtomicU32::from_ptr(mem().cast::<u8>().add(off).cast::<u32>()) }
}

fn sq_head() -> &'static AtomicU32 {
    field(core::mem::offset_of!(RingHeader, sq_head))
}
fn sq_tail() -> &'static AtomicU32 {
    field(core::mem::offset_of!(RingHeader, sq_tail))
}
fn cq_head() -> &'static AtomicU32 {
    field(core::mem::offset_of!(RingHeader, cq_head))
}
fn cq_tail() -> &'static AtomicU32 {
    field(core::mem::offset_of!(RingHeader, cq_tail))
}
fn in_flight() -> &'static AtomicU32 {
    field(core::mem::offset_of!(RingHeader, in_flight))
}

/// The ring belongs to vCPU 0.
fn on_ring_vcpu() -> bool {
    crate::arch::vcpu_id() == 0
}

/// Register the ring once (on first use). Err: the launcher refused it.
fn ensure_ready() -> Result<(), Errno> {
    if STATE.with(|s| s.ready) {
        return Ok(());
    }
    crate::hypercall::call(Call::RingSetup {
        ring: mem() as u64,
        entries: ENTRIES,
    })?;
    STATE.with(|s| s.ready = true);
    Ok(())
}

/// Ring the doorbell: hand over new SQEs, wait for `min` completions.
fn enter(min: u32, timeout_ns: u64) {
    STATE.with(|s| s.enters += 1);
    let _ = crate::hypercall::call(Call::RingEnter {
        min_complete: min,
        timeout_ns,
    });
}

/// Put `sqe` (its `user_data` set here) in the queue; rings the doorbell
/// only if the queue is full. Returns its id.
fn push(mut sqe: Sqe, waiting: Waiting, owned: Option<Vec<u8>>) -> Result<u64, Errno> {
    if !on_ring_vcpu() {
        return Err(Errno::NotSupported);
    }
    ensure_ready()?;
    let id = STATE.with(|s| {
        let id = s.next_id;
        s.next_id += 1;
        s.waiting.insert(id, waiting);
        if let Some(b) = owned {
            s.owned.insert(id, b);
        }
        id
    });
    sqe.user_data = id;
    let tail = sq_tail().load(Ordering::Relaxed);
    while tail.wrapping_sub(sq_head().load(Ordering::Acquire)) >= ENTRIES {
        // Full: let half the ring complete, so the next doorbell comes
        // after another half ring of requests, not after one.
        enter(ENTRIES / 2, u64::MAX);
        drain();
    }
    let slot = (tail & (ENTRIES - 1)) as usize;
    // SAFETY: the slot is between the launcher's sq_head and our tail, so
    // the launcher does not read it until the tail below is published.
    unsafe { (&raw mut (*mem()).sq[slot]).write_volatile(sqe) };
    sq_tail().store(tail.wrapping_add(1), Ordering::Release);
    Ok(id)
}

/// Move every posted completion to its waiter; no exit. Called at every
/// scheduling point and while a blocking call waits.
pub(crate) fn drain() {
    if !on_ring_vcpu() {
        return;
    }
    let mut wake: Vec<Waker> = Vec::new();
    let end = cq_tail().load(Ordering::Acquire);
    let mut head = cq_head().load(Ordering::Relaxed);
    while head != end {
        let slot = (head & (ENTRIES - 1)) as usize;
        // SAFETY: entries before cq_tail (acquired) are complete and the
        // launcher does not rewrite them until cq_head passes them.
        let c = unsafe { (&raw const (*mem()).cq[slot]).read_volatile() };
        head = head.wrapping_add(1);
        STATE.with(|s| match s.waiting.remove(&c.user_data) {
            Some(Waiting::Detached) => {
                s.owned.remove(&c.user_data);
            }
            Some(w) => {
                s.done.insert(c.user_data, c.result);
                if let Waiting::Task(t) = w {
                    wake.push(t);
                }
            }
            None => {} // not ours: a launcher bug or a stale id; ignore
        });
    }
    cq_head().store(head, Ordering::Release);
    for w in wake {
        w.wake();
    }
}

/// Whether requests are queued or in flight (the executor then waits in
/// RingEnter rather than halting).
pub(crate) fn busy() -> bool {
    on_ring_vcpu()
        && STATE.with(|s| s.ready && s.waiting.values().any(|w| !matches!(w, Waiting::Detached)))
}

/// The executor has nothing runnable: hand over the queue and wait for
/// one completion or `timeout_ns`.
pub(crate) fn idle(timeout_ns: u64) {
    enter(1, timeout_ns);
    drain();
}

fn result(r: i64) -> Result<u64, Errno> {
    if r >= 0 {
        Ok(r.cast_unsigned())
    } else {
        Err(Errno::from_result(r).unwrap_or(Errno::Io))
    }
}

/// Submit `sqe` and wait for its completion (the blocking form). Buffers
/// it names only need to live for this call.
pub fn call(sqe: Sqe) -> Result<u64, Errno> {
    let id = push(sqe, Waiting::Nobody, None)?;
    loop {
        if let Some(r) = STATE.with(|s| s.done.remove(&id)) {
            return result(r);
        }
        enter(1, u64::MAX);
        drain();
    }
}

/// Submit `sqe` and forget it (its result is dropped).
pub fn detach(sqe: Sqe) {
    let _ = push(sqe, Waiting::Detached, None);
}

/// Submit `sqe`, whose buffer is `buf` (kept alive by the ring until the
/// completion arrives); resolves to the result and the buffer.
pub fn submit_owned(sqe: Sqe, buf: Vec<u8>) -> Completion {
    match push(sqe, Waiting::Nobody, Some(buf)) {
        Ok(id) => Completion { id, failed: None },
        Err(e) => Completion {
            id: 0,
            failed: Some(e),
        },
    }
}

/// Doorbells rung so far (RingEnter calls), for benchmarks.
pub fn enters() -> u64 {
    STATE.with(|s| s.enters)
}

/// A request in flight; resolves to `(result, buffer)`.
pub struct Completion {
    id: u64,
    failed: Option<Errno>,
}

impl Future for Completion {
    type Output = (Result<u64, Errno>, Vec<u8>);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(e) = self.failed {
            return Poll::Ready((Err(e), Vec::new()));
        }
        let id = self.id;
        STATE.with(|s| match s.done.remove(&id) {
            Some(r) => Poll::Ready((result(r), s.owned.remove(&id).unwrap_or_default())),
            None => {
                s.waiting.insert(id, Waiting::Task(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

impl Drop for Completion {
    /// A dropped, unfinished request: its result and buffer go when it completes.
    fn drop(&mut self) {
        let id = self.id;
        STATE.with(|s| {
            if s.done.remove(&id).is_some() {
                s.owned.remove(&id);
            } else if let Some(w) = s.waiting.get_mut(&id) {
                *w = Waiting::Detached;
            }
        });
    }
}

/// Hooks for tests of the launcher's ring checks; apps never need them.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Guest address of the ring (registering it first).
    pub fn base() -> Result<u64, Errno> {
        ensure_ready()?;
        Ok(mem() as u64)
    }

    /// Hand over everything queued and consume every completion, until
    /// the launcher has nothing in flight.
    pub fn settle() {
        loop {
            enter(0, 0);
            drain();
            if in_flight().load(Ordering::Acquire) == 0
                && sq_tail().load(Ordering::Relaxed) == sq_head().load(Ordering::Acquire)
            {
                drain();
                return;
            }
            enter(1, 1_000_000);
        }
    }

    /// Guest address of SQE slot `i`.
    pub fn sqe_slot(i: usize) -> u64 {
        // SAFETY: only the address of a slot of the static is taken.
        unsafe { &raw mut (*mem()).sq[i % N] as u64 }
    }

    /// Ring the doorbell with `sq_tail` and `cq_head` moved by the given
    /// amounts (an index out of range or going backwards), then put them
    /// back. Returns RingEnter's answer.
    pub fn enter_with_skew(sq_skew: u32, cq_skew: u32) -> Result<(u64, u64), Errno> {
        ensure_ready()?;
        settle();
        let (st, ch) = (
            sq_tail().load(Ordering::Relaxed),
            cq_head().load(Ordering::Relaxed),
        );
        sq_tail().store(st.wrapping_add(sq_skew), Ordering::Release);
        cq_head().store(ch.wrapping_add(cq_skew), Ordering::Release);
        let r = crate::hypercall::call(Call::RingEnter {
            min_complete: 0,
            timeout_ns: 0,
        });
        sq_tail().store(st, Ordering::Release);
        cq_head().store(ch, Ordering::Release);
        r
    }
}
