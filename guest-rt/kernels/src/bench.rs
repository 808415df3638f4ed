//! The benchmark loop, shared by the guest (`vector --bench`) and the
//! host (`cargo xtask bench vector` runs it natively, in its own process):
//! the same data, the same repetitions, the same kernels, only the clock
//! differs.

use alloc::vec;

use crate::data::Rng;
use crate::table::Kernels;

/// Elements of the 1-D kernels; not a multiple of any vector length.
pub const N: usize = 4099;
/// matmul is MM x MM x MM.
pub const MM: usize = 67;
/// Entries of the gather table.
pub const TABLE: usize = 1031;
/// saxpy's alpha (dyadic, like the data).
pub const ALPHA: f32 = 0.375;
/// Mandelbrot grid and iteration cap.
const MANDEL: (usize, usize, u32) = (48, 32, 256);
/// Work (operations) per timed block: repetitions are this over the
/// case's operations per call, so each block takes about a millisecond.
const BLOCK_OPS: u64 = 4_000_000;
/// Timed blocks per case; the sample is the fastest (preemption and other
/// load only ever add time, so the minimum is the least noisy estimate).
const BLOCKS: usize = 7;

/// One measured case.
pub struct Sample {
    /// Kernel name: dot, saxpy, sum, matmul, gather, mandelbrot.
    pub kernel: &'static str,
    /// `asm` or `rust`.
    pub imp: &'static str,
    /// ISA level (scalar, sse2, avx2, avx512, neon, sve).
    pub isa: &'static str,
    /// What `ops` counts, per second in millions: `Mflop/s` etc.
    pub unit: &'static str,
    /// Operations in one call.
    pub ops: u64,
    /// Nanoseconds per call: the fastest of the timed blocks.
    pub ns: f64,
}

impl Sample {
    /// The line both sides print and `cargo xtask bench` reads:
    /// `bench kernel=K impl=I isa=A unit=U ops=N ns=T`.
    pub fn line(&self) -> alloc::string::String {
        alloc::format!(
            "bench kernel={} impl={} isa={} unit={} ops={} ns={:.1}",
            self.kernel,
            self.imp,
            self.isa,
            self.unit,
            self.ops,
            self.ns
        )
    }
}

/// Times `f` (one call = `ops` operations) in [`BLOCKS`] blocks with the
/// clock `now` (nanoseconds); the fastest block's time per call. For a
/// kernel of your own: call this from the guest app and from a native
/// program alike and print [`Sample::line`] (guest-rt/README.md).
pub fn measure(now: &dyn Fn() -> u64, ops: u64, mut f: impl FnMut()) -> f64 {
    let reps = (BLOCK_OPS / ops.max(1)).max(1);
    f();
    let mut blocks = [0f64; BLOCKS];
    for b in &mut blocks {
        let t = now();
        for _ in 0..reps {
            f();
        }
        *b = now().saturating_sub(t) as f64 / reps as f64;
    }
    blocks.into_iter().fold(f64::INFINITY, f64::min)
}

/// Times every kernel of each table, then Mandelbrot (plain Rust, f64),
/// handing each [`Sample`] to `out`.
pub fn run(
    tables: &mut dyn Iterator<Item = &Kernels>,
    now: &dyn Fn() -> u64,
    out: &mut dyn FnMut(Sample),
) {
    for k in tables {
        run_table(k, now, out);
    }
    let (w, h, max) = MANDEL;
    let mut grid = vec![0u32; w * h];
    let iters = crate::mandelbrot(&mut grid, w, h, max);
    let ns = measure(now, iters, || {
        core::hint::black_box(crate::mandelbrot(&mut grid, w, h, max));
    });
    let sample = |ns| Sample {
        kernel: "mandelbrot",
        imp: "rust",
        isa: "scalar",
        unit: "Miter/s",
        ops: iters,
        ns,
    };
    out(sample(ns));
}

fn run_table(k: &Kernels, now: &dyn Fn() -> u64, out: &mut dyn FnMut(Sample)) {
    use core::hint::black_box as bb;
    let mut rng = Rng(0x5eed_0f7e_55e1);
    let sample = |kernel, unit, ops, ns| Sample {
        kernel,
        imp: k.imp,
        isa: k.isa,
        unit,
        ops,
        ns,
    };
    let (a, b) = (rng.f32s(N), rng.f32s(N));
    let ops = 2 * N as u64;
    out(sample(
        "dot",
        "Mflop/s",
        ops,
        measure(now, ops, || {
            bb((k.dot)(bb(&a), &b));
        }),
    ));
    let mut y = rng.f32s(N);
    out(sample(
        "saxpy",
        "Mflop/s",
        ops,
        measure(now, ops, || (k.saxpy)(ALPHA, bb(&a), &mut y)),
    ));
    let v = rng.i32s(N);
    out(sample(
        "sum",
        "Mop/s",
        N as u64,
        measure(now, N as u64, || {
            bb((k.sum)(bb(&v)));
        }),
    ));
    let (ma, mb) = (rng.f32s(MM * MM), rng.f32s(MM * MM));
    let mut mc = vec![0f32; MM * MM];
    let mops = 2 * (MM * MM * MM) as u64;
    out(sample(
        "matmul",
        "Mflop/s",
        mops,
        measure(now, mops, || (k.matmul)(bb(&ma), &mb, &mut mc, MM, MM, MM)),
    ));
    let table = rng.i32s(TABLE);
    let idx = rng.indices(N, TABLE);
    let mut g = vec![0i32; N];
    out(sample(
        "gather",
        "Melem/s",
        N as u64,
        measure(now, N as u64, || (k.gather)(&table, bb(&idx), &mut g)),
    ));
}
