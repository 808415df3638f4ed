//! An ordinary `std` program, unmodified: rayon parallel reductions on
//! rayon's global pool (as many workers as `available_parallelism`, or
//! `RAYON_NUM_THREADS`). The test suite builds it for Vessel and for the
//! host and compares outputs; `cargo xtask bench std` times it.
//!
//! `std-rayon [N]`: reductions over 0..N (default 2,000,000), each also
//! computed sequentially and checked. `std-rayon --time N ROUNDS`: prints
//! only the best time of ROUNDS parallel reductions over 0..N, in
//! nanoseconds (for the benchmark). `std-rayon --file PATH`: reads PATH
//! from a pool thread and prints what std says (files are vCPU 0's).
use std::process::ExitCode;
use std::time::Instant;

use rayon::prelude::*;

/// A mixing function cheap enough to be memory- and call-bound.
fn mix(x: u64) -> u64 {
    let mut h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// The work the benchmark times: a sum of mixed values and a float sum.
fn kernel(n: u64) -> (u64, f64) {
    let s = (0..n)
        .into_par_iter()
        .map(mix)
        .reduce(|| 0, u64::wrapping_add);
    let f = (0..n)
        .into_par_iter()
        .map(|x| ((x % 1000) as f64).sqrt())
        .sum::<f64>();
    (s, f)
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn check(n: u64) -> bool {
    let (s, f) = kernel(n);
    let seq = (0..n).map(mix).fold(0, u64::wrapping_add);
    let fseq: f64 = (0..n).map(|x| ((x % 1000) as f64).sqrt()).sum();
    println!("mix sum {s:#x} (sequential {seq:#x})");
    // A parallel float sum adds in another order: equal to a few ulps.
    println!("sqrt sum close: {}", (f - fseq).abs() <= fseq * 1e-9);
    let primes = (0..n / 20).into_par_iter().filter(|&x| is_prime(x)).count();
    println!("primes below {}: {primes}", n / 20);
    let mut v: Vec<u64> = (0..n / 4).map(mix).collect();
    v.par_sort_unstable();
    let sorted = v.windows(2).all(|w| w[0] <= w[1]);
    println!("sorted {} values: {sorted}, min {:#x}", v.len(), v[0]);
    let max = (0..n).into_par_iter().map(mix).max().unwrap_or(0);
    println!("max {max:#x}");
    println!("pool threads: {}", rayon::current_num_threads());
    s == seq
}

fn time(n: u64, rounds: u32) {
    let mut best = u128::MAX;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        std::hint::black_box(kernel(std::hint::black_box(n)));
        best = best.min(t.elapsed().as_nanos());
    }
    println!("{best}");
}

fn file_from_pool(path: &str) {
    let mut r = None;
    rayon::scope(|s| s.spawn(|_| r = Some(std::fs::read(path))));
    match r {
        Some(Ok(b)) => println!("pool thread read {} bytes", b.len()),
        Some(Err(e)) => println!("pool thread: {:?}: {e}", e.kind()),
        None => println!("pool thread did not run"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("--time") => time(num(1, 2_000_000), num(2, 5) as u32),
        Some("--file") => file_from_pool(args.get(1).map_or("/", String::as_str)),
        _ => {
            if !check(num(0, 2_000_000)) {
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
