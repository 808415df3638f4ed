//! Exercises the runtime's paths for the integration tests: `selftest MODE [ARG]`.
//!
//! Modes: `exit N`, `panic`, `fault` (write to an unmapped address), `ud`
//! (invalid opcode), `spin` (never ends), `env KEY`, `abort MSG`, `heap MIB`,
//! `stderr TEXT`, `clock`, `stdin`, `sve` (the SVE vector length RDVL reports, or `sve off`);
//! threads on several vCPUs: the `smp-*` modes in `smp.rs`; the deadlock
//! report: the `deadlock-*` modes in `deadlock.rs`.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

mod deadlock;
mod smp;

use alloc::{string::String, vec::Vec};
use guest_rt::{eprintln, println};

guest_rt::entry!(main);

fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    if let Some(code) = smp::run(arg(1), arg(2)) {
        return code;
    }
    if let Some(code) = deadlock::run(arg(1)) {
        return code;
    }
    match arg(1) {
        "exit" => arg(2).parse().unwrap_or(2),
        "panic" => {
            let v: Vec<u32> = Vec::new();
            let i = args.len() + 7;
            println!("about to index {i}");
            v[i].cast_signed()
        }
        "fault" => fault(),
        "null" => {
            // SAFETY: deliberately reads the guard page at 0 to raise #PF.
            unsafe { core::ptr::without_provenance::<u64>(8).read_volatile() as i32 }
        }
        "ud" => guest_rt::process::trap(),
        "forge-fault" => forge_fault(),
        "spin" => spin(),
        "env" => env(arg(2)),
        "abort" => guest_rt::process::abort(arg(2)),
        "heap" => heap(arg(2).parse().unwrap_or(1)),
        "stderr" => {
            eprintln!("{}", arg(2));
            0
        }
        "clock" => clock(),
        "hostile" => hostile(arg(2)),
        "lines" => {
            for i in 0..arg(2).parse().unwrap_or(10) {
                println!("line {i}");
            }
            0
        }
        "stdin" => stdin(),
        "sve-pattern" => sve_pattern(),
        "sve" => {
            match guest_rt::arch::sve_vector_bits() {
                Some(bits) => println!("sve {bits} bits"),
                None => println!("sve off"),
            }
            0
        }
        other => {
            eprintln!("selftest: unknown mode {other:?}");
            2
        }
    }
}

/// Print, then store to an unmapped address: a diagnosed #PF, with the
/// printed line recovered from the stdout buffer.
fn fault() -> i32 {
    println!("storing to 0xdead0000");
    let p = 0xdead_0000u64 as *mut u64;
    // SAFETY: deliberately not safe: this address is unmapped and the
    // store raises #PF, which is the behaviour under test.
    unsafe { p.write_volatile(42) };
    0
}

/// Print, then never end (for `--timeout`).
fn spin() -> i32 {
    println!("spinning");
    let mut x = 0u64;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
    }
}

/// Print `KEY=VALUE`, or `KEY unset` and exit 3.
fn env(key: &str) -> i32 {
    match guest_rt::env::var(key) {
        Some(v) => {
            println!("{}={}", key, v);
            0
        }
        None => {
            println!("{} unset", key);
            3
        }
    }
}

/// Allocate and touch `mib` MiB of heap.
fn heap(mib: usize) -> i32 {
    let mut v: Vec<u8> = Vec::with_capacity(mib << 20);
    v.resize(mib << 20, 0xa5);
    let sum: u64 = v.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    println!("heap ok {} MiB sum {}", mib, sum);
    0
}

/// Host and guest clocks over the same busy loop, and the realtime clock.
fn clock() -> i32 {
    let t0 = guest_rt::time::host_monotonic_ns();
    let i = guest_rt::time::Instant::now();
    let mut x = 0u64;
    for k in 0..1_000_000u64 {
        x = core::hint::black_box(x ^ k);
    }
    let t1 = guest_rt::time::host_monotonic_ns();
    println!(
        "host {} ns guest {} ns realtime {}",
        t1 - t0,
        i.elapsed().as_nanos(),
        guest_rt::time::realtime_ns()
    );
    0
}

/// Read stdin to EOF and print its size and text.
fn stdin() -> i32 {
    let mut all = String::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = guest_rt::console::read_stdin(&mut buf) {
        if n == 0 {
            break;
        }
        all.push_str(core::str::from_utf8(&buf[..n]).unwrap_or("?"));
    }
    println!("read {} bytes: {}", all.len(), all.trim_end());
    0
}

/// Malformed hypercalls: each must get an error code back, never crash the
/// launcher. Prints one `name status` line per probe. With `badframe`, ends
/// by ringing the doorbell with a frame address outside guest memory.
fn hostile(then: &str) -> i32 {
    use guest_rt::abi::{nr, Frame};
    use guest_rt::hypercall::call_frame;
    let frame = |n: u32, args: [u64; 6]| Frame {
        nr: n,
        status: 0,
        args,
        ret: 0,
        ret2: 0,
    };
    let probes: [(&str, Frame); 10] = [
        ("unknown-number", frame(0xdead, [0; 6])),
        (
            "write-huge-len",
            frame(nr::WRITE, [1, 0x20_0000, u64::MAX, 0, 0, 0]),
        ),
        (
            "write-wrapping",
            frame(nr::WRITE, [1, u64::MAX - 4, 64, 0, 0, 0]),
        ),
        (
            "write-outside-ram",
            frame(nr::WRITE, [1, 0xc000_0000, 16, 0, 0, 0]),
        ),
        ("write-bad-fd", frame(nr::WRITE, [9, 0x20_0000, 1, 0, 0, 0])),
        (
            "write-fd-too-wide",
            frame(nr::WRITE, [1 << 40, 0x20_0000, 1, 0, 0, 0]),
        ),
        (
            "read-into-nowhere",
            frame(nr::READ, [0, u64::MAX - 8, 4096, 0, 0, 0]),
        ),
        (
            "random-outside-ram",
            frame(nr::RANDOM, [0x8000_0000_0000, 32, 0, 0, 0, 0]),
        ),
        ("clock-bad-id", frame(nr::CLOCK, [77, 0, 0, 0, 0, 0])),
        (
            "apf-not-offered",
            frame(nr::APF_ENABLE, [0x10_0000, 0x40, 0, 0, 0, 0]),
        ),
    ];
    for (name, f) in probes {
        let answer = call_frame(f);
        println!("{name} {}", answer.status);
    }
    if then == "badframe" {
        println!("ringing with a bad frame");
        guest_rt::console::flush_all();
        guest_rt::hypercall::ring_raw(0xffff_ffff_ffff_fff8);
        println!("still alive?");
    }
    0
}

/// Leave known values in z30 and p14 and exit at once, so `--dump-regs` can
/// be checked: z30 holds bytes 0, 1, 2, ... and p14 is `ptrue p14.s`.
#[cfg(target_arch = "aarch64")]
fn sve_pattern() -> i32 {
    if guest_rt::arch::sve_vector_bits().is_none() {
        eprintln!("sve-pattern: SVE is off");
        return 2;
    }
    // SAFETY: SVE is enabled (checked above); the asm writes only z30 and
    // p14, which no Rust code on the exit path uses.
    unsafe {
        core::arch::asm!(
            ".arch_extension sve",
            "index z30.b, #0, #1",
            "ptrue p14.s",
            options(nomem, nostack)
        );
    }
    guest_rt::process::exit(0)
}

#[cfg(not(target_arch = "aarch64"))]
fn sve_pattern() -> i32 {
    eprintln!("sve-pattern: SVE is an arm64 extension");
    2
}

/// Store a made-up fault report to the fault doorbell from app code, as
/// only the exception stubs may: the launcher must call it a forgery.
fn forge_fault() -> i32 {
    #[cfg(target_arch = "aarch64")]
    use guest_rt::abi::arch::aarch64::DOORBELL_FAULT;
    #[cfg(target_arch = "x86_64")]
    use guest_rt::abi::arch::x86_64::DOORBELL_FAULT;
    let frame = [0u64; 8];
    // SAFETY: the doorbell page has no memory behind it: the store exits to
    // the launcher and writes nothing.
    unsafe { core::ptr::write_volatile(DOORBELL_FAULT as *mut u64, frame.as_ptr() as u64) };
    0
}
