//! The allocation-heavy kernels of `cargo xtask bench alloc`, shared by the
//! guest app and the native baseline (build/src/bench/alloc_native.rs
//! includes this file): plain `alloc` code, so both compile the same
//! source. Each returns a checksum, which both sides print, so a wrong
//! result cannot pass for a fast one.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// xorshift64: the kernels' pseudo-random numbers.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A `BTreeMap<String, u64>` of `n` formatted keys, walked and dropped.
pub fn btree(n: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15;
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..n {
        m.insert(format!("key-{:x}-{i}", next(&mut x) >> 24), i);
    }
    let mut sum = m.len() as u64;
    for (k, v) in m.iter().step_by(7) {
        sum = sum.wrapping_mul(31).wrapping_add(v ^ k.len() as u64);
    }
    sum
}

/// Vec-of-Vecs churn: `n` times, replace a random one of 4096 vectors by
/// a new one of 1 to 512 words, or grow one by pushes (reallocations).
pub fn churn(n: u64) -> u64 {
    let mut x = 0x2545_f491_4f6c_dd1d;
    let mut slots: Vec<Vec<u64>> = (0..4096).map(|_| Vec::new()).collect();
    for i in 0..n {
        let r = next(&mut x);
        let slot = &mut slots[(r % 4096) as usize];
        if r & (1 << 40) == 0 {
            let len = (r >> 20) % 512 + 1;
            *slot = (0..len).map(|j| j ^ i).collect();
        } else {
            for j in 0..(r >> 50) % 64 {
                slot.push(j);
            }
        }
    }
    slots.iter().fold(0u64, |s, v| {
        s.wrapping_mul(31)
            .wrapping_add(v.len() as u64 ^ v.first().copied().unwrap_or(0))
    })
}

/// The benchmark's cases: (kernel, size name, n).
pub const CASES: [(&str, &str, u64); 5] = [
    ("btree", "100k", 100_000),
    ("btree", "200k", 200_000),
    ("btree", "1M", 1_000_000),
    ("churn", "1M", 1_000_000),
    ("churn", "4M", 4_000_000),
];

/// Run kernel `name` over `n`.
pub fn run(name: &str, n: u64) -> u64 {
    if name == "btree" {
        btree(n)
    } else {
        churn(n)
    }
}
