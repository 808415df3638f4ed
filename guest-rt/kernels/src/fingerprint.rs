//! A float-heavy fingerprint of bytes, for checking that vector state
//! survives task switches and async page faults bit for bit.

/// Bytes folded per step: one f32 lane each.
const LANES: usize = 16;

/// A 64-bit fingerprint of `bytes`, computed with floating point only.
///
/// Sixteen f32 lanes (`lane = lane * 0.5 + byte`, which the compiler
/// vectorizes: SSE2 or NEON registers stay live through the whole loop)
/// and a stable f64 recurrence driven by one byte per step (scalar float
/// registers, also live), folded to 64 bits at the end. The same bytes
/// give the same bits everywhere (see the crate comment); the empty input
/// gives 0, so fingerprints of parts can be added up in any split.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let (lanes, z, w) = fold(bytes);
    let mut h = z.to_bits().wrapping_add(w.to_bits().rotate_left(17));
    for (i, l) in (0u32..).zip(lanes) {
        h = h.wrapping_add(u64::from(l.to_bits()).rotate_left(4 * i));
    }
    h
}

/// The lanes and the recurrence's state after `bytes`.
fn fold(bytes: &[u8]) -> ([f32; LANES], f64, f64) {
    let mut lanes = [0f32; LANES];
    let (mut z, mut w) = (0f64, 0f64);
    let mut steps = bytes.chunks_exact(LANES);
    for chunk in &mut steps {
        for (l, &b) in lanes.iter_mut().zip(chunk) {
            *l = *l * 0.5 + f32::from(b);
        }
        // |eigenvalues| < 1 for every x in [0, 1): bounded, never NaN.
        let x = f64::from(chunk[0]) * (1.0 / 256.0);
        z = z * 0.5 + x * w + 0.125;
        w = w * 0.75 - z * 0.25 + x;
    }
    for (l, &b) in lanes.iter_mut().zip(steps.remainder()) {
        *l = *l * 0.5 + f32::from(b);
    }
    (lanes, z, w)
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn empty_is_zero_and_every_byte_counts() {
        assert_eq!(fingerprint(&[]), 0);
        let data: [u8; 100] = core::array::from_fn(|i| (i * 7) as u8);
        let base = fingerprint(&data);
        assert_ne!(base, 0);
        for i in [0, 15, 16, 50, 99] {
            let mut d = data;
            d[i] ^= 1;
            assert_ne!(fingerprint(&d), base, "byte {i} changed nothing");
        }
    }

    #[test]
    fn state_stays_finite_for_any_bytes() {
        // The extremes of the recurrence's input, constant and alternating.
        let high = [255u8; 1 << 16];
        let alternating: [u8; 1 << 16] =
            core::array::from_fn(|i| if i % 32 < 16 { 255 } else { 0 });
        for data in [&high, &alternating] {
            let (lanes, z, w) = super::fold(data);
            assert!(z.is_finite() && w.is_finite(), "z {z} w {w}");
            assert!(lanes.iter().all(|l| l.is_finite() && *l <= 510.0));
        }
    }
}
