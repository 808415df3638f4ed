//! vessel-libc: the C library of an unmodified `std` Rust program running
//! as a Vessel VM.
//!
//! Rust's prebuilt `std` for `{x86_64,aarch64}-unknown-linux-musl`, linked
//! against empty `libc.a`/`libunwind.a`, needs a small closed set of C
//! functions. This crate defines them over guest-rt's services, at CPL3
//! (EL1 on arm64), with no `syscall` instruction:
//!
//! | C | over |
//! | --- | --- |
//! | `malloc` family, `mmap` (anonymous) | the guest heap ([`alloc`]) |
//! | `open`, `read`, `write`, `stat`, ... | `--dir` directories through the I/O ring ([`fd`], [`path`]) |
//! | `opendir`, `readdir`, `fstatat`, ... | directory listings of the same ([`dir`]) |
//! | `clock_gettime`, `nanosleep` | the exit-free cycle counter ([`time`]) |
//! | `getenv`, `getauxval`, `sysconf` | BootInfo ([`env`]) |
//! | `syscall` (futex, getrandom) | Wait/Wake, the host's getrandom ([`syscall`]) |
//! | `pthread_*` | guest-rt threads on the vCPU set, a TLS block each ([`pthread`], [`tls`]) |
//! | signals | documented no-ops ([`signal`]) |
//! | `_Unwind_*` | the `unwinding` crate over the image's `.eh_frame_hdr` ([`unwind`]) |
//!
//! Startup ([`start`]): guest-rt boots, then calls `__vessel_app_main`
//! here, which sets the main thread's TLS block, runs `.init_array` and
//! calls the program's C `main(argc, argv, envp)`; its return becomes the
//! VM's exit code, as do `exit(n)` and `abort()` (134).
//!
//! Built and linked by the build tool (`cargo xtask build` for `std`
//! apps under apps/, `cargo xtask pack PATH` for any crate), never named
//! by the program: see guest-rt/README.md, "std programs".
#![no_std]
#![warn(missing_docs)]
#![cfg(vessel_guest)]
// Every function here is a C entry point called by std with raw pointers;
// each says what it assumes of them.
#![allow(clippy::missing_safety_doc)]

extern crate alloc as rust_alloc;

pub mod alloc;
mod arch;
pub mod dir;
pub mod env;
pub mod errno;
pub mod fd;
pub mod path;
pub mod pthread;
pub mod sched;
pub mod signal;
pub mod start;
pub mod string;
pub mod syscall;
pub mod time;
pub mod tls;
pub mod unwind;
