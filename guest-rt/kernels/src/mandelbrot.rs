//! The float-heavy scalar kernel: Mandelbrot escape times in f64, one
//! pixel at a time (a dependent chain of multiplies and adds per pixel,
//! nothing to vectorize: what soft-float made 17x slower in a guest).

/// Escape iterations (at most `max_iter`) for each pixel of a `w` x `h`
/// grid over [-2, 1] x [-1.5, 1.5], row-major into `out` (`w * h` long).
/// Returns the sum of all iterations (a checksum).
pub fn mandelbrot(out: &mut [u32], w: usize, h: usize, max_iter: u32) -> u64 {
    assert!(out.len() >= w * h && w > 0 && h > 0);
    let (dx, dy) = (3.0 / w as f64, 3.0 / h as f64);
    let mut total = 0u64;
    for py in 0..h {
        let ci = -1.5 + py as f64 * dy;
        for px in 0..w {
            let cr = -2.0 + px as f64 * dx;
            let n = escape(cr, ci, max_iter);
            out[py * w + px] = n;
            total += u64::from(n);
        }
    }
    total
}

/// Iterations of z = z^2 + c before |z| > 2, at most `max_iter`.
fn escape(cr: f64, ci: f64, max_iter: u32) -> u32 {
    let (mut zr, mut zi) = (0f64, 0f64);
    for n in 0..max_iter {
        let (r2, i2) = (zr * zr, zi * zi);
        if r2 + i2 > 4.0 {
            return n;
        }
        zi = 2.0 * zr * zi + ci;
        zr = r2 - i2 + cr;
    }
    max_iter
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_points() {
        // c = 0 never escapes; c = 1 escapes after 3 steps (0, 1, 2, 5).
        assert_eq!(super::escape(0.0, 0.0, 100), 100);
        assert_eq!(super::escape(1.0, 0.0, 100), 3);
        let mut out = [0u32; 12];
        let total = super::mandelbrot(&mut out, 4, 3, 50);
        assert_eq!(total, out.iter().map(|&n| u64::from(n)).sum::<u64>());
        assert!(out.contains(&50) && out.iter().any(|&n| n < 50));
    }
}
