//! guest-rt: the runtime a Vessel app links.
//!
//! An app is a `#![no_std] #![no_main]` binary that names its main function
//! with [`entry!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! guest_rt::entry!(main);
//! fn main() -> i32 { guest_rt::println!("hello"); 0 }
//! ```
//!
//! The runtime checks the launcher's BootInfo before anything else, sets up
//! the heap (so `alloc` works), registers for async page faults when the
//! launcher offers them, and gives the app a console, its arguments and
//! environment, clocks, a task executor ([`task`]) and a panic handler that
//! exits with code 101.
#![no_std]
#![warn(missing_docs)]
// Outside guest builds (no `--cfg vessel_guest`, set by .cargo/config.toml
// for the guest targets only; e.g. `cargo clippy --workspace` on the host)
// the runtime is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

#[doc(hidden)]
pub extern crate alloc as __alloc;

pub mod apf;
pub mod arch;
mod boot;
mod cell;
pub mod console;
pub mod env;
pub mod export;
pub mod fs;
pub mod futex;
#[doc(hidden)]
pub mod header;
pub mod heap;
pub mod host;
pub mod hypercall;
pub mod io;
// A `std` program (built with `--cfg vessel_std`, linked with the C
// library shim `guest-rt/libc`) brings std's panic handler and unwinder.
#[cfg(not(vessel_std))]
mod panic;
pub mod process;
pub mod random;
pub mod ring;
pub mod sync;
pub mod task;
pub mod thread;
pub mod time;

pub use vessel_abi as abi;

/// What an app's main function may return.
pub trait Termination {
    /// The process exit code this value stands for.
    fn exit_code(self) -> i32;
}
impl Termination for () {
    fn exit_code(self) -> i32 {
        0
    }
}
impl Termination for i32 {
    fn exit_code(self) -> i32 {
        self
    }
}
impl<E: core::fmt::Debug> Termination for Result<(), E> {
    fn exit_code(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("Error: {e:?}");
                1
            }
        }
    }
}

/// Names the app's main function. Optional `sve = BITS` (or `sve = max`)
/// asks the launcher for SVE with that vector length on arm64.
/// `entry!(async main)` runs an `async fn main` on the task executor
/// ([`task::block_on`]). A trailing `cpus = N` (`entry!(main, cpus = 4)`,
/// `entry!(main, sve = max, cpus = 4)`, `entry!(async main, cpus = 2)`)
/// names how many vCPUs the app runs on when the launcher gets no
/// `--cpus` (1..=32; without it, 1).
#[macro_export]
macro_rules! entry {
    (async $main:path) => {
        $crate::entry!(async $main, cpus = 0u64);
    };
    (async $main:path, cpus = $cpus:expr) => {
        $crate::__vessel_header!(0u64, $cpus);
        #[no_mangle]
        extern "Rust" fn __vessel_app_main() -> i32 {
            $crate::Termination::exit_code($crate::task::block_on($main()))
        }
    };
    ($main:path) => {
        $crate::entry!($main, sve = 0u64, cpus = 0u64);
    };
    ($main:path, cpus = $cpus:expr) => {
        $crate::entry!($main, sve = 0u64, cpus = $cpus);
    };
    ($main:path, sve = max) => {
        $crate::entry!($main, sve = u64::MAX, cpus = 0u64);
    };
    ($main:path, sve = max, cpus = $cpus:expr) => {
        $crate::entry!($main, sve = u64::MAX, cpus = $cpus);
    };
    ($main:path, sve = $bits:expr) => {
        $crate::entry!($main, sve = $bits, cpus = 0u64);
    };
    ($main:path, sve = $bits:expr, cpus = $cpus:expr) => {
        $crate::__vessel_header!($bits, $cpus);
        #[no_mangle]
        extern "Rust" fn __vessel_app_main() -> i32 {
            $crate::Termination::exit_code($main())
        }
    };
}
