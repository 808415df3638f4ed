//! The native baseline of `cargo xtask bench alloc`: apps/heap's kernels
//! with the host's malloc, printing the same `bench ...` lines as
//! `heap --bench`. Compiled by the benchmark with `rustc -O`, like the
//! guest's release build.

extern crate alloc;

#[path = "../../../apps/heap/src/kernel.rs"]
mod kernel;

fn main() {
    for (k, size, n) in kernel::CASES {
        let t = std::time::Instant::now();
        let sum = kernel::run(k, n);
        let ns = t.elapsed().as_nanos();
        println!("bench kernel={k} impl=rust isa={size} unit=ms ops={n} ns={ns} checksum={sum}");
    }
}
