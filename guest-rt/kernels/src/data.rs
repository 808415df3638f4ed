//! Deterministic inputs: the same bytes on the host and in the guest.

/// SplitMix64: deterministic data, no host randomness.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A multiple of 1/8 in [-4, 4]: products and partial sums of these
    /// are exact in f32, so every summation order gives the same result.
    pub fn dyadic(&mut self) -> f32 {
        ((self.next_u64() % 65) as i32 - 32) as f32 / 8.0
    }
    /// `n` dyadic f32s.
    pub fn f32s(&mut self, n: usize) -> alloc::vec::Vec<f32> {
        (0..n).map(|_| self.dyadic()).collect()
    }
    /// `n` arbitrary i32s.
    pub fn i32s(&mut self, n: usize) -> alloc::vec::Vec<i32> {
        (0..n).map(|_| self.next_u64() as i32).collect()
    }
    /// `n` indices below `bound`.
    pub fn indices(&mut self, n: usize, bound: usize) -> alloc::vec::Vec<u32> {
        (0..n)
            .map(|_| (self.next_u64() % bound as u64) as u32)
            .collect()
    }
}
