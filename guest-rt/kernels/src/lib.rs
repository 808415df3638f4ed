//! Compute kernels in plain `no_std` Rust, one source for the host and for
//! Vessel guests: `apps/vector` runs them in the guest, `cargo xtask bench
//! vector` runs the same functions natively, and the tests compare results.
//!
//! - [`table::Kernels`]: dot, saxpy, sum, matmul, gather at one ISA level;
//!   [`table::SCALAR`] is plain one-element-at-a-time Rust.
//! - [`lanes`]: the same kernels written to vectorize, compiled per ISA
//!   (`x86_64`: SSE2 baseline, AVX2, AVX-512F through `#[target_feature]`;
//!   `aarch64`: NEON), next to hand-written assembly for SSE2/AVX2/AVX-512
//!   (`x86_64`), the reference for hand-tuned code.
//! - [`mandelbrot()`]: the float-heavy scalar kernel (f64).
//! - [`fingerprint()`]: a float fold for bit-for-bit state checks.
//! - [`bench`]: the timing loop both sides run.
//!
//! Nothing here depends on guest-rt or std, so a user's own kernel crate
//! can follow the same pattern (see guest-rt/README.md).
//!
//! Float results are deterministic across the host, the guest and the
//! instruction set: Rust neither reorders float operations nor contracts
//! them into FMAs, and auto-vectorization keeps the order (a reduction is
//! only vectorized where its lanes are independent, as in [`lanes`]).
#![no_std]

extern crate alloc;

pub mod bench;
pub mod data;
mod fingerprint;
pub mod lanes;
mod mandelbrot;
pub mod table;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use fingerprint::fingerprint;
pub use mandelbrot::mandelbrot;

/// The kernel tables of this architecture that this machine can run.
#[cfg(target_arch = "x86_64")]
pub use x86_64::{available, kernels, KNOWN};

/// The kernel tables of this architecture that this machine can run.
#[cfg(target_arch = "aarch64")]
pub use aarch64::{available, kernels, KNOWN};
