//! A guest for the debugger tests (tests/gdb.rs) and the README's
//! "Debugging" transcript: `square` has a local to read, `vector_mark` is
//! called with ymm3/ymm5 holding known values, `REPEAT` (the number of
//! greetings) can be changed from gdb, and `crash` makes it fault in
//! `crash_here` (for core dumps). Exits with `square % 50 + REPEAT`.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
#![cfg(vessel_guest)]

guest_rt::entry!(main);

/// How many greetings to print; a debugger may change it before they are.
#[no_mangle]
static mut REPEAT: u32 = 1;

/// n squared, through a local the debugger reads.
#[inline(never)]
fn square(n: u64) -> u64 {
    let squared = core::hint::black_box(n) * n;
    core::hint::black_box(squared)
}

/// Where the debugger looks at the vector registers: ymm3 holds 1..=8
/// (as u32 lanes), ymm5 twice that.
#[inline(never)]
#[no_mangle]
extern "C" fn vector_mark() {
    core::hint::black_box(());
}

#[inline(never)]
fn load_vectors(lanes: &[u32; 8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads 32 bytes from `lanes`; the call follows the C ABI
    // (every vector register it may change is declared clobbered).
    unsafe {
        core::arch::asm!(
            "vmovdqu ymm3, [{p}]",
            "vpaddd ymm5, ymm3, ymm3",
            "call {mark}",
            p = in(reg) lanes.as_ptr(),
            mark = sym vector_mark,
            clobber_abi("C"),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        core::hint::black_box(lanes);
        vector_mark();
    }
}

/// A store through a null pointer: the guest's page fault.
#[inline(never)]
fn crash_here(value: u32) {
    let p = core::hint::black_box(core::ptr::null_mut::<u32>());
    // SAFETY: none; faulting is the point (mode `crash`).
    unsafe { p.write_volatile(value) };
}

fn main() -> i32 {
    if guest_rt::env::args().nth(1) == Some("crash") {
        crash_here(7);
    }
    let n = square(core::hint::black_box(12));
    load_vectors(&[1, 2, 3, 4, 5, 6, 7, 8]);
    // SAFETY: a plain read of a u32 no other code writes.
    let times = unsafe { core::ptr::read_volatile(&raw const REPEAT) };
    for i in 0..times.min(100) {
        guest_rt::println!("hello {i}");
    }
    guest_rt::println!("square {n}");
    let times = i32::try_from(times.min(100)).unwrap_or(100);
    (n % 50) as i32 + times
}
