//! Threads on the VM's vCPUs: [`spawn`] a closure, [`JoinHandle::join`] its
//! result, and [`parallel_for`] for data-parallel kernels.
//!
//! Every vCPU but vCPU 0 (which runs `main`) serves one shared run queue:
//! it takes the oldest queued closure, runs it to completion on its own
//! stack, and halts in the Wait hypercall when the queue is empty (no
//! spinning); [`spawn`] queues a closure and wakes the halted vCPUs (an IPI
//! on x86_64, the launcher's wake-up on aarch64). A thread is not
//! preempted: it keeps its vCPU until it returns, and blocking on a
//! [`crate::sync::Mutex`] or [`crate::sync::Condvar`] halts that vCPU.
//! A thread waiting in [`JoinHandle::join`] or [`parallel_for`] runs queued
//! closures itself meanwhile, so with one vCPU (`--cpus 1`) everything still
//! runs, on vCPU 0, and a join never waits for a closure no vCPU is free
//! to start.
//!
//! The async executor ([`crate::task`]) and async page faults stay on
//! vCPU 0; a thread that touches a lazy page the host has not fetched yet
//! waits for it (its vCPU stalls, the others go on).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex as SpinLock;

use crate::futex;

type Job = Box<dyn FnOnce() + Send>;

/// Closures waiting for a vCPU.
static QUEUE: SpinLock<VecDeque<Job>> = SpinLock::new(VecDeque::new());
/// Bumped whenever a closure is queued: the word idle vCPUs watch.
static QUEUED: AtomicU64 = AtomicU64::new(0);
/// 1 once vCPU 0 has booted the runtime (heap, BootInfo).
static ONLINE: AtomicU64 = AtomicU64::new(0);
/// How many vCPUs are serving the run queue (vCPU 0 not counted).
static SERVING: AtomicU64 = AtomicU64::new(0);

/// vCPU 0 has set up the runtime: release the other vCPUs.
pub(crate) fn online() {
    ONLINE.store(1, Ordering::SeqCst);
    futex::wake_all();
}

/// Every vCPU but vCPU 0 ends up here at boot and never leaves.
pub(crate) fn secondary_main(b: &vessel_abi::BootInfo) -> ! {
    while ONLINE.load(Ordering::SeqCst) == 0 {
        futex::wait(&ONLINE, 0, u64::MAX);
    }
    crate::arch::init(b);
    SERVING.fetch_add(1, Ordering::SeqCst);
    loop {
        let seen = QUEUED.load(Ordering::SeqCst);
        if !run_one() {
            futex::wait(&QUEUED, seen, u64::MAX);
        }
    }
}

/// How many vCPUs are running a closure now.
static RUNNING: AtomicU64 = AtomicU64::new(0);

/// Run the oldest queued closure, if there is one.
fn run_one() -> bool {
    // Counted as running under the queue's lock, with the pop, so a
    // closure is always either queued or running to [`others_busy`].
    let job = {
        let mut q = QUEUE.lock();
        let job = q.pop_front();
        if job.is_some() {
            RUNNING.fetch_add(1, Ordering::SeqCst);
        }
        job
    };
    match job {
        Some(job) => {
            job();
            RUNNING.fetch_sub(1, Ordering::SeqCst);
            true
        }
        None => false,
    }
}

/// Whether a closure is queued or running on a vCPU (the caller, idle
/// when it asks, runs none).
pub(crate) fn others_busy() -> bool {
    let q = QUEUE.lock();
    !q.is_empty() || RUNNING.load(Ordering::SeqCst) > 0
}

fn queue(job: Job) {
    QUEUE.lock().push_back(job);
    QUEUED.fetch_add(1, Ordering::SeqCst);
    futex::wake_all();
}

/// Until `done` is non-zero, run queued closures, or halt until one is
/// queued or `done` changes.
fn help_until(done: &AtomicU64) {
    loop {
        if done.load(Ordering::SeqCst) != 0 {
            return;
        }
        let seen = QUEUED.load(Ordering::SeqCst);
        if run_one() {
            continue;
        }
        // A new closure or `done` ends the wait.
        futex::wait_either(done, 0, &QUEUED, seen, u64::MAX);
    }
}

/// The vCPUs of this VM (`--cpus`): how many threads can run at once.
pub fn available_parallelism() -> usize {
    crate::boot::info().vcpu_count as usize
}

/// The id of the vCPU the caller runs on (0: the one running `main`).
pub fn current_vcpu() -> u32 {
    crate::arch::vcpu_id()
}

/// How many vCPUs besides vCPU 0 have started serving threads.
pub fn serving() -> usize {
    SERVING.load(Ordering::SeqCst) as usize
}

struct Packet<T> {
    done: AtomicU64,
    value: SpinLock<Option<T>>,
}

/// Owns a spawned thread's result; [`join`](JoinHandle::join) waits for it.
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    /// Wait for the thread to finish and return what its closure returned.
    pub fn join(self) -> T {
        help_until(&self.packet.done);
        match self.packet.value.lock().take() {
            Some(v) => v,
            None => crate::process::abort("thread: joined a thread without a result"),
        }
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.packet.done.load(Ordering::SeqCst) != 0
    }
}

/// Run `f` on another vCPU (the first idle one; or, with none free, on
/// whichever thread joins it first). A panic in `f` ends the VM (exit 101).
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let packet = Arc::new(Packet {
        done: AtomicU64::new(0),
        value: SpinLock::new(None),
    });
    let p = packet.clone();
    queue(Box::new(move || {
        let v = f();
        *p.value.lock() = Some(v);
        p.done.store(1, Ordering::SeqCst);
        futex::wake_all();
    }));
    JoinHandle { packet }
}

/// Call `f` on contiguous pieces of `range`, one piece per vCPU, in
/// parallel, and return when every call has returned. `f` may borrow from
/// the caller's stack (nothing outlives this call).
pub fn parallel_for<F>(range: Range<usize>, f: F)
where
    F: Fn(Range<usize>) + Sync,
{
    let len = range.end.saturating_sub(range.start);
    let pieces = available_parallelism().clamp(1, len.max(1));
    let each = len.div_ceil(pieces);
    let piece = |i: usize| {
        let lo = range.start + (i * each).min(len);
        lo..range.start + ((i + 1) * each).min(len)
    };
    let left = Arc::new(AtomicU64::new(pieces as u64 - 1));
    let done = Arc::new(AtomicU64::new(u64::from(pieces == 1)));
    let f: &(dyn Fn(Range<usize>) + Sync) = &f;
    // SAFETY: the closures below use `f` only before they decrement `left`,
    // and this function does not return before `left` reaches 0 (`done`);
    // a panic in any of them ends the VM instead of unwinding. So `f`
    // outlives every use, as with scoped threads.
    let f: &'static (dyn Fn(Range<usize>) + Sync) = unsafe { core::mem::transmute(f) };
    for i in 1..pieces {
        let (r, left, done) = (piece(i), left.clone(), done.clone());
        queue(Box::new(move || {
            f(r);
            if left.fetch_sub(1, Ordering::SeqCst) == 1 {
                done.store(1, Ordering::SeqCst);
                futex::wake_all();
            }
        }));
    }
    f(piece(0));
    help_until(&done);
}
