//! Sums every byte of a lazily loaded region with N tasks.
//!
//! `lazyscan --lazy data=FILE [--lazy-latency MS] [-- --tasks N] [--region NAME]
//! [--storm] [--sleep-ms MS]`
//!
//! Each task sums its share of the bytes (unsigned); the last line printed is
//! the total as a u64. Earlier lines: `apf: enabled=.. not_present=..
//! ready=.. unmatched=.. duplicate=..` and the elapsed time.
//! `--storm`: every task first touches one byte in each of its pages, all
//! tasks at once, before summing (every page faults "at the same time").
//! `--sleep-ms MS`: one extra task sleeps that long (timer wake-ups while
//! other tasks are parked).
//! `--passes K`: after the first (faulting) pass, sum everything K-1 more
//! times with populated pages and print `steady_us=` for those passes (the
//! no-fault cost of the runtime).
//! `--write`: store to the (read-only) region: must end as a guest fault.
//! `--threads`: sum with `guest_rt::thread::parallel_for` on every vCPU
//! (`--cpus N`) instead of tasks: vCPU 0 takes its faults through async
//! page faults (waiting in place), the other vCPUs wait for their pages.
//! `--float`: each task computes `vessel_kernels::fingerprint` of its share
//! (f32 lanes in vector registers and an f64 recurrence, live across every
//! page fault of the share) instead of the byte sum; the total is the
//! wrapping sum of the fingerprints. With `--passes K` the later passes
//! recompute them with every page present and must match bit for bit.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

use alloc::vec::Vec;
use guest_rt::{println, task};

guest_rt::entry!(async main);

const PAGE: usize = 4096;

fn arg_after(args: &[&str], flag: &str) -> Option<&'static str> {
    let i = args.iter().position(|a| *a == flag)?;
    guest_rt::env::args().nth(i + 1)
}

/// The command line.
struct Opts {
    tasks: usize,
    region: &'static str,
    storm: bool,
    sleep_ms: Option<u64>,
    passes: u32,
    write: bool,
    threads: bool,
    /// What each task computes over its share: the byte sum, or with
    /// `--float` the float fingerprint.
    work: fn(&[u8]) -> u64,
}

fn opts(args: &[&str]) -> Opts {
    Opts {
        tasks: arg_after(args, "--tasks")
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(16),
        region: arg_after(args, "--region").unwrap_or("data"),
        storm: args.contains(&"--storm"),
        sleep_ms: arg_after(args, "--sleep-ms").and_then(|v| v.parse().ok()),
        passes: arg_after(args, "--passes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        write: args.contains(&"--write"),
        threads: args.contains(&"--threads"),
        work: if args.contains(&"--float") {
            vessel_kernels::fingerprint
        } else {
            byte_sum
        },
    }
}

/// The sum of the bytes as unsigned numbers.
fn byte_sum(part: &[u8]) -> u64 {
    part.iter().map(|&b| u64::from(b)).sum()
}

async fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().collect();
    let o = opts(&args);
    let name = o.region;
    let Some(data) = guest_rt::env::lazy_region(name) else {
        guest_rt::eprintln!("lazyscan: no lazy region named `{name}` (give --lazy {name}=FILE)");
        return 2;
    };
    if o.write {
        let p = data.as_ptr().cast_mut();
        // SAFETY: deliberately not safe: the region is mapped read-only and
        // this store must raise a (genuine, fatal) page fault.
        unsafe { p.write_volatile(1) };
        return 4;
    }
    let start = guest_rt::time::Instant::now();
    if o.threads {
        let total = threads_sum(data);
        report(data.len(), guest_rt::thread::available_parallelism(), start);
        println!("{total}");
        return 0;
    }
    let total = match first_pass(data, &o).await {
        Ok(total) => total,
        Err(code) => return code,
    };
    if o.passes > 1 {
        let t = guest_rt::time::Instant::now();
        for _ in 1..o.passes {
            let again = scan(data, o.tasks, o.work).await;
            if again != total {
                guest_rt::eprintln!("lazyscan: pass sum {again} != {total}");
                return 3;
            }
        }
        println!("steady_us={}", t.elapsed().as_micros());
    }
    report(data.len(), o.tasks, start);
    println!("{total}");
    0
}

/// The faulting pass: `o.tasks` tasks each sum a page-aligned share (after
/// touching every page at once with `--storm`), reporting over a channel
/// and through their join handles, which must agree. Err is the exit code.
async fn first_pass(data: &'static [u8], o: &Opts) -> Result<u64, i32> {
    let (tasks, storm, work) = (o.tasks, o.storm, o.work);
    let (tx, mut rx) = task::channel::<(usize, u64)>();
    let mut handles = Vec::new();
    for (i, part) in shares(data, tasks).enumerate() {
        let tx = tx.clone();
        handles.push(task::spawn(async move {
            if storm {
                touch_pages(part);
                task::yield_now().await;
            }
            let sum = work(part);
            tx.send((i, sum));
            sum
        }));
    }
    drop(tx);
    if let Some(ms) = o.sleep_ms {
        handles.push(task::spawn(async move {
            task::sleep(core::time::Duration::from_millis(ms)).await;
            0
        }));
    }
    let mut via_channel = 0u64;
    let mut received = 0;
    while let Some((_, s)) = rx.recv().await {
        via_channel = via_channel.wrapping_add(s);
        received += 1;
    }
    let mut total = 0u64;
    for h in handles {
        total = total.wrapping_add(h.await);
    }
    if received != tasks || via_channel != total {
        guest_rt::eprintln!(
            "lazyscan: channel saw {received} sums totalling {via_channel}, joins {total}"
        );
        return Err(3);
    }
    Ok(total)
}

/// Sum with one thread per vCPU, each over a contiguous share of pages.
fn threads_sum(data: &'static [u8]) -> u64 {
    let total = core::sync::atomic::AtomicU64::new(0);
    let pages = data.len().div_ceil(PAGE);
    guest_rt::thread::parallel_for(0..pages, |ps| {
        let part = &data[(ps.start * PAGE).min(data.len())..(ps.end * PAGE).min(data.len())];
        let sum: u64 = part.iter().map(|&b| u64::from(b)).sum();
        total.fetch_add(sum, core::sync::atomic::Ordering::Relaxed);
    });
    total.into_inner()
}

/// `tasks` page-aligned shares of `data` (the last ones may be short or
/// empty): the split every pass uses, so fingerprints compare pass to pass.
fn shares(data: &'static [u8], tasks: usize) -> impl Iterator<Item = &'static [u8]> {
    let per = data.len().div_ceil(PAGE).div_ceil(tasks) * PAGE;
    (0..tasks).map(move |i| &data[(i * per).min(data.len())..((i + 1) * per).min(data.len())])
}

/// Touch one byte per page so each task faults at once.
fn touch_pages(part: &[u8]) {
    let mut s = 0u8;
    for p in part.iter().step_by(PAGE) {
        // SAFETY: reading a byte of the mapped region; volatile so the
        // touch is not optimised away.
        s = s.wrapping_add(unsafe { core::ptr::read_volatile(p) });
    }
    core::hint::black_box(s);
}

/// The async-PF counters, the one-line verdicts and the size/time line.
fn report(bytes: usize, tasks: usize, start: guest_rt::time::Instant) {
    let st = guest_rt::apf::stats();
    println!(
        "apf: enabled={} not_present={} ready={} wake_all={} unmatched={} duplicate={} waited_in_place={} max_outstanding={}",
        st.enabled, st.not_present, st.ready, st.wake_all, st.unmatched, st.duplicate, st.waited_in_place, st.max_outstanding
    );
    // One-line verdicts for suites that match output by substring.
    println!(
        "apf-check: paired={} async={} overlapped={} storm={} faults8={}",
        st.not_present == st.ready && st.unmatched == 0 && st.duplicate == 0,
        st.not_present > 0,
        st.max_outstanding > 1,
        st.max_outstanding >= 32,
        st.not_present >= 8
    );
    println!(
        "bytes={} tasks={} elapsed_ms={}",
        bytes,
        tasks,
        start.elapsed().as_millis()
    );
}

/// One more pass of the same work with `tasks` tasks; returns the total.
async fn scan(data: &'static [u8], tasks: usize, work: fn(&[u8]) -> u64) -> u64 {
    let handles: Vec<_> = shares(data, tasks)
        .map(|part| task::spawn(async move { work(part) }))
        .collect();
    let mut total = 0u64;
    for h in handles {
        total = total.wrapping_add(h.await);
    }
    total
}
