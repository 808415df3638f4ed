//! Embedding Vessel: load a guest once, register a host function, call
//! guest functions (with and without a reset between calls) and print
//! what each costs.
//!
//! ```sh
//! cargo xtask build
//! cargo run --release -p vmm --example embed [-- GUEST_ELF] [CALLS]
//! ```
//!
//! GUEST_ELF defaults to the `funcs` app's
//! `target/x86_64-unknown-linux-musl/release/funcs` (aarch64 on arm64 hosts).

use std::time::{Duration, Instant};

use vmm::sandbox::Sandbox;

fn default_guest() -> String {
    let target = if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-none"
    } else {
        "x86_64-unknown-linux-musl"
    };
    format!("target/{target}/release/funcs")
}

fn per_call(total: Duration, n: u32) -> String {
    format!("{:.1} us", total.as_secs_f64() * 1e6 / f64::from(n.max(1)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let guest = args.next().unwrap_or_else(default_guest);
    let calls: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let mut host = vmm::Host::open()?;

    let t = Instant::now();
    let mut sb = Sandbox::from_path(&guest)
        .register("prefix", |who: String| {
            Ok::<_, String>(format!("Hello from the host to {who}"))
        })
        .timeout(Duration::from_secs(5))
        .build(&mut host)?;
    println!(
        "sandbox ready in {:?}; exports: {}",
        t.elapsed(),
        sb.exports().join(", ")
    );

    let greeting: String = sb.call("greet", ("guest",))?;
    println!("greet -> {greeting:?}");
    let sum: i64 = sb.call("add", (40i64, 2i64))?;
    println!("add(40, 2) -> {sum}");

    let t = Instant::now();
    for i in 0..calls {
        let _: i64 = sb.call("add", (i64::from(i), 1i64))?;
    }
    println!(
        "{calls} calls of add: {} per call",
        per_call(t.elapsed(), calls)
    );

    let t = Instant::now();
    for _ in 0..calls {
        let _: String = sb.call("greet", ("x",))?;
    }
    println!(
        "{calls} calls of greet (one host call each): {} per call",
        per_call(t.elapsed(), calls)
    );

    let snap = sb.snapshot()?;
    println!("snapshot: {} pages", snap.saved_pages());
    let t = Instant::now();
    for _ in 0..calls {
        let n: u64 = sb.call("bump", ())?;
        sb.restore(&snap)?;
        assert_eq!(n, 1, "each call sees the snapshot's state");
    }
    println!(
        "{calls} calls of bump + restore: {} per call",
        per_call(t.elapsed(), calls)
    );

    let mut fresh = Sandbox::from_snapshot(snap.clone())
        .reset_after_call(true)
        .build(&mut host)?;
    let t = Instant::now();
    for _ in 0..calls {
        let n: u64 = fresh.call("bump", ())?;
        assert_eq!(n, 1);
    }
    println!(
        "{calls} calls with reset_after_call: {} per call",
        per_call(t.elapsed(), calls)
    );

    match sb.call::<()>("spin", ()) {
        Err(e) => println!("spin -> {e} (poisoned: {})", sb.poisoned().is_some()),
        Ok(()) => println!("spin returned?"),
    }
    sb.restore(&snap)?;
    let v: u64 = sb.call("init_value", ())?;
    println!("after restore: init_value -> {v}");
    Ok(())
}
