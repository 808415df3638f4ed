//! The kernel table every ISA fills in, and the plain-Rust `scalar` ISA.

/// `matmul(a, b, c, m, k, n)`: c (m x n) = a (m x k) * b (k x n), row-major.
pub type Matmul = fn(&[f32], &[f32], &mut [f32], usize, usize, usize);

/// One ISA's implementation of every kernel. All are safe functions: a table
/// is only handed out (by `x86::kernels` / `sve::kernels`) for an ISA the CPU
/// and the OS-enabled register state support, and each function checks its
/// slice lengths before it touches memory.
pub struct Kernels {
    /// Name used in `--isa` and in the output.
    pub isa: &'static str,
    /// Vector length in bits the kernels use (32 for scalar: one f32 lane).
    pub vl_bits: u32,
    /// Sum of a[i] * b[i]. Panics unless a.len() == b.len().
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// y[i] = alpha * x[i] + y[i]. Panics unless x.len() == y.len().
    pub saxpy: fn(f32, &[f32], &mut [f32]),
    /// Wrapping sum of all elements (exact in every order).
    pub sum: fn(&[i32]) -> i32,
    /// c (m x n) = a (m x k) * b (k x n), row-major: `matmul(a, b, c, m, k, n)`.
    pub matmul: Matmul,
    /// out[i] = table[idx[i]]. Panics unless idx.len() == out.len() and
    /// every index is in range.
    pub gather: fn(&[i32], &[u32], &mut [i32]),
}

/// Checks shared by every ISA's matmul wrapper.
pub fn check_matmul(a: &[f32], b: &[f32], c: &[f32], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
}

/// Checks shared by every ISA's gather wrapper; the vector gathers use
/// signed 32-bit indices, so the table must also be below 2^31 elements.
pub fn check_gather(table: &[i32], idx: &[u32], out: &[i32]) {
    assert_eq!(idx.len(), out.len());
    assert!(table.len() <= i32::MAX as usize);
    assert!(idx.iter().all(|&i| (i as usize) < table.len()));
}

/// Plain Rust, one element at a time (hardware float; loops the compiler
/// can vectorize without reordering, such as saxpy, use SSE2 or NEON).
pub const SCALAR: Kernels = Kernels {
    isa: "scalar",
    vl_bits: 32,
    dot: |a, b| {
        assert_eq!(a.len(), b.len());
        let mut s = 0.0f32;
        for i in 0..a.len() {
            s += a[i] * b[i];
        }
        s
    },
    saxpy: |alpha, x, y| {
        assert_eq!(x.len(), y.len());
        for i in 0..x.len() {
            y[i] += alpha * x[i];
        }
    },
    sum: |a| a.iter().fold(0i32, |s, &v| s.wrapping_add(v)),
    matmul: |a, b, c, m, k, n| {
        check_matmul(a, b, c, m, k, n);
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for p in 0..k {
                    s += a[i * k + p] * b[p * n + j];
                }
                c[i * n + j] = s;
            }
        }
    },
    gather: |table, idx, out| {
        assert_eq!(idx.len(), out.len());
        for (o, &i) in out.iter_mut().zip(idx) {
            *o = table[i as usize];
        }
    },
};
