//! x86_64 kernels: SSE2 (128-bit), AVX2 (256-bit), AVX-512F (512-bit),
//! each twice: hand-written assembly (the reference for hand-tuned code)
//! and the plain Rust of [`crate::lanes`] compiled for that ISA
//! (`rust.rs`: `#[target_feature]` wrappers).
//!
//! Each assembly kernel is a small `global_asm!` function with the C
//! calling convention: pointers, lengths and f32 bit patterns in
//! general-purpose registers, results in eax. Vector registers never cross
//! a Rust function boundary, and because all xmm/ymm/zmm/k registers are
//! caller-saved in the SysV ABI, a call clobbering them is sound. Each
//! function uses only rax, rcx, rdx, rsi, rdi, r8-r11 and no stack. AVX
//! functions end with `vzeroupper`.
//!
//! Tails: SSE2/AVX2 finish the last n % lanes elements with scalar SSE
//! instructions; AVX-512 uses a k-mask for a single masked iteration
//! (masked-out lanes are not loaded, so no over-read).
//! SSE2 has no FMA and no gather: its dot/saxpy/matmul use mul+add, its
//! gather loads lanes one at a time and packs them into one 128-bit store.
//! AVX2 uses mul+add too (so it needs only AVX+AVX2, not FMA) and
//! `vpgatherdd`; AVX-512 uses `vfmadd231ps` and masked `vpgatherdd`.
//!
//! One file per ISA (`sse2.rs`, `avx2.rs`, `avx512.rs`), each with its
//! assembly, its `extern "C"` declarations and its [`Kernels`] table built
//! by `isa_table!`, and `rust.rs` for the Rust tables; this file detects
//! what the machine can run (CPUID and XCR0, which work unprivileged in a
//! guest and natively alike) and hands out the tables.

use core::arch::x86_64::{__cpuid, __cpuid_count};

use crate::table::Kernels;

/// What the CPU offers and the OS (here: the launcher, via XCR0) enabled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    pub sse2: bool,
    pub avx2: bool,
    pub avx512f: bool,
    pub xcr0: u64,
}

/// XCR0 bits 1 (SSE) and 2 (AVX: upper YMM halves).
const XCR0_YMM: u64 = 0b110;
/// XCR0 bits 1, 2 plus 5 (opmask), 6 (ZMM0-15 upper halves), 7 (ZMM16-31).
const XCR0_ZMM: u64 = 0b1110_0110;

/// XCR0 as the OS (here: the launcher) enabled it.
///
/// # Safety
/// The CPU must have XSAVE with CR4.OSXSAVE set (CPUID.1:ECX bit 27), else
/// `xgetbv` raises #UD.
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    core::arch::x86_64::_xgetbv(0)
}

pub fn features() -> Features {
    // cpuid is unprivileged and always present in long mode.
    let l1 = __cpuid(1);
    let max = __cpuid(0).eax;
    let l7 = if max >= 7 {
        __cpuid_count(7, 0)
    } else {
        __cpuid(0)
    };
    let osxsave = l1.ecx & (1 << 27) != 0;
    let avx = l1.ecx & (1 << 28) != 0;
    // SAFETY: xgetbv exists (and works at CPL3) when CPUID.1:ECX.OSXSAVE is set.
    let xcr0 = if osxsave { unsafe { xgetbv0() } } else { 0 };
    Features {
        sse2: l1.edx & (1 << 26) != 0,
        avx2: avx && max >= 7 && l7.ebx & (1 << 5) != 0 && xcr0 & XCR0_YMM == XCR0_YMM,
        avx512f: max >= 7 && l7.ebx & (1 << 16) != 0 && xcr0 & XCR0_ZMM == XCR0_ZMM,
        xcr0,
    }
}

/// Every table name this architecture knows, available or not: the plain
/// Rust ones first, then the assembly ones, each from narrow to wide (so
/// the last available one is the best hand-tuned table).
pub const KNOWN: &[&str] = &[
    "scalar",
    "rust-sse2",
    "rust-avx2",
    "rust-avx512",
    "sse2",
    "avx2",
    "avx512",
];

/// The kernel tables this machine can run, in [`KNOWN`]'s order.
pub fn available() -> impl Iterator<Item = &'static Kernels> {
    KNOWN.iter().filter_map(|name| kernels(name))
}

/// The kernel table named `name`, or None when the machine can't run it.
pub fn kernels(name: &str) -> Option<&'static Kernels> {
    let f = features();
    match name {
        "scalar" => Some(&crate::table::SCALAR),
        "rust-sse2" if f.sse2 => Some(&rust::SSE2),
        "rust-avx2" if f.avx2 => Some(&rust::AVX2),
        "rust-avx512" if f.avx512f => Some(&rust::AVX512),
        "sse2" if f.sse2 => Some(&sse2::SSE2),
        "avx2" if f.avx2 => Some(&avx2::AVX2),
        "avx512" if f.avx512f => Some(&avx512::AVX512),
        _ => None,
    }
}

/// Safe wrappers around one ISA's assembly functions. Only reachable through
/// [`kernels`], which checked CPUID and XCR0 first. The five functions are
/// the ISA module's `extern "C"` declarations, with these C signatures:
///
/// - `dot(a, b, n) -> f32 bits`
/// - `saxpy(alpha bits, x, y, n)`
/// - `sum(a, n) -> i32` (wrapping)
/// - `matmul_row(a_row, b, c_row, k, n)`: `c_row[j] = sum_p a_row[p] * b[p*n + j]`
/// - `gather(table, idx, out, n)`
macro_rules! isa_table {
    ($name:ident, $isa:literal, $bits:literal, $dot:ident, $saxpy:ident, $sum:ident, $mm:ident, $gather:ident $(,)?) => {
        pub(super) static $name: crate::table::Kernels = crate::table::Kernels {
            name: $isa,
            imp: "asm",
            isa: $isa,
            vl_bits: $bits,
            dot: |a, b| {
                assert_eq!(a.len(), b.len());
                // SAFETY: reads a[..n] and b[..n]; the ISA was checked.
                f32::from_bits(unsafe { $dot(a.as_ptr(), b.as_ptr(), a.len()) })
            },
            saxpy: |alpha, x, y| {
                assert_eq!(x.len(), y.len());
                // SAFETY: reads x[..n], reads and writes y[..n]; ISA checked.
                unsafe { $saxpy(alpha.to_bits(), x.as_ptr(), y.as_mut_ptr(), x.len()) }
            },
            // SAFETY: reads a[..n]; ISA checked.
            sum: |a| unsafe { $sum(a.as_ptr(), a.len()).cast_signed() },
            matmul: |a, b, c, m, k, n| {
                crate::table::check_matmul(a, b, c, m, k, n);
                for i in 0..m {
                    // SAFETY: reads a[i*k..][..k] and b[..k*n], writes
                    // c[i*n..][..n], all in bounds by check_matmul.
                    unsafe {
                        $mm(
                            a.as_ptr().add(i * k),
                            b.as_ptr(),
                            c.as_mut_ptr().add(i * n),
                            k,
                            n,
                        )
                    }
                }
            },
            gather: |table, idx, out| {
                crate::table::check_gather(table, idx, out);
                // SAFETY: every idx is < table.len() (checked); writes out[..n].
                unsafe { $gather(table.as_ptr(), idx.as_ptr(), out.as_mut_ptr(), idx.len()) }
            },
        };
    };
}

mod avx2;
mod avx512;
mod rust;
mod sse2;
