//! arm64 parts of the debugger (`--gdb`): not written yet. The launcher
//! refuses `--gdb` on arm64 with a one-line error (see `crate::debug`);
//! the x86_64 side (`arch/x86_64/debug.rs`) shows what this file will hold:
//! the registers (X, V and, with SVE, Z/P/FFR/VG through
//! `org.gnu.gdb.aarch64.sve`), KVM_SET_GUEST_DEBUG's hardware breakpoints
//! and single-step, and the stage-1 page-table walk.

/// The architecture's name in the refusal.
pub const NAME: &str = "arm64";
