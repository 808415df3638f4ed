//! The native baseline of `cargo xtask bench smp`: apps/pi's kernel on N
//! host threads (`pi_native THREADS RADIUS`), printing the same `points`
//! and `ns` lines as the guest app. Compiled by the benchmark with
//! `rustc -O`, like the guest's release build.

// Only the counting half of the kernel file is used here.
#[allow(dead_code)]
#[path = "../../../apps/pi/src/kernel.rs"]
mod kernel;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("pi_native THREADS RADIUS"))
        .collect();
    let (threads, r) = (args[0].max(1), args[1].max(1));
    let each = r.div_ceil(threads);
    let start = std::time::Instant::now();
    let points: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let rows = (t * each).min(r)..((t + 1) * each).min(r);
                s.spawn(move || kernel::points_in_rows(r, rows))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    let ns = start.elapsed().as_nanos();
    println!("points {points}");
    println!("threads {threads} ns {ns}");
}
