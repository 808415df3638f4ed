//! The native side of `vector --bench`, as a separate program: the same
//! loop on the host, printing the same `bench ...` lines. What a kernel
//! crate of your own adds for `cargo xtask bench lines` (guest-rt/README.md):
//!
//! ```sh
//! cargo xtask bench lines vector-lines --guest target/vessel/vector \
//!     --native cargo run -q --release -p vessel-kernels --example native
//! ```

fn main() {
    let t0 = std::time::Instant::now();
    let now = || t0.elapsed().as_nanos() as u64;
    vessel_kernels::bench::run(&mut vessel_kernels::available(), &now, &mut |s| {
        println!("{}", s.line());
    });
}
