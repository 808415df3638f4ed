//! Greets the world and echoes its arguments; exits 0.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

guest_rt::entry!(main);

fn main() -> i32 {
    let args: alloc::vec::Vec<&str> = guest_rt::env::args().skip(1).collect();
    guest_rt::println!("Hello from a Vessel VM on {}!", guest_rt::arch::NAME);
    guest_rt::println!("args: {:?}", args);
    0
}

extern crate alloc;
