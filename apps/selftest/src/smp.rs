//! `selftest smp-*` modes: threads on several vCPUs (`--cpus N`).
//!
//! - `smp-join`: one thread per vCPU, each on its own vCPU (a barrier
//!   proves they run at once); prints the vCPUs and, on arm64, the SVE
//!   length RDVL reports on each.
//! - `smp-counter TOTAL`: threads increment one `Mutex<u64>` TOTAL times in
//!   all; prints the final count.
//! - `smp-wake`: a thread halts on a `Condvar` until main notifies it.
//! - `smp-exit CODE`, `smp-panic`, `smp-fault`: a thread on another vCPU
//!   exits, panics or faults while main waits.
//! - `smp-parallel N`: `parallel_for` sums 0..N; prints the sum.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::println;
use guest_rt::sync::{Condvar, Mutex};
use guest_rt::thread;

/// The `smp-*` mode `mode` with argument `arg`, or None if it is not one.
pub fn run(mode: &str, arg: &str) -> Option<i32> {
    Some(match mode {
        "smp-join" => join(),
        "smp-counter" => counter(arg.parse().unwrap_or(1_000_000)),
        "smp-wake" => wake(),
        "smp-exit" => {
            let code = arg.parse().unwrap_or(3);
            on_other_vcpu(move || guest_rt::process::exit(code))
        }
        "smp-panic" => on_other_vcpu(|| panic!("thread on vCPU {} panics", thread::current_vcpu())),
        "smp-fault" => on_other_vcpu(|| {
            // SAFETY: deliberately not safe: the address is unmapped and
            // the store faults, which is the behaviour under test.
            unsafe { (0xdead_0000u64 as *mut u64).write_volatile(1) };
            0
        }),
        "smp-parallel" => parallel(arg.parse().unwrap_or(1 << 20)),
        _ => return None,
    })
}

/// Every vCPU takes part at once: main plus one thread per other vCPU meet
/// at a barrier, which only works if each is on a vCPU of its own.
fn join() -> i32 {
    let n = thread::available_parallelism();
    let arrived = Arc::new(AtomicU64::new(0));
    let meet = move |arrived: &AtomicU64| {
        arrived.fetch_add(1, Ordering::SeqCst);
        while arrived.load(Ordering::SeqCst) < n as u64 {
            core::hint::spin_loop();
        }
        (thread::current_vcpu(), guest_rt::arch::sve_vector_bits())
    };
    let handles: Vec<_> = (1..n)
        .map(|_| {
            let a = arrived.clone();
            thread::spawn(move || meet(&a))
        })
        .collect();
    let mut seen = alloc::vec![meet(&arrived)];
    seen.extend(handles.into_iter().map(|h| h.join()));
    seen.sort();
    for (vcpu, sve) in &seen {
        match sve {
            Some(bits) => println!("vcpu {vcpu}: sve {bits} bits"),
            None => println!("vcpu {vcpu}: online"),
        }
    }
    println!("joined {} threads on {} vCPUs", seen.len(), n);
    0
}

fn counter(total: u64) -> i32 {
    let n = thread::available_parallelism() as u64;
    let count = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let c = count.clone();
            let mine = total / n + u64::from(i < total % n);
            thread::spawn(move || {
                for _ in 0..mine {
                    *c.lock() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join();
    }
    println!("count {}", *count.lock());
    0
}

/// A thread halts on a Condvar (its vCPU idles) until main notifies it.
fn wake() -> i32 {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p = pair.clone();
    let h = thread::spawn(move || {
        let (lock, cv) = &*p;
        let g = cv.wait_while(lock.lock(), |ready| !*ready);
        (*g, thread::current_vcpu())
    });
    let start = guest_rt::time::Instant::now();
    while start.elapsed().as_millis() < 50 {
        core::hint::spin_loop();
    }
    *pair.0.lock() = true;
    pair.1.notify_all();
    let (ready, vcpu) = h.join();
    println!("woken {ready} on vcpu {vcpu}");
    0
}

/// Run `f` on another vCPU while vCPU 0 halts for ever (it never joins,
/// so it never runs `f` itself): only `f` can end the VM.
fn on_other_vcpu(f: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    static NEVER: AtomicU64 = AtomicU64::new(0);
    println!("main waits on vcpu {}", thread::current_vcpu());
    guest_rt::console::flush_stdout();
    let _h = thread::spawn(f);
    loop {
        guest_rt::futex::wait(&NEVER, 0, u64::MAX);
    }
}

fn parallel(n: usize) -> i32 {
    let sum = AtomicU64::new(0);
    thread::parallel_for(0..n, |r| {
        let s: u64 = r.map(|i| i as u64).sum();
        sum.fetch_add(s, Ordering::SeqCst);
    });
    println!("sum {}", sum.load(Ordering::SeqCst));
    0
}
