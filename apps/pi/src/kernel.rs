//! The pi kernel, shared word for word by the guest app and the native
//! baseline of `cargo xtask bench smp`: count the lattice points inside a
//! quarter circle, row by row (integer arithmetic only, so soft-float
//! guests and the host compute exactly the same thing at the same cost).

/// Lattice points (x, y) with 0 <= x, y < r and x² + y² < r², over the
/// rows `rows` (a part of 0..r).
pub fn points_in_rows(r: u64, rows: core::ops::Range<u64>) -> u64 {
    let r2 = r * r;
    let mut n = 0;
    for x in rows {
        let x2 = x * x;
        for y in 0..r {
            n += u64::from(x2 + y * y < r2);
        }
    }
    n
}

/// pi ≈ 4 * points / r², as `3.dddddd` with `digits` decimals.
pub fn format_pi(points: u64, r: u64, digits: u32) -> (u64, u64) {
    let scale = 10u128.pow(digits);
    let v = 4 * u128::from(points) * scale / (u128::from(r) * u128::from(r));
    ((v / scale) as u64, (v % scale) as u64)
}
