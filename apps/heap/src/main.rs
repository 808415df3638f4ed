//! Exercises and measures the guest heap.
//!
//! - `heap --bench`: the allocation kernels of `kernel.rs` (also run
//!   natively by `cargo xtask bench alloc`), as `bench ...` lines with
//!   their checksums.
//! - `heap btree N` / `heap churn N`: one kernel, its checksum.
//! - `heap check [OPS]`: random allocations, frees and reallocations of
//!   every size and alignment, each block filled with a pattern that is
//!   checked before it is freed; prints the live-block peak.
//! - `heap threads [OPS]`: `check` on every vCPU at once, plus blocks
//!   allocated on one vCPU and freed on another.
//! - `heap oom`: allocate until the heap is full (the panic names the
//!   heap's state).
//! - `heap reuse`: fill the heap with small blocks, free them, and do it
//!   again: the second round must fit (freed blocks are reused).
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

mod check;
mod kernel;

use alloc::vec::Vec;

use guest_rt::{eprintln, println};

guest_rt::entry!(main);

fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().skip(1).collect();
    let num = |i: usize, default: u64| args.get(i).map_or(Some(default), |v| v.parse().ok());
    let ok = match (args.first().copied(), num(1, 100_000)) {
        (Some("--bench"), _) => bench(),
        (Some(k @ ("btree" | "churn")), Some(n)) => {
            println!("{k} {n} checksum {}", kernel::run(k, n));
            true
        }
        (Some("check"), Some(n)) => check::single(n),
        (Some("threads"), Some(n)) => check::threads(n),
        (Some("oom"), _) => check::oom(),
        (Some("reuse"), _) => check::reuse(),
        _ => {
            eprintln!("usage: heap --bench | btree N | churn N | check [OPS] | threads [OPS] | oom | reuse");
            return 2;
        }
    };
    if ok {
        0
    } else {
        1
    }
}

/// Every case of the benchmark once, as `bench` lines.
fn bench() -> bool {
    for (k, size, n) in kernel::CASES {
        let t = guest_rt::time::Instant::now();
        let sum = kernel::run(k, n);
        let ns = t.elapsed().as_nanos();
        println!("bench kernel={k} impl=rust isa={size} unit=ms ops={n} ns={ns} checksum={sum}");
    }
    true
}
