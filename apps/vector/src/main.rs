//! Vector compute kernels, checked in the guest against scalar references.
//!
//! `vector [--isa NAME | --all] [--bench]`: runs five kernels (dot, saxpy,
//! sum, matmul, gather) with one kernel table (default: the best hand-tuned
//! one the machine offers) or with every available one, prints one line per
//! kernel and a final summary, and exits 0 when every result matches its
//! reference, 1 on any mismatch, 2 on a bad argument (unknown name), 3 when
//! the requested table is not available here. `--bench` times the chosen
//! tables (default: all) and Mandelbrot with `vessel_kernels::bench`, the
//! loop `cargo xtask bench vector` also runs natively, one `bench ...` line
//! per case. `--threads N` splits every kernel into N pieces run in
//! parallel on the VM's vCPUs (`--cpus`), see `threads.rs`.
//!
//! Tables (`--isa`): the kernels live in the `vessel-kernels` crate, which
//! builds for the host too. x86_64: `scalar` (plain Rust, one element at a
//! time), `rust-sse2`, `rust-avx2`, `rust-avx512` (plain Rust written to
//! vectorize, compiled per ISA) and `sse2`, `avx2`, `avx512` (hand-written
//! assembly), chosen from CPUID and XCR0. arm64: `scalar`, `rust-neon` and
//! `sve` (vector-length-agnostic assembly, the length read with `rdvl`; see
//! `sve.rs`). Without SVE, arm64 falls back to `rust-neon` and says so.
//!
//! Checking: data are dyadic (multiples of 1/8 in [-4, 4], alpha = 0.375),
//! so every product and partial sum is exactly representable in f32 and the
//! float kernels give the exact result in any summation order, FMA or not.
//! The float comparison still uses a relative tolerance, [`F32_REL_TOL`]
//! (|got - want| <= F32_REL_TOL * max(|want|, 1)), so that changing the data
//! to general floats does not break it; integer kernels (sum, gather)
//! compare exactly. Sizes (n = 4099, matmul 67x67x67) are not multiples of
//! any vector length, so every tail path runs.
//!
//! # Adding a kernel
//!
//! 1. In `vessel-kernels`: add a field (a safe `fn` type) to
//!    `table::Kernels`, its plain Rust version to `table::SCALAR` and its
//!    vectorizable one to `lanes` (and the `#[target_feature]` wrappers in
//!    `x86_64/rust.rs`), and a case in `bench::run_table`.
//! 2. x86_64 assembly: one `global_asm!` function in each ISA's file under
//!    `guest-rt/kernels/src/x86_64/` (C ABI, caller-saved registers only, scalar or
//!    masked tail, `vzeroupper` for AVX), declared in that file's
//!    `extern "C"` block, with a safe wrapper that checks slice lengths in
//!    the `isa_table!` macro.
//! 3. arm64: the same in `sve.rs` with a `whilelo`/predicated loop.
//! 4. Here: add a reference implementation (in f64 or exact integers), a
//!    `Case` in [`run_isa`] that generates data with [`Rng`], runs the
//!    kernel once for the check and `reps` times for the timing, and
//!    compares with [`check_f32`] / exact equality.
//! 5. Add the kernel's name to `KERNELS` in tests/vector.rs.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

#[cfg(target_arch = "aarch64")]
mod sve;
mod threads;

use alloc::{string::String, vec, vec::Vec};
use guest_rt::{eprintln, println, time::Instant};
use vessel_kernels::bench::{ALPHA, MM, N, TABLE};
use vessel_kernels::data::Rng;
use vessel_kernels::table::Kernels;

// Ask the launcher for the largest SVE vector length on arm64 (no effect on x86_64).
guest_rt::entry!(main, sve = max);

/// Relative tolerance for float results (see the module comment).
pub const F32_REL_TOL: f64 = 1e-6;

// ------------------------------------------------------------ references ---

fn ref_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}
fn ref_saxpy(alpha: f32, x: &[f32], y: &[f32]) -> Vec<f64> {
    x.iter()
        .zip(y)
        .map(|(&x, &y)| f64::from(alpha) * f64::from(x) + f64::from(y))
        .collect()
}
fn ref_sum(a: &[i32]) -> i32 {
    a.iter().fold(0i32, |s, &v| s.wrapping_add(v))
}
fn ref_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                .sum();
        }
    }
    c
}
fn ref_gather(table: &[i32], idx: &[u32]) -> Vec<i32> {
    idx.iter().map(|&i| table[i as usize]).collect()
}

/// First index where `got` is not within [`F32_REL_TOL`] of `want`.
fn check_f32(got: &[f32], want: &[f64]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(alloc::format!("length {} != {}", got.len(), want.len()));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = F32_REL_TOL * if w.abs() > 1.0 { w.abs() } else { 1.0 };
        let d = f64::from(g) - w;
        if d.is_nan() || d.abs() > tol {
            return Err(alloc::format!("[{i}]: got {g} want {w}"));
        }
    }
    Ok(())
}
fn check_i32(got: &[i32], want: &[i32]) -> Result<(), String> {
    match got.iter().zip(want).position(|(g, w)| g != w) {
        Some(i) => Err(alloc::format!("[{i}]: got {} want {}", got[i], want[i])),
        None if got.len() != want.len() => Err(String::from("length differs")),
        None => Ok(()),
    }
}

/// Time `reps` runs of `f`; returns nanoseconds (at least 1).
fn time(reps: u32, mut f: impl FnMut()) -> u64 {
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    (t.elapsed().as_nanos() as u64).max(1)
}

/// Runs every kernel of `k`; returns the number of failures.
fn run_isa(k: &Kernels) -> u32 {
    let mut rng = Rng(0x5eed_0f7e_55e1);
    let mut failures = 0;
    // Scalar (one lane, the latency of each f32 add in a chain): fewer repetitions.
    let reps: u32 = if k.name == "scalar" { 3 } else { 50 };
    let mut report =
        |name: &str, n: usize, res: Result<(), String>, ops: u64, ns: u64, unit: &str| {
            let rate = ops as f64 * f64::from(reps) * 1e3 / ns as f64;
            match res {
                Ok(()) => println!(
                    "{name:<7} isa={} vl={} n={n} ok {rate:.1} {unit}",
                    k.name, k.vl_bits
                ),
                Err(e) => {
                    failures += 1;
                    println!("{name:<7} isa={} vl={} n={n} FAIL", k.name, k.vl_bits);
                    eprintln!("vector: kernel {name} failed with isa={}: {e}", k.name);
                }
            }
        };

    // dot
    let a = rng.f32s(N);
    let b = rng.f32s(N);
    let got = (k.dot)(&a, &b);
    let res = check_f32(&[got], &[ref_dot(&a, &b)]);
    let ns = time(reps, || {
        core::hint::black_box((k.dot)(core::hint::black_box(&a), &b));
    });
    report("dot", N, res, 2 * N as u64, ns, "Mflop/s");

    // saxpy
    let x = rng.f32s(N);
    let y0 = rng.f32s(N);
    let mut y = y0.clone();
    (k.saxpy)(ALPHA, &x, &mut y);
    let res = check_f32(&y, &ref_saxpy(ALPHA, &x, &y0));
    let mut yt = y0.clone();
    let ns = time(reps, || {
        (k.saxpy)(ALPHA, core::hint::black_box(&x), &mut yt)
    });
    report("saxpy", N, res, 2 * N as u64, ns, "Mflop/s");

    // sum (wrapping i32: exact in any order)
    let v: Vec<i32> = (0..N).map(|_| rng.next_u64() as i32).collect();
    let res = check_i32(&[(k.sum)(&v)], &[ref_sum(&v)]);
    let ns = time(reps, || {
        core::hint::black_box((k.sum)(core::hint::black_box(&v)));
    });
    report("sum", N, res, N as u64, ns, "Mop/s");

    let (res, ns) = case_matmul(k, &mut rng, reps);
    report("matmul", MM, res, 2 * (MM * MM * MM) as u64, ns, "Mflop/s");

    let (res, ns) = case_gather(k, &mut rng, reps);
    report("gather", N, res, N as u64, ns, "Melem/s");

    if failures == 0 {
        println!(
            "vector: all kernels ok (isa={}, vl={} bits)",
            k.name, k.vl_bits
        );
    }
    failures
}

/// matmul MM x MM x MM: the check, and nanoseconds for `reps` runs
/// (measured over fewer runs for scalar, then scaled).
fn case_matmul(k: &Kernels, rng: &mut Rng, reps: u32) -> (Result<(), String>, u64) {
    let ma = rng.f32s(MM * MM);
    let mb = rng.f32s(MM * MM);
    let mut mc = vec![f32::NAN; MM * MM];
    (k.matmul)(&ma, &mb, &mut mc, MM, MM, MM);
    let res = check_f32(&mc, &ref_matmul(&ma, &mb, MM, MM, MM));
    let mreps = if k.name == "scalar" { 1 } else { reps };
    let ns = time(mreps, || {
        (k.matmul)(core::hint::black_box(&ma), &mb, &mut mc, MM, MM, MM)
    }) * u64::from(reps)
        / u64::from(mreps);
    (res, ns)
}

/// gather of N elements from a TABLE-entry table: the check and the time.
fn case_gather(k: &Kernels, rng: &mut Rng, reps: u32) -> (Result<(), String>, u64) {
    let table: Vec<i32> = (0..TABLE).map(|_| rng.next_u64() as i32).collect();
    let idx: Vec<u32> = (0..N)
        .map(|_| (rng.next_u64() % TABLE as u64) as u32)
        .collect();
    let mut out = vec![0i32; N];
    (k.gather)(&table, &idx, &mut out);
    let res = check_i32(&out, &ref_gather(&table, &idx));
    let ns = time(reps, || {
        (k.gather)(&table, core::hint::black_box(&idx), &mut out)
    });
    (res, ns)
}

// ------------------------------------------------------- ISA selection ---

/// What this machine can run, best hand-tuned table last.
#[cfg(target_arch = "x86_64")]
fn available() -> Vec<&'static Kernels> {
    let f = vessel_kernels::x86_64::features();
    println!(
        "vector: x86_64 sse2={} avx2={} avx512f={} xcr0={:#x}",
        f.sse2, f.avx2, f.avx512f, f.xcr0
    );
    vessel_kernels::available().collect()
}

/// Every table name this architecture knows, available or not.
#[cfg(target_arch = "x86_64")]
fn known() -> Vec<&'static str> {
    vessel_kernels::KNOWN.to_vec()
}

/// SVE vector length in bits, or None when this VM has no SVE. Kept behind
/// this one function so the source of truth (guest-rt's feature bits and
/// `rdvl`) can change in one place.
#[cfg(target_arch = "aarch64")]
fn sve_bits() -> Option<u32> {
    if guest_rt::env::features() & guest_rt::abi::features::SVE == 0 {
        return None;
    }
    // SAFETY: the launcher enabled SVE for this VM (feature bit above).
    Some(unsafe { sve::rdvl_bits() })
}

/// What this machine can run, best hand-tuned table last.
#[cfg(target_arch = "aarch64")]
fn available() -> Vec<&'static Kernels> {
    let mut v: Vec<&'static Kernels> = vessel_kernels::available().collect();
    match sve_bits() {
        // SAFETY: SVE is enabled (sve_bits returned Some).
        Some(bits) => v.push(alloc::boxed::Box::leak(alloc::boxed::Box::new(unsafe {
            sve::kernels(bits)
        }))),
        None => println!("vector: SVE absent in this VM; falling back to rust-neon"),
    }
    v
}

/// Every table name this architecture knows, available or not.
#[cfg(target_arch = "aarch64")]
fn known() -> Vec<&'static str> {
    let mut v = vessel_kernels::KNOWN.to_vec();
    v.push("sve");
    v
}

/// `--bench`: time `tables` and Mandelbrot, one line per case.
fn bench(tables: &[&Kernels]) {
    let t0 = Instant::now();
    let now = || t0.elapsed().as_nanos() as u64;
    vessel_kernels::bench::run(&mut tables.iter().copied(), &now, &mut |s| {
        println!("{}", s.line());
    });
}

/// The command line: `--isa NAME`, `--all`, `--bench`, `--threads N`.
struct Opts {
    isa: Option<&'static str>,
    all: bool,
    bench: bool,
    /// `--threads N`: split every kernel into N pieces on the vCPUs (0: no).
    threads: usize,
}

/// Parse the arguments; Err is the exit code (after printing why).
fn opts() -> Result<Opts, i32> {
    let args: Vec<&'static str> = guest_rt::env::args().skip(1).collect();
    let known = known();
    let usage = alloc::format!(
        "usage: vector [--isa {} | --all] [--bench] [--threads N]",
        known.join("|")
    );
    let mut o = Opts {
        isa: None,
        all: false,
        bench: false,
        threads: 0,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--all" => o.all = true,
            "--bench" => o.bench = true,
            "--threads" => match it.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0) {
                Some(n) => o.threads = n,
                None => {
                    eprintln!("vector: --threads needs a positive number ({usage})");
                    return Err(2);
                }
            },
            "--isa" if it.len() > 0 => o.isa = it.next().copied(),
            a if a.starts_with("--isa=") => o.isa = Some(&a[6..]),
            "-h" | "--help" => {
                println!("{usage}");
                return Err(0);
            }
            other => {
                eprintln!("vector: unknown argument `{other}` ({usage})");
                return Err(2);
            }
        }
    }
    if let Some(name) = o.isa.filter(|n| !known.contains(n)) {
        eprintln!(
            "vector: unknown --isa `{name}` (expected one of: {})",
            known.join(", ")
        );
        return Err(2);
    }
    Ok(o)
}

fn main() -> i32 {
    let o = match opts() {
        Ok(o) => o,
        Err(code) => return code,
    };
    let avail = available();
    let chosen: Vec<&Kernels> = match (o.all || o.bench, o.isa) {
        (_, Some(name)) => match avail.iter().find(|k| k.name == name) {
            Some(k) => vec![*k],
            None => {
                let names: Vec<&str> = avail.iter().map(|k| k.name).collect();
                eprintln!(
                    "vector: isa `{name}` is not available on this machine (available: {})",
                    names.join(", ")
                );
                return 3;
            }
        },
        (true, None) => avail,
        (false, None) => vec![*avail.last().expect("scalar is always available")],
    };
    if o.bench {
        bench(&chosen);
        return 0;
    }
    let failures: u32 = chosen
        .iter()
        .map(|k| match o.threads {
            0 => run_isa(k),
            n => run_isa(threads::threaded(k, n)),
        })
        .sum();
    if failures > 0 {
        eprintln!("vector: {failures} kernel(s) FAILED");
        return 1;
    }
    0
}
