//! A library guest: functions a host program calls through `vmm::Sandbox`
//! (the embedding tests, `vmm/examples/embed.rs`, `cargo xtask bench
//! embed`), including hostile ones that never return, panic, fault or
//! break the protocol.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::host;

guest_rt::entry!(main);

/// Set during initialisation; calls see it (a restore brings it back).
static INIT: AtomicU64 = AtomicU64::new(0);
/// Counts calls of `bump` since the last restore.
static COUNT: AtomicU64 = AtomicU64::new(0);
/// Memory `touch` writes: 64 pages.
static mut SCRATCH: [u8; 64 * 4096] = [0; 64 * 4096];

fn main() {
    INIT.store(42, Ordering::Relaxed);
    guest_rt::export::serve(EXPORTS)
}

guest_rt::exports! {
    EXPORTS:
    /// Nothing: the bare cost of a call.
    fn nop() {}

    fn add(a: i64, b: i64) -> i64 { a.wrapping_add(b) }

    /// The value set at initialisation.
    fn init_value() -> u64 { INIT.load(Ordering::Relaxed) }

    /// Count up; with a reset after each call it is always 1.
    fn bump() -> u64 { COUNT.fetch_add(1, Ordering::Relaxed) + 1 }

    /// Length and byte sum of `data`, read where the host wrote it.
    fn sum_bytes(data: &[u8]) -> (u64, u64) {
        (data.len() as u64, data.iter().map(|&b| u64::from(b)).sum())
    }

    /// Where `data` lies in guest memory (shows arguments are not copied).
    fn addr_of(data: &[u8]) -> u64 { data.as_ptr() as u64 }

    fn echo(data: Vec<u8>) -> Vec<u8> { data }

    /// Greet through host function `prefix`.
    fn greet(name: &str) -> String {
        match host::call::<String>("prefix", (name,)) {
            Ok(p) => alloc::format!("{p}, {name}!"),
            Err(e) => alloc::format!("host call failed: {e:?}"),
        }
    }

    /// Call host function `name` with `(a,)`; its `i64`, or -1 with the
    /// error printed on stdout.
    fn call_host(name: &str, a: i64) -> i64 {
        match host::call::<i64>(name, (a,)) {
            Ok(v) => v,
            Err(e) => {
                guest_rt::println!("host error: {e:?}");
                -1
            }
        }
    }

    /// Re-entry: host function `down` calls `recurse(n - 1)` back.
    fn recurse(n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        host::call::<u32>("down", (n - 1,)).map(|v| v + 1).unwrap_or(1000)
    }

    /// Write `pages` pages of scratch memory (restore cost grows with them).
    fn touch(pages: u32) -> u32 {
        let n = (pages as usize).min(64);
        for p in 0..n {
            // SAFETY: one vCPU; nothing else borrows SCRATCH.
            unsafe { (*core::ptr::addr_of_mut!(SCRATCH))[p * 4096] = p as u8 + 1 };
        }
        n as u32
    }

    /// `n` raw doorbell exits (a clock hypercall each): the benchmark's
    /// baseline for one exit.
    fn exits(n: u32) -> u64 {
        let mut t = 0;
        for _ in 0..n {
            t = guest_rt::time::host_monotonic_ns();
        }
        t
    }

    /// `n` calls of host function `nop`.
    fn host_calls(n: u32) -> u32 {
        let mut ok = 0;
        for _ in 0..n {
            ok += u32::from(host::call::<()>("nop", ()).is_ok());
        }
        ok
    }

    /// Print a line on stdout.
    fn say(text: &str) { guest_rt::println!("{text}"); }

    // Hostile functions.

    /// Never returns.
    fn spin() { loop { core::hint::spin_loop() } }

    fn panic_now(msg: &str) { panic!("asked to panic: {msg}") }

    /// A page fault: a write to an unmapped address.
    fn fault() {
        // SAFETY: deliberately not: the launcher reports the fault.
        unsafe { core::ptr::write_volatile(0x5ead_0000_0000 as *mut u64, 1) }
    }

    fn exit_now(code: i32) { guest_rt::process::exit(code) }

    /// Return garbage: a Serve whose result is not a valid encoding.
    fn garbage() -> u64 {
        let junk = [0xffu8; 7];
        raw_serve(vessel_abi_status_result(), guest_rt::hypercall::slice(&junk));
        0
    }

    /// Corrupt the protocol: a result buffer outside guest memory.
    fn scribble() {
        let wild = guest_rt::abi::GuestSlice { addr: 0xffff_ffff_0000, len: 1 << 40 };
        raw_serve(vessel_abi_status_result(), wild);
    }
}

fn vessel_abi_status_result() -> u32 {
    guest_rt::abi::embed::status::RESULT
}

/// A Serve made by hand, outside the runtime's protocol code.
fn raw_serve(status: u32, done: guest_rt::abi::GuestSlice) {
    let free = guest_rt::abi::GuestSlice { addr: 0, len: 0 };
    let _ = guest_rt::hypercall::call(guest_rt::abi::Call::Serve { status, done, free });
}
