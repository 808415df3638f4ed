//! Exercises files, the I/O ring, stdin, clocks and randomness for the
//! tests, and attacks the launcher with bad requests (`hostile`).
//!
//! `fsprobe [--dir ...] -- STEP...` runs the steps in order and prints one
//! line per step: `STEP ARGS: ok [VALUE]` or `STEP ARGS: err KIND`. Steps:
//! `read P`, `write P TEXT`, `append P TEXT`, `mkdir P`, `rmdir P`, `rm P`,
//! `rename A B`, `stat P`, `ls P`, `roundtrip DIR`, `handles P N`,
//! `async DIR N` (N tasks read DIR/fI at once), `flood P N` (N one-byte
//! writes), `stdin`, `clock`, `random`, `sleep MS`, `hostile DIR`, `wait`,
//! and the `bench-*` steps of `cargo xtask bench io` (see bench.rs).
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

mod bench;
mod hostile;
mod steps;

use alloc::vec::Vec;

use guest_rt::println;

guest_rt::entry!(main);

fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().skip(1).collect();
    let mut rest = &args[..];
    let mut code = 0;
    while let Some((&step, tail)) = rest.split_first() {
        let arity = steps::arity(step);
        let Some(a) = tail.get(..arity) else {
            println!("{step}: missing arguments");
            return 2;
        };
        if !steps::run(step, a) {
            code = 1;
        }
        rest = &tail[arity..];
    }
    code
}
