//! arm64 kernels in plain Rust: the [`crate::lanes`] source at the
//! target's baseline, which has NEON (128-bit). The SVE versions are
//! vector-length-agnostic assembly in `apps/vector` (SVE needs the VM to
//! enable it, and SVE intrinsics are not stable).

use crate::lanes;
use crate::table::Kernels;

/// Every table name this crate knows on arm64.
pub const KNOWN: &[&str] = &["scalar", "rust-neon"];

/// The kernel tables this machine can run, in [`KNOWN`]'s order (NEON is
/// part of the arm64 baseline).
pub fn available() -> impl Iterator<Item = &'static Kernels> {
    KNOWN.iter().filter_map(|name| kernels(name))
}

/// The kernel table named `name`.
pub fn kernels(name: &str) -> Option<&'static Kernels> {
    match name {
        "scalar" => Some(&crate::table::SCALAR),
        "rust-neon" => Some(&NEON),
        _ => None,
    }
}

static NEON: Kernels = Kernels {
    name: "rust-neon",
    imp: "rust",
    isa: "neon",
    vl_bits: 128,
    dot: lanes::dot,
    saxpy: lanes::saxpy,
    sum: lanes::sum,
    matmul: lanes::matmul,
    gather: lanes::gather,
};
