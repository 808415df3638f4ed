//! The plain-Rust kernels ([`crate::lanes`]) compiled for each x86_64 ISA
//! level: SSE2 is the target's baseline; AVX2 and AVX-512F are the same
//! source inlined into `#[target_feature]` functions, so the compiler
//! uses ymm/zmm registers. Handed out only by [`super::kernels`], after
//! CPUID and XCR0 said the ISA is usable.

use crate::lanes;
use crate::table::Kernels;

/// The baseline build (SSE2: every x86_64 CPU has it).
pub(super) static SSE2: Kernels = Kernels {
    name: "rust-sse2",
    imp: "rust",
    isa: "sse2",
    vl_bits: 128,
    dot: lanes::dot,
    saxpy: lanes::saxpy,
    sum: lanes::sum,
    matmul: lanes::matmul,
    gather: lanes::gather,
};

/// A table whose functions are [`crate::lanes`] compiled with `$feature`
/// enabled (the wrappers are `unsafe` to call: the table is only handed
/// out once the feature was detected).
macro_rules! feature_table {
    ($table:ident, $module:ident, $feature:literal, $name:literal, $isa:literal, $bits:literal) => {
        mod $module {
            use crate::lanes;
            #[target_feature(enable = $feature)]
            pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
                lanes::dot(a, b)
            }
            #[target_feature(enable = $feature)]
            pub(super) fn saxpy(alpha: f32, x: &[f32], y: &mut [f32]) {
                lanes::saxpy(alpha, x, y)
            }
            #[target_feature(enable = $feature)]
            pub(super) fn sum(a: &[i32]) -> i32 {
                lanes::sum(a)
            }
            #[target_feature(enable = $feature)]
            pub(super) fn matmul(
                a: &[f32],
                b: &[f32],
                c: &mut [f32],
                m: usize,
                k: usize,
                n: usize,
            ) {
                lanes::matmul(a, b, c, m, k, n)
            }
            #[target_feature(enable = $feature)]
            pub(super) fn gather(table: &[i32], idx: &[u32], out: &mut [i32]) {
                lanes::gather(table, idx, out)
            }
        }

        pub(super) static $table: Kernels = Kernels {
            name: $name,
            imp: "rust",
            isa: $isa,
            vl_bits: $bits,
            // SAFETY: this wrapper and those below: the table is handed
            // out only when the CPU has the feature and XCR0 enables its
            // registers.
            dot: |a, b| unsafe { $module::dot(a, b) },
            // SAFETY: as above.
            saxpy: |alpha, x, y| unsafe { $module::saxpy(alpha, x, y) },
            // SAFETY: as above.
            sum: |a| unsafe { $module::sum(a) },
            // SAFETY: as above.
            matmul: |a, b, c, m, k, n| unsafe { $module::matmul(a, b, c, m, k, n) },
            // SAFETY: as above.
            gather: |t, i, o| unsafe { $module::gather(t, i, o) },
        };
    };
}

feature_table!(AVX2, avx2, "avx2", "rust-avx2", "avx2", 256);
feature_table!(AVX512, avx512, "avx512f", "rust-avx512", "avx512", 512);
