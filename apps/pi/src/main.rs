//! Computes pi in parallel on the VM's vCPUs: `pi [--threads N] [R]` counts
//! the lattice points inside a quarter circle of radius R (default 20000)
//! with N threads (default: one per vCPU) and prints the count, pi to six
//! decimals and the time the count took. It runs on 2 vCPUs unless given
//! `--cpus` (`entry!(main, cpus = 2)`).
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

mod kernel;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::{eprintln, println, thread};

// Two vCPUs unless the launcher is given --cpus.
guest_rt::entry!(main, cpus = 2);

fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().skip(1).collect();
    let mut threads = thread::available_parallelism();
    let mut r = 20_000u64;
    let mut i = 0;
    while i < args.len() {
        let parsed = match args[i] {
            "--threads" => {
                i += 1;
                args.get(i)
                    .and_then(|v| v.parse().ok())
                    .map(|n| threads = n)
            }
            v => v.parse().ok().map(|n| r = n),
        };
        if parsed.is_none() || threads == 0 || r == 0 || r > 1 << 31 {
            eprintln!("usage: pi [--threads N] [RADIUS (1..=2^31)]");
            return 2;
        }
        i += 1;
    }
    let start = guest_rt::time::Instant::now();
    let points = count(r, threads);
    let took = start.elapsed();
    let (int, frac) = kernel::format_pi(points, r, 6);
    println!("points {points}");
    println!("pi {int}.{frac:06}");
    println!(
        "threads {threads} vcpus {} ns {}",
        thread::available_parallelism(),
        took.as_nanos()
    );
    0
}

/// The rows split in `threads` pieces, counted in parallel.
fn count(r: u64, threads: usize) -> u64 {
    let total = AtomicU64::new(0);
    let pieces = threads as u64;
    let each = r.div_ceil(pieces);
    // `parallel_for` gives one piece per vCPU; --threads N asks for N
    // pieces, which run N at a time when there are that many vCPUs.
    thread::parallel_for(0..threads, |ts| {
        for t in ts {
            let t = t as u64;
            let rows = (t * each).min(r)..((t + 1) * each).min(r);
            total.fetch_add(kernel::points_in_rows(r, rows), Ordering::Relaxed);
        }
    });
    total.load(Ordering::Relaxed)
}
