//! The kernel table every implementation fills in, and the plain-Rust
//! `scalar` one (one element at a time, sequential sums).

/// `matmul(a, b, c, m, k, n)`: c (m x n) = a (m x k) * b (k x n), row-major.
pub type Matmul = fn(&[f32], &[f32], &mut [f32], usize, usize, usize);

/// One implementation of every kernel at one ISA level. All are safe
/// functions: a table is only handed out (by `x86_64::kernels`,
/// `aarch64::kernels`, or an app's own dispatch) for an ISA the CPU and
/// the OS-enabled register state support, and each function checks its
/// slice lengths before it touches memory.
pub struct Kernels {
    /// Name used in `--isa` and in the output: the ISA for the assembly
    /// versions (`sse2`), `rust-` and the ISA for the Rust ones.
    pub name: &'static str,
    /// `asm` (hand-written) or `rust` (plain Rust the compiler vectorized).
    pub imp: &'static str,
    /// The ISA level: `scalar`, `sse2`, `avx2`, `avx512`, `neon`, `sve`.
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

/// Checks shared by every matmul.
pub fn check_matmul(a: &[f32], b: &[f32], c: &[f32], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
}

/// Checks shared by every gather; the vector gathers use signed 32-bit
/// indices, so the table must also be below 2^31 elements.
pub fn check_gather(table: &[i32], idx: &[u32], out: &[i32]) {
    assert_eq!(idx.len(), out.len());
    assert!(table.len() <= i32::MAX as usize);
    assert!(idx.iter().all(|&i| (i as usize) < table.len()));
}

/// Plain Rust, one element at a time, sums in order: the latency-bound
/// baseline (loops without a reduction, like saxpy, still vectorize).
pub const SCALAR: Kernels = Kernels {
    name: "scalar",
    imp: "rust",
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
    saxpy: crate::lanes::saxpy,
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
    gather: crate::lanes::gather,
};
