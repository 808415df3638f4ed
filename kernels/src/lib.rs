//! Compute kernels in plain `no_std` Rust, one source for the host and for
//! Vessel guests: `apps/vector` runs them in the guest, `cargo xtask bench
//! vector` runs the same functions natively, and the tests compare results.
//!
//! Nothing here depends on guest-rt or std, so a user's own kernel crate
//! can follow the same pattern (see guest-rt/README.md).
//!
//! Float results are deterministic across the host, the guest and the
//! instruction set: Rust neither reorders float operations nor contracts
//! them into FMAs, and auto-vectorization keeps the order (a reduction is
//! only vectorized where its lanes are independent, as in
//! [`fingerprint`]).
#![no_std]

mod fingerprint;

pub use fingerprint::fingerprint;
