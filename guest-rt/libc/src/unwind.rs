//! The unwinder std names. The `_Unwind_*` functions (raise, resume,
//! backtrace, the context accessors std's personality routine uses) come
//! from the pure-Rust `unwinding` crate, which finds a frame's unwind rules
//! through the `.eh_frame_hdr` index the linker writes (guest-rt's linker
//! script keeps it for std programs, between `__executable_start` and
//! `__etext`). So a panic unwinds as on the host: `main` panicking exits
//! 101, `catch_unwind` catches, a panicked thread's `join` is `Err`.
//!
//! `dl_iterate_phdr` lists no modules (the image's program headers are not
//! mapped), so a backtrace (`RUST_BACKTRACE=1`) prints its frames without
//! symbol names.

use core::ffi::{c_int, c_void};

// Named so that the linker sees the crate (its symbols are what std calls).
#[cfg(target_env = "musl")]
use unwinding as _;

/// No loaded modules to list (the image has no program headers mapped).
#[no_mangle]
pub extern "C" fn dl_iterate_phdr(_cb: *mut c_void, _data: *mut c_void) -> c_int {
    0
}
