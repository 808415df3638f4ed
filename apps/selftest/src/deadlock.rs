//! The executor's deadlock report (`selftest deadlock-*`): tasks that wait
//! on things nothing will ever provide, and ones that only look stuck.
//!
//! - `deadlock-channel`: main awaits a task that awaits a channel whose
//!   sender main holds (exit 70, the report names both waits).
//! - `deadlock-own`: a future that never registers a waker (exit 70).
//! - `deadlock-timer`: a task sleeps 50 ms, then sends: no report, exit 0.
//! - `deadlock-thread`: a task waits on a future of its own while a thread
//!   runs 200 ms on another vCPU: no report until the thread has finished.

use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;
use core::time::Duration;

use guest_rt::{println, task, thread};

/// Run `mode` if it is one of this file's; its exit code.
pub fn run(mode: &str) -> Option<i32> {
    match mode {
        "deadlock-channel" => Some(task::block_on(channel())),
        "deadlock-own" => Some(task::block_on(async {
            poll_fn(|_| Poll::<()>::Pending).await;
            0
        })),
        "deadlock-timer" => Some(task::block_on(timer())),
        "deadlock-thread" => Some(task::block_on(with_thread())),
        _ => None,
    }
}

async fn channel() -> i32 {
    let (tx, mut rx) = task::channel::<u32>();
    let waiter = task::spawn(async move { rx.recv().await });
    println!("waiting");
    let got = waiter.await;
    drop(tx);
    println!("got {got:?}");
    0
}

async fn timer() -> i32 {
    let (tx, mut rx) = task::channel::<u32>();
    task::spawn(async move {
        task::sleep(Duration::from_millis(50)).await;
        tx.send(7);
    });
    let got = rx.recv().await;
    println!("received {got:?}");
    0
}

static THREAD_DONE: AtomicBool = AtomicBool::new(false);

async fn with_thread() -> i32 {
    let _t = thread::spawn(|| {
        let t = guest_rt::time::Instant::now();
        while t.elapsed() < Duration::from_millis(200) {
            core::hint::spin_loop();
        }
        THREAD_DONE.store(true, Ordering::SeqCst);
        println!("thread done on vcpu {}", thread::current_vcpu());
    });
    // Pending without a waker: only the deadlock check ends this.
    poll_fn(|_| Poll::<()>::Pending).await;
    0
}
