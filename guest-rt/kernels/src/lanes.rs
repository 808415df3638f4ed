//! The kernels in plain Rust written so the compiler vectorizes them:
//! reductions keep [`LANES`] independent partial sums (so no float
//! reordering is needed), updates are element-wise. Each is
//! `#[inline(always)]` so that a `#[target_feature]` wrapper (AVX2,
//! AVX-512) compiles the same source for wider registers; without one it
//! is the target's baseline (SSE2 on x86_64, NEON on arm64).

use crate::table::{check_gather, check_matmul};

/// Independent partial sums in the reductions: 16 f32 = one zmm, two ymm,
/// four xmm or NEON registers.
pub const LANES: usize = 16;

/// Sum of a[i] * b[i], in [`LANES`] partial sums added at the end.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// y[i] += alpha * x[i].
#[inline(always)]
pub fn saxpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * *x;
    }
}

/// Wrapping sum (integers: the compiler reorders freely).
#[inline(always)]
pub fn sum(a: &[i32]) -> i32 {
    a.iter().fold(0i32, |s, &v| s.wrapping_add(v))
}

/// c = a * b, row by row as saxpy updates of c's row (vectorized over j).
#[inline(always)]
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    check_matmul(a, b, c, m, k, n);
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        row.fill(0.0);
        for p in 0..k {
            saxpy(a[i * k + p], &b[p * n..(p + 1) * n], row);
        }
    }
}

/// out[i] = table[idx[i]] (checked first, then indexed).
#[inline(always)]
pub fn gather(table: &[i32], idx: &[u32], out: &mut [i32]) {
    check_gather(table, idx, out);
    for (o, &i) in out.iter_mut().zip(idx) {
        *o = table[i as usize];
    }
}
