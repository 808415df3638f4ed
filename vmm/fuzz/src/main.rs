//! `vessel-fuzz TARGET [--seconds N] [--runs R] [--seed S]`: mutate
//! TARGET's seed corpus for N seconds (default 10) or R runs. A panic on any thread saves the input
//! to `vmm/fuzz/crashes/TARGET-N.bin` and exits 1; turn it into a regression
//! test by adding it to `vmm/fuzz/corpus/TARGET/` once fixed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vessel_fuzz::{corpus, mutate, run, TARGETS};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = args.first() else {
        eprintln!(
            "usage: vessel-fuzz TARGET [--seconds N] [--runs R] [--seed S] (targets: {})",
            TARGETS.join(", ")
        );
        std::process::exit(2);
    };
    let flag = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (secs, seed) = (flag("--seconds", 10), flag("--seed", 0x5eed));
    let max_runs = flag("--runs", u64::MAX);
    let seeds = match corpus(target) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) | Err(_) => {
            eprintln!(
                "vessel-fuzz: no seed corpus for `{target}` (targets: {})",
                TARGETS.join(", ")
            );
            std::process::exit(2);
        }
    };
    let found = mutate::catch_thread_panics();
    let mut m = mutate::Mutator::new(seed);
    let (start, mut execs) = (Instant::now(), 0u64);
    while execs < max_runs && start.elapsed() < Duration::from_secs(secs) {
        let i = execs as usize;
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            m.mutate(&seeds[i % seeds.len()], &seeds)
        };
        let r = std::panic::catch_unwind(|| run(target, &input));
        if let Ok(Err(e)) = &r {
            eprintln!("vessel-fuzz: {e}");
            std::process::exit(2);
        }
        if r.is_err() || found.load(Ordering::SeqCst) {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{target}-{execs}.bin"));
            let _ = std::fs::write(&path, &input);
            eprintln!(
                "vessel-fuzz: {target}: panic after {execs} runs; input saved to {}",
                path.display()
            );
            std::process::exit(1);
        }
        execs += 1;
    }
    vessel_fuzz::targets::cleanup();
    let took = start.elapsed().as_secs_f64();
    println!("vessel-fuzz: {target}: {execs} runs in {took:.0} s, no panic");
}
