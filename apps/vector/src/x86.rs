//! x86_64 kernels: SSE2 (128-bit), AVX2 (256-bit), AVX-512F (512-bit).
//!
//! Why assembly and not `core::arch::x86_64` intrinsics: x86_64-unknown-none
//! is a soft-float target (`-sse,+soft-float`, the x86-softfloat ABI). On
//! stable Rust 1.95 a `#[target_feature(enable = "avx512f")]` function that
//! uses intrinsics either fails in LLVM ("Do not know how to scalarize the
//! result of this operator") or, for SSE2, compiles every `_mm_mul_ps` into
//! calls to the soft-float routines: with `+soft-float` LLVM has no vector
//! register classes at all. Inline `asm!` cannot name xmm/zmm registers
//! either (not even as clobbers: "couldn't allocate output register"), and
//! turning soft-float off with `-C target-feature=-soft-float` is a
//! future-incompatibility warning that changes the whole workspace's ABI.
//!
//! So each kernel is a small `global_asm!` function with the C calling
//! convention: pointers, lengths and f32 bit patterns in general-purpose
//! registers, results in eax. Vector registers never cross a Rust function
//! boundary, and because all xmm/ymm/zmm/k registers are caller-saved in the
//! SysV ABI (and the soft-float compiler never keeps anything in them) a
//! call clobbering them is sound. Each function uses only rax, rcx, rdx, rsi,
//! rdi, r8-r11 and no stack. AVX functions end with `vzeroupper`.
//!
//! Tails: SSE2/AVX2 finish the last n % lanes elements with scalar SSE
//! instructions; AVX-512 uses a k-mask for a single masked iteration
//! (masked-out lanes are not loaded, so no over-read).
//! SSE2 has no FMA and no gather: its dot/saxpy/matmul use mul+add, its
//! gather loads lanes one at a time and packs them into one 128-bit store.
//! AVX2 uses mul+add too (so it needs only AVX+AVX2, not FMA) and
//! `vpgatherdd`; AVX-512 uses `vfmadd231ps` and masked `vpgatherdd`.

use core::arch::x86_64::{__cpuid, __cpuid_count};

use crate::kernels::{check_gather, check_matmul, Kernels};

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

/// Names of the ISAs this machine can run, best last.
pub fn available() -> alloc::vec::Vec<&'static str> {
    let f = features();
    let mut v = alloc::vec!["scalar"];
    if f.sse2 {
        v.push("sse2");
    }
    if f.avx2 {
        v.push("avx2");
    }
    if f.avx512f {
        v.push("avx512");
    }
    v
}

/// Every ISA name this architecture knows, available or not.
pub const KNOWN: &[&str] = &["scalar", "sse2", "avx2", "avx512"];

/// The kernel table for `isa`, or None when the machine can't run it.
pub fn kernels(isa: &str) -> Option<&'static Kernels> {
    let f = features();
    match isa {
        "scalar" => Some(&crate::kernels::SCALAR),
        "sse2" if f.sse2 => Some(&SSE2),
        "avx2" if f.avx2 => Some(&AVX2),
        "avx512" if f.avx512f => Some(&AVX512),
        _ => None,
    }
}

/// Safe wrappers around one ISA's assembly functions. Only reachable through
/// [`kernels`], which checked CPUID and XCR0 first.
macro_rules! isa_table {
    ($name:ident, $isa:literal, $bits:literal, $dot:ident, $saxpy:ident, $sum:ident, $mm:ident, $gather:ident) => {
        static $name: Kernels = Kernels {
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
            sum: |a| unsafe { $sum(a.as_ptr(), a.len()) as i32 },
            matmul: |a, b, c, m, k, n| {
                check_matmul(a, b, c, m, k, n);
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
                check_gather(table, idx, out);
                // SAFETY: every idx is < table.len() (checked); writes out[..n].
                unsafe { $gather(table.as_ptr(), idx.as_ptr(), out.as_mut_ptr(), idx.len()) }
            },
        };
    };
}

isa_table!(
    SSE2,
    "sse2",
    128,
    vector_sse2_dot,
    vector_sse2_saxpy,
    vector_sse2_sum,
    vector_sse2_matmul_row,
    vector_sse2_gather
);
isa_table!(
    AVX2,
    "avx2",
    256,
    vector_avx2_dot,
    vector_avx2_saxpy,
    vector_avx2_sum,
    vector_avx2_matmul_row,
    vector_avx2_gather
);
isa_table!(
    AVX512,
    "avx512",
    512,
    vector_avx512_dot,
    vector_avx512_saxpy,
    vector_avx512_sum,
    vector_avx512_matmul_row,
    vector_avx512_gather
);

// Signatures shared by all three ISAs (C ABI, see the module comment):
//   dot(a, b, n) -> f32 bits
//   saxpy(alpha bits, x, y, n)
//   sum(a, n) -> i32 (wrapping)
//   matmul_row(a_row, b, c_row, k, n): c_row[j] = sum_p a_row[p] * b[p*n + j]
//   gather(table, idx, out, n)
extern "C" {
    fn vector_sse2_dot(a: *const f32, b: *const f32, n: usize) -> u32;
    fn vector_sse2_saxpy(alpha: u32, x: *const f32, y: *mut f32, n: usize);
    fn vector_sse2_sum(a: *const i32, n: usize) -> u32;
    fn vector_sse2_matmul_row(a: *const f32, b: *const f32, c: *mut f32, k: usize, n: usize);
    fn vector_sse2_gather(t: *const i32, idx: *const u32, out: *mut i32, n: usize);
    fn vector_avx2_dot(a: *const f32, b: *const f32, n: usize) -> u32;
    fn vector_avx2_saxpy(alpha: u32, x: *const f32, y: *mut f32, n: usize);
    fn vector_avx2_sum(a: *const i32, n: usize) -> u32;
    fn vector_avx2_matmul_row(a: *const f32, b: *const f32, c: *mut f32, k: usize, n: usize);
    fn vector_avx2_gather(t: *const i32, idx: *const u32, out: *mut i32, n: usize);
    fn vector_avx512_dot(a: *const f32, b: *const f32, n: usize) -> u32;
    fn vector_avx512_saxpy(alpha: u32, x: *const f32, y: *mut f32, n: usize);
    fn vector_avx512_sum(a: *const i32, n: usize) -> u32;
    fn vector_avx512_matmul_row(a: *const f32, b: *const f32, c: *mut f32, k: usize, n: usize);
    fn vector_avx512_gather(t: *const i32, idx: *const u32, out: *mut i32, n: usize);
}

// ---------------------------------------------------------------- SSE2 ----
core::arch::global_asm!(
    ".pushsection .text.vector_sse2,\"ax\"",
    // dot: rdi a, rsi b, rdx n
    ".p2align 4",
    ".globl vector_sse2_dot",
    "vector_sse2_dot:",
    "    xorps xmm0, xmm0",
    "    xor eax, eax",
    "    mov rcx, rdx",
    "    and rcx, -4",
    "2:  cmp rax, rcx",
    "    jae 3f",
    "    movups xmm1, xmmword ptr [rdi + 4*rax]",
    "    movups xmm2, xmmword ptr [rsi + 4*rax]",
    "    mulps xmm1, xmm2",
    "    addps xmm0, xmm1",
    "    add rax, 4",
    "    jmp 2b",
    "3:  movaps xmm1, xmm0",
    "    movhlps xmm1, xmm0",
    "    addps xmm0, xmm1",
    "    movaps xmm1, xmm0",
    "    shufps xmm1, xmm1, 0x55",
    "    addss xmm0, xmm1",
    "4:  cmp rax, rdx",
    "    jae 5f",
    "    movss xmm1, dword ptr [rdi + 4*rax]",
    "    mulss xmm1, dword ptr [rsi + 4*rax]",
    "    addss xmm0, xmm1",
    "    inc rax",
    "    jmp 4b",
    "5:  movd eax, xmm0",
    "    ret",
    // saxpy: edi alpha, rsi x, rdx y, rcx n
    ".p2align 4",
    ".globl vector_sse2_saxpy",
    "vector_sse2_saxpy:",
    "    movd xmm0, edi",
    "    shufps xmm0, xmm0, 0",
    "    xor eax, eax",
    "    mov r8, rcx",
    "    and r8, -4",
    "2:  cmp rax, r8",
    "    jae 3f",
    "    movups xmm1, xmmword ptr [rsi + 4*rax]",
    "    mulps xmm1, xmm0",
    "    movups xmm2, xmmword ptr [rdx + 4*rax]",
    "    addps xmm1, xmm2",
    "    movups xmmword ptr [rdx + 4*rax], xmm1",
    "    add rax, 4",
    "    jmp 2b",
    "3:  cmp rax, rcx",
    "    jae 4f",
    "    movss xmm1, dword ptr [rsi + 4*rax]",
    "    mulss xmm1, xmm0",
    "    addss xmm1, dword ptr [rdx + 4*rax]",
    "    movss dword ptr [rdx + 4*rax], xmm1",
    "    inc rax",
    "    jmp 3b",
    "4:  ret",
    // sum: rdi a, rsi n
    ".p2align 4",
    ".globl vector_sse2_sum",
    "vector_sse2_sum:",
    "    pxor xmm0, xmm0",
    "    xor eax, eax",
    "    mov rcx, rsi",
    "    and rcx, -4",
    "2:  cmp rax, rcx",
    "    jae 3f",
    "    movdqu xmm1, xmmword ptr [rdi + 4*rax]",
    "    paddd xmm0, xmm1",
    "    add rax, 4",
    "    jmp 2b",
    "3:  pshufd xmm1, xmm0, 0x4e",
    "    paddd xmm0, xmm1",
    "    pshufd xmm1, xmm0, 0xb1",
    "    paddd xmm0, xmm1",
    "    movd edx, xmm0",
    "4:  cmp rax, rsi",
    "    jae 5f",
    "    add edx, dword ptr [rdi + 4*rax]",
    "    inc rax",
    "    jmp 4b",
    "5:  mov eax, edx",
    "    ret",
    // matmul_row: rdi a_row, rsi b, rdx c_row, rcx k, r8 n
    ".p2align 4",
    ".globl vector_sse2_matmul_row",
    "vector_sse2_matmul_row:",
    "    lea rcx, [rdi + 4*rcx]",
    "    lea r10, [4*r8]",
    "    xor r9d, r9d",
    "2:  lea rax, [r9 + 4]",
    "    cmp rax, r8",
    "    ja 5f",
    "    xorps xmm0, xmm0",
    "    lea rax, [rsi + 4*r9]",
    "    mov r11, rdi",
    "3:  cmp r11, rcx",
    "    jae 4f",
    "    movss xmm1, dword ptr [r11]",
    "    shufps xmm1, xmm1, 0",
    "    movups xmm2, xmmword ptr [rax]",
    "    mulps xmm2, xmm1",
    "    addps xmm0, xmm2",
    "    add rax, r10",
    "    add r11, 4",
    "    jmp 3b",
    "4:  movups xmmword ptr [rdx + 4*r9], xmm0",
    "    add r9, 4",
    "    jmp 2b",
    "5:  cmp r9, r8",
    "    jae 8f",
    "    xorps xmm0, xmm0",
    "    lea rax, [rsi + 4*r9]",
    "    mov r11, rdi",
    "6:  cmp r11, rcx",
    "    jae 7f",
    "    movss xmm1, dword ptr [r11]",
    "    mulss xmm1, dword ptr [rax]",
    "    addss xmm0, xmm1",
    "    add rax, r10",
    "    add r11, 4",
    "    jmp 6b",
    "7:  movss dword ptr [rdx + 4*r9], xmm0",
    "    inc r9",
    "    jmp 5b",
    "8:  ret",
    // gather: rdi table, rsi idx, rdx out, rcx n
    ".p2align 4",
    ".globl vector_sse2_gather",
    "vector_sse2_gather:",
    "    xor eax, eax",
    "    mov r9, rcx",
    "    and r9, -4",
    "2:  cmp rax, r9",
    "    jae 3f",
    "    mov r8d, dword ptr [rsi + 4*rax]",
    "    movd xmm0, dword ptr [rdi + 4*r8]",
    "    mov r8d, dword ptr [rsi + 4*rax + 4]",
    "    movd xmm1, dword ptr [rdi + 4*r8]",
    "    mov r8d, dword ptr [rsi + 4*rax + 8]",
    "    movd xmm2, dword ptr [rdi + 4*r8]",
    "    mov r8d, dword ptr [rsi + 4*rax + 12]",
    "    movd xmm3, dword ptr [rdi + 4*r8]",
    "    punpckldq xmm0, xmm1",
    "    punpckldq xmm2, xmm3",
    "    punpcklqdq xmm0, xmm2",
    "    movdqu xmmword ptr [rdx + 4*rax], xmm0",
    "    add rax, 4",
    "    jmp 2b",
    "3:  cmp rax, rcx",
    "    jae 4f",
    "    mov r8d, dword ptr [rsi + 4*rax]",
    "    mov r8d, dword ptr [rdi + 4*r8]",
    "    mov dword ptr [rdx + 4*rax], r8d",
    "    inc rax",
    "    jmp 3b",
    "4:  ret",
    ".popsection",
);

// ---------------------------------------------------------------- AVX2 ----
core::arch::global_asm!(
    ".pushsection .text.vector_avx2,\"ax\"",
    // dot: rdi a, rsi b, rdx n
    ".p2align 4",
    ".globl vector_avx2_dot",
    "vector_avx2_dot:",
    "    vxorps xmm0, xmm0, xmm0",
    "    xor eax, eax",
    "    mov rcx, rdx",
    "    and rcx, -8",
    "2:  cmp rax, rcx",
    "    jae 3f",
    "    vmovups ymm1, ymmword ptr [rdi + 4*rax]",
    "    vmulps ymm1, ymm1, ymmword ptr [rsi + 4*rax]",
    "    vaddps ymm0, ymm0, ymm1",
    "    add rax, 8",
    "    jmp 2b",
    "3:  vextractf128 xmm1, ymm0, 1",
    "    vaddps xmm0, xmm0, xmm1",
    "    vmovhlps xmm1, xmm0, xmm0",
    "    vaddps xmm0, xmm0, xmm1",
    "    vshufps xmm1, xmm0, xmm0, 0x55",
    "    vaddss xmm0, xmm0, xmm1",
    "4:  cmp rax, rdx",
    "    jae 5f",
    "    vmovss xmm1, dword ptr [rdi + 4*rax]",
    "    vmulss xmm1, xmm1, dword ptr [rsi + 4*rax]",
    "    vaddss xmm0, xmm0, xmm1",
    "    inc rax",
    "    jmp 4b",
    "5:  vmovd eax, xmm0",
    "    vzeroupper",
    "    ret",
    // saxpy: edi alpha, rsi x, rdx y, rcx n
    ".p2align 4",
    ".globl vector_avx2_saxpy",
    "vector_avx2_saxpy:",
    "    vmovd xmm0, edi",
    "    vbroadcastss ymm0, xmm0",
    "    xor eax, eax",
    "    mov r8, rcx",
    "    and r8, -8",
    "2:  cmp rax, r8",
    "    jae 3f",
    "    vmulps ymm1, ymm0, ymmword ptr [rsi + 4*rax]",
    "    vaddps ymm1, ymm1, ymmword ptr [rdx + 4*rax]",
    "    vmovups ymmword ptr [rdx + 4*rax], ymm1",
    "    add rax, 8",
    "    jmp 2b",
    "3:  cmp rax, rcx",
    "    jae 4f",
    "    vmulss xmm1, xmm0, dword ptr [rsi + 4*rax]",
    "    vaddss xmm1, xmm1, dword ptr [rdx + 4*rax]",
    "    vmovss dword ptr [rdx + 4*rax], xmm1",
    "    inc rax",
    "    jmp 3b",
    "4:  vzeroupper",
    "    ret",
    // sum: rdi a, rsi n
    ".p2align 4",
    ".globl vector_avx2_sum",
    "vector_avx2_sum:",
    "    vpxor xmm0, xmm0, xmm0",
    "    xor eax, eax",
    "    mov rcx, rsi",
    "    and rcx, -8",
    "2:  cmp rax, rcx",
    "    jae 3f",
    "    vpaddd ymm0, ymm0, ymmword ptr [rdi + 4*rax]",
    "    add rax, 8",
    "    jmp 2b",
    "3:  vextracti128 xmm1, ymm0, 1",
    "    vpaddd xmm0, xmm0, xmm1",
    "    vpshufd xmm1, xmm0, 0x4e",
    "    vpaddd xmm0, xmm0, xmm1",
    "    vpshufd xmm1, xmm0, 0xb1",
    "    vpaddd xmm0, xmm0, xmm1",
    "    vmovd edx, xmm0",
    "4:  cmp rax, rsi",
    "    jae 5f",
    "    add edx, dword ptr [rdi + 4*rax]",
    "    inc rax",
    "    jmp 4b",
    "5:  mov eax, edx",
    "    vzeroupper",
    "    ret",
    // matmul_row: rdi a_row, rsi b, rdx c_row, rcx k, r8 n
    ".p2align 4",
    ".globl vector_avx2_matmul_row",
    "vector_avx2_matmul_row:",
    "    lea rcx, [rdi + 4*rcx]",
    "    lea r10, [4*r8]",
    "    xor r9d, r9d",
    "2:  lea rax, [r9 + 8]",
    "    cmp rax, r8",
    "    ja 5f",
    "    vxorps xmm0, xmm0, xmm0",
    "    lea rax, [rsi + 4*r9]",
    "    mov r11, rdi",
    "3:  cmp r11, rcx",
    "    jae 4f",
    "    vbroadcastss ymm1, dword ptr [r11]",
    "    vmulps ymm2, ymm1, ymmword ptr [rax]",
    "    vaddps ymm0, ymm0, ymm2",
    "    add rax, r10",
    "    add r11, 4",
    "    jmp 3b",
    "4:  vmovups ymmword ptr [rdx + 4*r9], ymm0",
    "    add r9, 8",
    "    jmp 2b",
    "5:  cmp r9, r8",
    "    jae 8f",
    "    vxorps xmm0, xmm0, xmm0",
    "    lea rax, [rsi + 4*r9]",
    "    mov r11, rdi",
    "6:  cmp r11, rcx",
    "    jae 7f",
    "    vmovss xmm1, dword ptr [r11]",
    "    vmulss xmm1, xmm1, dword ptr [rax]",
    "    vaddss xmm0, xmm0, xmm1",
    "    add rax, r10",
    "    add r11, 4",
    "    jmp 6b",
    "7:  vmovss dword ptr [rdx + 4*r9], xmm0",
    "    inc r9",
    "    jmp 5b",
    "8:  vzeroupper",
    "    ret",
    // gather: rdi table, rsi idx, rdx out, rcx n
    ".p2align 4",
    ".globl vector_avx2_gather",
    "vector_avx2_gather:",
    "    xor eax, eax",
    "    mov r9, rcx",
    "    and r9, -8",
    "2:  cmp rax, r9",
    "    jae 3f",
    "    vpcmpeqd ymm2, ymm2, ymm2",
    "    vmovdqu ymm1, ymmword ptr [rsi + 4*rax]",
    "    vpgatherdd ymm0, dword ptr [rdi + 4*ymm1], ymm2",
    "    vmovdqu ymmword ptr [rdx + 4*rax], ymm0",
    "    add rax, 8",
    "    jmp 2b",
    "3:  cmp rax, rcx",
    "    jae 4f",
    "    mov r8d, dword ptr [rsi + 4*rax]",
    "    mov r8d, dword ptr [rdi + 4*r8]",
    "    mov dword ptr [rdx + 4*rax], r8d",
    "    inc rax",
    "    jmp 3b",
    "4:  vzeroupper",
    "    ret",
    ".popsection",
);

// ------------------------------------------------------------- AVX-512 ----
core::arch::global_asm!(
    ".pushsection .text.vector_avx512,\"ax\"",
    // dot: rdi a, rsi b, rdx n
    ".p2align 4",
    ".globl vector_avx512_dot",
    "vector_avx512_dot:",
    "    vxorps xmm0, xmm0, xmm0",
    "    xor eax, eax",
    "    mov r8, rdx",
    "    and r8, -16",
    "2:  cmp rax, r8",
    "    jae 3f",
    "    vmovups zmm1, zmmword ptr [rdi + 4*rax]",
    "    vfmadd231ps zmm0, zmm1, zmmword ptr [rsi + 4*rax]",
    "    add rax, 16",
    "    jmp 2b",
    // tail: k1 = (1 << (n - i)) - 1, one masked iteration
    "3:  mov rcx, rdx",
    "    sub rcx, rax",
    "    mov r9d, 1",
    "    shl r9d, cl",
    "    dec r9d",
    "    kmovw k1, r9d",
    "    vmovups zmm1 {{k1}} {{z}}, zmmword ptr [rdi + 4*rax]",
    "    vmovups zmm2 {{k1}} {{z}}, zmmword ptr [rsi + 4*rax]",
    "    vfmadd231ps zmm0, zmm1, zmm2",
    "    vextractf64x4 ymm1, zmm0, 1",
    "    vaddps ymm0, ymm0, ymm1",
    "    vextractf128 xmm1, ymm0, 1",
    "    vaddps xmm0, xmm0, xmm1",
    "    vmovhlps xmm1, xmm0, xmm0",
    "    vaddps xmm0, xmm0, xmm1",
    "    vshufps xmm1, xmm0, xmm0, 0x55",
    "    vaddss xmm0, xmm0, xmm1",
    "    vmovd eax, xmm0",
    "    vzeroupper",
    "    ret",
    // saxpy: edi alpha, rsi x, rdx y, rcx n
    ".p2align 4",
    ".globl vector_avx512_saxpy",
    "vector_avx512_saxpy:",
    "    vpbroadcastd zmm0, edi",
    "    xor eax, eax",
    "    mov r8, rcx",
    "    and r8, -16",
    "2:  cmp rax, r8",
    "    jae 3f",
    "    vmovups zmm1, zmmword ptr [rdx + 4*rax]",
    "    vfmadd231ps zmm1, zmm0, zmmword ptr [rsi + 4*rax]",
    "    vmovups zmmword ptr [rdx + 4*rax], zmm1",
    "    add rax, 16",
    "    jmp 2b",
    "3:  sub rcx, rax",
    "    mov r9d, 1",
    "    shl r9d, cl",
    "    dec r9d",
    "    kmovw k1, r9d",
    "    vmovups zmm1 {{k1}} {{z}}, zmmword ptr [rdx + 4*rax]",
    "    vmovups zmm2 {{k1}} {{z}}, zmmword ptr [rsi + 4*rax]",
    "    vfmadd231ps zmm1, zmm0, zmm2",
    "    vmovups zmmword ptr [rdx + 4*rax] {{k1}}, zmm1",
    "    vzeroupper",
    "    ret",
    // sum: rdi a, rsi n
    ".p2align 4",
    ".globl vector_avx512_sum",
    "vector_avx512_sum:",
    "    vpxord zmm0, zmm0, zmm0",
    "    xor eax, eax",
    "    mov r8, rsi",
    "    and r8, -16",
    "2:  cmp rax, r8",
    "    jae 3f",
    "    vpaddd zmm0, zmm0, zmmword ptr [rdi + 4*rax]",
    "    add rax, 16",
    "    jmp 2b",
    "3:  mov rcx, rsi",
    "    sub rcx, rax",
    "    mov r9d, 1",
    "    shl r9d, cl",
    "    dec r9d",
    "    kmovw k1, r9d",
    "    vmovdqu32 zmm1 {{k1}} {{z}}, zmmword ptr [rdi + 4*rax]",
    "    vpaddd zmm0, zmm0, zmm1",
    "    vextracti64x4 ymm1, zmm0, 1",
    "    vpaddd ymm0, ymm0, ymm1",
    "    vextracti128 xmm1, ymm0, 1",
    "    vpaddd xmm0, xmm0, xmm1",
    "    vpshufd xmm1, xmm0, 0x4e",
    "    vpaddd xmm0, xmm0, xmm1",
    "    vpshufd xmm1, xmm0, 0xb1",
    "    vpaddd xmm0, xmm0, xmm1",
    "    vmovd eax, xmm0",
    "    vzeroupper",
    "    ret",
    // matmul_row: rdi a_row, rsi b, rdx c_row, rcx k, r8 n
    // k2 = mask of the last partial column block, k3 = all ones.
    ".p2align 4",
    ".globl vector_avx512_matmul_row",
    "vector_avx512_matmul_row:",
    "    mov r11, rcx",
    "    mov ecx, r8d",
    "    and ecx, 15",
    "    mov eax, 1",
    "    shl eax, cl",
    "    dec eax",
    "    kmovw k2, eax",
    "    kxnorw k3, k3, k3",
    "    lea rcx, [rdi + 4*r11]",
    "    lea r10, [4*r8]",
    "    xor r9d, r9d",
    "2:  cmp r9, r8",
    "    jae 6f",
    "    kmovw k1, k3",
    "    lea rax, [r9 + 16]",
    "    cmp rax, r8",
    "    jbe 3f",
    "    kmovw k1, k2",
    "3:  vxorps xmm0, xmm0, xmm0",
    "    lea rax, [rsi + 4*r9]",
    "    mov r11, rdi",
    "4:  cmp r11, rcx",
    "    jae 5f",
    "    vbroadcastss zmm1, dword ptr [r11]",
    "    vmovups zmm2 {{k1}} {{z}}, zmmword ptr [rax]",
    "    vfmadd231ps zmm0, zmm1, zmm2",
    "    add rax, r10",
    "    add r11, 4",
    "    jmp 4b",
    "5:  vmovups zmmword ptr [rdx + 4*r9] {{k1}}, zmm0",
    "    add r9, 16",
    "    jmp 2b",
    "6:  vzeroupper",
    "    ret",
    // gather: rdi table, rsi idx, rdx out, rcx n
    ".p2align 4",
    ".globl vector_avx512_gather",
    "vector_avx512_gather:",
    "    xor eax, eax",
    "    mov r8, rcx",
    "    and r8, -16",
    "2:  cmp rax, r8",
    "    jae 3f",
    "    kxnorw k1, k1, k1",
    "    vmovdqu32 zmm1, zmmword ptr [rsi + 4*rax]",
    "    vpgatherdd zmm0 {{k1}}, dword ptr [rdi + 4*zmm1]",
    "    vmovdqu32 zmmword ptr [rdx + 4*rax], zmm0",
    "    add rax, 16",
    "    jmp 2b",
    "3:  sub rcx, rax",
    "    mov r9d, 1",
    "    shl r9d, cl",
    "    dec r9d",
    "    kmovw k2, r9d",
    "    kmovw k1, r9d",
    "    vmovdqu32 zmm1 {{k2}} {{z}}, zmmword ptr [rsi + 4*rax]",
    "    vpxord zmm0, zmm0, zmm0",
    "    vpgatherdd zmm0 {{k1}}, dword ptr [rdi + 4*zmm1]",
    "    vmovdqu32 zmmword ptr [rdx + 4*rax] {{k2}}, zmm0",
    "    vzeroupper",
    "    ret",
    ".popsection",
);
