//! Greets the world and echoes its arguments; exits 0.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
// Off the bare-metal guest targets (`cargo clippy --workspace` on the host)
// the app is an empty crate.
#![cfg(target_os = "none")]

guest_rt::entry!(main);

fn main() -> i32 {
    let args: alloc::vec::Vec<&str> = guest_rt::env::args().skip(1).collect();
    guest_rt::println!("Hello from a Vessel VM on {}!", guest_rt::arch::NAME);
    guest_rt::println!("args: {:?}", args);
    0
}

extern crate alloc;
