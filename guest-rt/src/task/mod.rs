//! A single-vCPU task executor: `spawn`, `JoinHandle`, `yield_now`,
//! `sleep`, `channel`, `block_on` (and `entry!(async main)`).
//!
//! Each task is a future polled **on its own stack** (heap-allocated), so a
//! task can be suspended anywhere, not only at `.await`: when it touches a
//! lazy page that is not there yet, the async-PF upcall parks it mid-poll
//! (`park`) and the scheduler runs another task; "page ready" makes it
//! runnable again and it resumes inside the same poll, retrying the access.
//! Waker-driven suspension works as usual: `Pending` returns to the
//! scheduler until the task's waker is called.
//!
//! The scheduler runs on the vCPU's boot stack. With nothing runnable it
//! halts the vCPU with the Wait hypercall (futex-like on the ready counter,
//! with a timeout for the earliest `sleep`), so there is no busy spin.
//! No preemption: a task runs until it awaits something pending, finishes,
//! or faults on a lazy page. Nothing here is `Send`: one vCPU.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use core::time::Duration;

use vessel_abi::apf::WAKE_ALL;
use vessel_abi::Call;

use crate::cell::Global;

mod channel;
mod deadlock;

pub use channel::{channel, Receiver, Sender};
pub use deadlock::Wait;

/// Stack size of each task (heap memory, no guard page: keep frames small).
pub const STACK_SIZE: usize = 128 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Queued,
    Running,
    /// Returned Pending; waiting for its waker.
    Idle,
    /// Suspended mid-poll on an async page fault with this token.
    Parked(u32),
    Done,
}

struct Task {
    fut: Option<Pin<Box<dyn Future<Output = ()>>>>,
    _stack: Vec<u64>,
    sp: u64,
    state: State,
    notified: bool,
    /// What the task's latest `Pending` waits on (for the deadlock report).
    waits: Wait,
}

struct Exec {
    tasks: BTreeMap<u64, Box<Task>>,
    next_id: u64,
    runq: VecDeque<u64>,
    current: Option<u64>,
    sched_sp: u64,
    parked: BTreeMap<u32, u64>,
    /// (deadline in cycles, waker)
    timers: Vec<(u64, Waker)>,
}

impl Exec {
    fn new() -> Exec {
        Exec {
            tasks: BTreeMap::new(),
            next_id: 1,
            runq: VecDeque::new(),
            current: None,
            sched_sp: 0,
            parked: BTreeMap::new(),
            timers: Vec::new(),
        }
    }
}

/// One vCPU, no preemption; interrupt handlers never touch it.
static EXEC: Global<Exec> = Global::new(
    "guest-rt: executor state re-entered while in use (a waker or drop inside the scheduler?)",
    Exec::new,
);

/// Run `f` on the executor state. Never switch stacks or call user code
/// (futures, wakers' targets outside this module) from inside `f`: a
/// nested `with` aborts the app.
fn with<R>(f: impl FnOnce(&mut Exec) -> R) -> R {
    EXEC.with(f)
}

// --- wakers: the data pointer is the task id ---

fn wake_id(id: u64) {
    with(|e| {
        if let Some(t) = e.tasks.get_mut(&id) {
            match t.state {
                State::Idle => {
                    t.state = State::Queued;
                    e.runq.push_back(id);
                }
                State::Running | State::Parked(_) => t.notified = true,
                State::Queued | State::Done => {}
            }
        }
    })
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(
    |p| RawWaker::new(p, &VTABLE),
    |p| wake_id(p as u64),
    |p| wake_id(p as u64),
    |_| {},
);

fn waker(id: u64) -> Waker {
    // SAFETY: the vtable functions treat the pointer as a plain integer id.
    unsafe { Waker::from_raw(RawWaker::new(id as *const (), &VTABLE)) }
}

// --- spawning and joining ---

struct JoinInner<T> {
    value: Option<T>,
    waiter: Option<Waker>,
}

/// Resolves to the spawned task's output.
pub struct JoinHandle<T> {
    inner: Rc<RefCell<JoinInner<T>>>,
    /// The task's id.
    id: u64,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut j = self.inner.borrow_mut();
        match j.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                j.waiter = Some(cx.waker().clone());
                deadlock::waiting_on(Wait::Task(self.id));
                Poll::Pending
            }
        }
    }
}

impl<T> JoinHandle<T> {
    /// True once the task has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.borrow().value.is_some()
    }
}

/// Start `fut` as a new task with its own stack.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let inner = Rc::new(RefCell::new(JoinInner {
        value: None,
        waiter: None,
    }));
    let out = inner.clone();
    let wrapped = async move {
        let v = fut.await;
        let w = {
            let mut j = out.borrow_mut();
            j.value = Some(v);
            j.waiter.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    };
    let mut stack = alloc::vec![0u64; STACK_SIZE / 8];
    let id = with(|e| {
        let id = e.next_id;
        e.next_id += 1;
        let sp = crate::arch::init_stack(&mut stack, id);
        e.tasks.insert(
            id,
            Box::new(Task {
                fut: Some(Box::pin(wrapped)),
                _stack: stack,
                sp,
                state: State::Queued,
                notified: false,
                waits: Wait::Unknown,
            }),
        );
        e.runq.push_back(id);
        id
    });
    JoinHandle { inner, id }
}

/// Switch from task `id` back to the scheduler.
fn to_scheduler(id: u64) {
    let (save, to) = with(|e| {
        let t = e.tasks.get_mut(&id).expect("running task exists");
        (&raw mut t.sp, e.sched_sp)
    });
    // SAFETY: `save` points into the task's Box, alive until the scheduler
    // frees it after Done (and a Done task is never resumed); `to` is the
    // scheduler's saved stack pointer.
    unsafe { crate::arch::switch(save, to) };
}

/// First function on every task stack (called by the arch trampoline).
pub(crate) extern "C" fn vessel_task_main(id: u64) -> ! {
    let mut fut = with(|e| e.tasks.get_mut(&id).and_then(|t| t.fut.take()))
        .unwrap_or_else(|| crate::process::abort("executor: task started twice"));
    let w = waker(id);
    loop {
        let mut cx = Context::from_waker(&w);
        if fut.as_mut().poll(&mut cx).is_ready() {
            drop(fut);
            with(|e| {
                if let Some(t) = e.tasks.get_mut(&id) {
                    t.state = State::Done;
                }
            });
            to_scheduler(id);
            crate::process::abort("executor: finished task resumed");
        }
        with(|e| {
            let t = e.tasks.get_mut(&id).expect("task exists");
            if t.notified {
                t.notified = false;
                t.state = State::Queued;
                e.runq.push_back(id);
            } else {
                t.state = State::Idle;
            }
        });
        to_scheduler(id);
    }
}

/// Park the running task on an async-PF token until it is ready. Returns
/// false (doing nothing) when no task is running.
pub(crate) fn park(token: u32) -> bool {
    let Some(id) = with(|e| {
        let id = e.current?;
        let t = e.tasks.get_mut(&id)?;
        t.state = State::Parked(token);
        e.parked.insert(token, id);
        Some(id)
    }) else {
        return false;
    };
    to_scheduler(id);
    true
}

/// A ready token (or WAKE_ALL) arrived: make the parked task(s) runnable.
pub(crate) fn on_ready(token: u32) {
    with(|e| {
        let ids: Vec<u64> = if token == WAKE_ALL {
            core::mem::take(&mut e.parked).into_values().collect()
        } else {
            e.parked.remove(&token).into_iter().collect()
        };
        for id in ids {
            if let Some(t) = e.tasks.get_mut(&id) {
                if matches!(t.state, State::Parked(_)) {
                    t.state = State::Queued;
                    e.runq.push_back(id);
                }
            }
        }
    })
}

fn cycles_per_ns() -> (u64, u64) {
    // (khz, 1_000_000): cycles = ns * khz / 1e6
    (crate::boot::info().counter_khz.max(1), 1_000_000)
}

fn fire_timers(now: u64) -> Option<u64> {
    let due: Vec<Waker> = with(|e| {
        let mut due = Vec::new();
        e.timers.retain(|(d, w)| {
            if *d <= now {
                due.push(w.clone());
                false
            } else {
                true
            }
        });
        due
    });
    for w in due {
        w.wake();
    }
    with(|e| e.timers.iter().map(|(d, _)| *d).min())
}

/// Run `fut` (as a task) and every task it spawns until `fut` completes.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    if with(|e| e.current.is_some()) {
        crate::process::abort("block_on called from inside a task");
    }
    let main = spawn(fut);
    loop {
        crate::apf::drain(on_ready);
        crate::ring::drain();
        let next_timer = fire_timers(crate::arch::cycles());
        if let Some(v) = main.inner.borrow_mut().value.take() {
            return v;
        }
        if let Some(id) = with(|e| e.runq.pop_front()) {
            run(id);
            continue;
        }
        // Nothing runnable: halt until a ready token, a wake-up or a timer.
        let seen = crate::apf::head();
        let mut timeout_ns = match next_timer {
            Some(d) => {
                let (khz, div) = cycles_per_ns();
                let left = d.saturating_sub(crate::arch::cycles());
                if left == 0 {
                    continue;
                }
                ((u128::from(left) * u128::from(div)) / u128::from(khz)).max(1) as u64
            }
            None => u64::MAX,
        };
        // Idle anyway: show what the tasks printed so far.
        crate::console::flush_stdout();
        if next_timer.is_none() && deadlock::check() {
            timeout_ns = deadlock::THREAD_RECHECK_NS;
        }
        if crate::ring::busy() {
            // I/O in flight: wait in the ring's doorbell (it hands over
            // what was queued and returns at the first completion).
            // Parked async-PF tasks are looked at after at most 1 ms.
            let parked = with(|e| !e.parked.is_empty());
            crate::ring::idle(if parked {
                timeout_ns.min(1_000_000)
            } else {
                timeout_ns
            });
            continue;
        }
        let _ = crate::hypercall::call(Call::Wait {
            timeout_ns,
            watch: crate::apf::head_addr(),
            expect: seen,
        });
    }
}

fn run(id: u64) {
    let Some((save, to)) = with(|e| {
        let sched = &raw mut e.sched_sp;
        let t = e.tasks.get_mut(&id)?;
        if t.state != State::Queued {
            return None;
        }
        t.state = State::Running;
        t.waits = Wait::Unknown;
        let sp = t.sp;
        e.current = Some(id);
        Some((sched, sp))
    }) else {
        return;
    };
    // SAFETY: `save` is the executor's sched_sp (static storage); `to` is the
    // task's saved stack pointer, its stack alive in the task's Box.
    unsafe { crate::arch::switch(save, to) };
    let done = with(|e| {
        e.current = None;
        match e.tasks.get(&id) {
            Some(t) if t.state == State::Done => e.tasks.remove(&id),
            _ => None,
        }
    });
    drop(done); // frees the finished task's stack, now that we are off it
}

/// Let other tasks run, then continue.
pub async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Wait at least `d`; other tasks run meanwhile, and with none runnable
/// the vCPU halts until the deadline.
pub async fn sleep(d: Duration) {
    let (khz, div) = cycles_per_ns();
    let deadline = crate::arch::cycles()
        .saturating_add((d.as_nanos() * u128::from(khz) / u128::from(div)) as u64);
    core::future::poll_fn(move |cx| {
        if crate::arch::cycles() >= deadline {
            Poll::Ready(())
        } else {
            let w = cx.waker().clone();
            with(|e| e.timers.push((deadline, w)));
            Poll::Pending
        }
    })
    .await
}
