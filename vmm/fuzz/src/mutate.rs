//! A small deterministic mutator and a panic detector for every thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Values that break bounds checks, written at aligned offsets.
const BOUNDARY: [u64; 10] = [
    0,
    1,
    u64::MAX,
    u64::MAX - 1,
    1 << 32,
    0xffff_ffff,
    0x8000_0000_0000_0000,
    4096,
    1 << 20,
    0xc000_0000,
];

/// xorshift64* mutations.
pub struct Mutator(u64);

impl Mutator {
    /// A mutator seeded with `seed` (non-zero).
    pub fn new(seed: u64) -> Mutator {
        Mutator(seed | 1)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A mutation of `seed` (others may be spliced in).
    pub fn mutate(&mut self, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(6) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if v.len() >= 8 => {
                    let at = self.below(v.len() / 8) * 8;
                    let b = BOUNDARY[self.below(BOUNDARY.len())].to_le_bytes();
                    v[at..at + 8].copy_from_slice(&b);
                }
                2 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next_u64() as u8;
                }
                3 => v.truncate(self.below(v.len() + 1)),
                4 if !others.is_empty() => {
                    let o = &others[self.below(others.len())];
                    let at = self.below(v.len() + 1);
                    let take = self.below(o.len() + 1);
                    v.splice(at..at, o[..take].iter().copied());
                }
                _ => v.push(self.next_u64() as u8),
            }
        }
        v
    }
}

/// Install (once) a panic hook that records a panic on any thread (the
/// launcher's I/O threads included); the flag it returns says one happened.
pub fn catch_thread_panics() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let old = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            f.store(true, Ordering::SeqCst);
            old(info);
        }));
        flag
    })
    .clone()
}
