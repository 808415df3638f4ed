//! arm64 kernels: vector-length-agnostic SVE in `global_asm!` (SVE
//! intrinsics are not stable). Every loop is `whilelo` + predicated
//! loads/stores + `incw`, so one binary runs at any vector length and the
//! tail is just a partial predicate. Functions use the C ABI (AAPCS64) with
//! only caller-saved registers (x0-x9, z0-z2, p0-p1), f32 in and out as bit
//! patterns in w registers, like the x86_64 kernels.
//!
//! This module depends on nothing from guest-rt, so it can be compile-checked
//! alone for aarch64-unknown-none. The arm64 suite (`cargo xtask test`)
//! runs the app under Vessel at every SVE length from 128 to 2048 bits
//! (`vector-sve-N`) and checks every kernel against its scalar reference;
//! before that, the kernels were checked equal to `table::SCALAR` on a
//! bare-metal EL1 harness for n = 0, 1, 3, 15, 17 and 4099.

use vessel_kernels::table::{check_gather, check_matmul, Kernels};

/// Vector length the hardware actually uses, in bits (`rdvl`).
///
/// # Safety
/// SVE must be enabled for this VM (else `rdvl` is undefined).
pub unsafe fn rdvl_bits() -> u32 {
    let bytes: u64;
    core::arch::asm!(".arch_extension sve", "rdvl {0}, #1", out(reg) bytes,
        options(nomem, nostack, preserves_flags));
    (bytes * 8) as u32
}

/// The SVE kernel table; `vl_bits` from [`rdvl_bits`].
///
/// # Safety
/// SVE must be enabled for this VM.
pub unsafe fn kernels(vl_bits: u32) -> Kernels {
    Kernels { vl_bits, ..SVE }
}

const SVE: Kernels = Kernels {
    name: "sve",
    imp: "asm",
    isa: "sve",
    vl_bits: 0,
    dot: |a, b| {
        assert_eq!(a.len(), b.len());
        // SAFETY: reads a[..n], b[..n]; SVE checked by the caller of kernels().
        f32::from_bits(unsafe { vector_sve_dot(a.as_ptr(), b.as_ptr(), a.len()) })
    },
    saxpy: |alpha, x, y| {
        assert_eq!(x.len(), y.len());
        // SAFETY: reads x[..n], reads/writes y[..n].
        unsafe { vector_sve_saxpy(alpha.to_bits(), x.as_ptr(), y.as_mut_ptr(), x.len()) }
    },
    // SAFETY: reads a[..n].
    sum: |a| unsafe { vector_sve_sum(a.as_ptr(), a.len()).cast_signed() },
    matmul: |a, b, c, m, k, n| {
        check_matmul(a, b, c, m, k, n);
        for i in 0..m {
            // SAFETY: in bounds by check_matmul.
            unsafe {
                vector_sve_matmul_row(
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
        check_gather(table, idx, out);
        // SAFETY: every index < table.len() (checked); writes out[..n].
        unsafe { vector_sve_gather(table.as_ptr(), idx.as_ptr(), out.as_mut_ptr(), idx.len()) }
    },
};

extern "C" {
    fn vector_sve_dot(a: *const f32, b: *const f32, n: usize) -> u32;
    fn vector_sve_saxpy(alpha: u32, x: *const f32, y: *mut f32, n: usize);
    fn vector_sve_sum(a: *const i32, n: usize) -> u32;
    fn vector_sve_matmul_row(a: *const f32, b: *const f32, c: *mut f32, k: usize, n: usize);
    fn vector_sve_gather(t: *const i32, idx: *const u32, out: *mut i32, n: usize);
}

core::arch::global_asm!(
    ".arch_extension sve",
    ".pushsection .text.vector_sve,\"ax\"",
    // dot: x0 a, x1 b, x2 n -> w0 (f32 bits)
    ".p2align 4",
    ".globl vector_sve_dot",
    "vector_sve_dot:",
    "    mov x3, #0",
    "    mov z0.s, #0",
    "    whilelo p0.s, x3, x2",
    "    b.none 3f",
    "2:  ld1w {{ z1.s }}, p0/z, [x0, x3, lsl #2]",
    "    ld1w {{ z2.s }}, p0/z, [x1, x3, lsl #2]",
    "    fmla z0.s, p0/m, z1.s, z2.s",
    "    incw x3",
    "    whilelo p0.s, x3, x2",
    "    b.first 2b",
    "3:  ptrue p1.s",
    "    faddv s0, p1, z0.s",
    "    fmov w0, s0",
    "    ret",
    // saxpy: w0 alpha bits, x1 x, x2 y, x3 n
    ".p2align 4",
    ".globl vector_sve_saxpy",
    "vector_sve_saxpy:",
    "    fmov s0, w0",
    "    mov z0.s, s0",
    "    mov x4, #0",
    "    whilelo p0.s, x4, x3",
    "    b.none 3f",
    "2:  ld1w {{ z1.s }}, p0/z, [x1, x4, lsl #2]",
    "    ld1w {{ z2.s }}, p0/z, [x2, x4, lsl #2]",
    "    fmla z2.s, p0/m, z1.s, z0.s",
    "    st1w {{ z2.s }}, p0, [x2, x4, lsl #2]",
    "    incw x4",
    "    whilelo p0.s, x4, x3",
    "    b.first 2b",
    "3:  ret",
    // sum: x0 a, x1 n -> w0 (wrapping i32 sum: uaddv sums into 64 bits,
    // whose low 32 bits are the wrapping sum)
    ".p2align 4",
    ".globl vector_sve_sum",
    "vector_sve_sum:",
    "    mov x2, #0",
    "    mov z0.s, #0",
    "    whilelo p0.s, x2, x1",
    "    b.none 3f",
    "2:  ld1w {{ z1.s }}, p0/z, [x0, x2, lsl #2]",
    "    add z0.s, p0/m, z0.s, z1.s",
    "    incw x2",
    "    whilelo p0.s, x2, x1",
    "    b.first 2b",
    "3:  ptrue p1.s",
    "    uaddv d0, p1, z0.s",
    "    fmov x0, d0",
    "    ret",
    // matmul_row: x0 a_row, x1 b, x2 c_row, x3 k, x4 n
    ".p2align 4",
    ".globl vector_sve_matmul_row",
    "vector_sve_matmul_row:",
    "    lsl x5, x4, #2",
    "    mov x6, #0",
    "    whilelo p0.s, x6, x4",
    "    b.none 9f",
    "2:  mov z0.s, #0",
    "    add x7, x1, x6, lsl #2",
    "    mov x8, #0",
    "    cbz x3, 4f",
    "3:  add x9, x0, x8, lsl #2",
    "    ld1rw {{ z1.s }}, p0/z, [x9]",
    "    ld1w {{ z2.s }}, p0/z, [x7]",
    "    fmla z0.s, p0/m, z1.s, z2.s",
    "    add x7, x7, x5",
    "    add x8, x8, #1",
    "    cmp x8, x3",
    "    b.lo 3b",
    "4:  st1w {{ z0.s }}, p0, [x2, x6, lsl #2]",
    "    incw x6",
    "    whilelo p0.s, x6, x4",
    "    b.first 2b",
    "9:  ret",
    // gather: x0 table, x1 idx, x2 out, x3 n
    ".p2align 4",
    ".globl vector_sve_gather",
    "vector_sve_gather:",
    "    mov x4, #0",
    "    whilelo p0.s, x4, x3",
    "    b.none 3f",
    "2:  ld1w {{ z1.s }}, p0/z, [x1, x4, lsl #2]",
    "    ld1w {{ z2.s }}, p0/z, [x0, z1.s, uxtw #2]",
    "    st1w {{ z2.s }}, p0, [x2, x4, lsl #2]",
    "    incw x4",
    "    whilelo p0.s, x4, x3",
    "    b.first 2b",
    "3:  ret",
    ".popsection",
);
