//! An ordinary `std` program, unmodified: arguments, environment, files,
//! time, threads, thread-locals, HashMap and a panic with a message. The
//! test suite builds it for Vessel and for the host and compares outputs.
//!
//! `std-hello [DIR]`: with DIR, writes, reads back and removes a file in
//! it. `std-hello --panic` panics on the main thread, `--thread-panic` in
//! a spawned thread (whose join then reports it), `--catch` panics inside
//! `catch_unwind` (with a value dropped on the way out), `--exit N` exits
//! with N, `--features` prints what std's CPU feature detection says.
use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

thread_local! {
    static SLOT: Cell<u64> = const { Cell::new(7) };
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("args: {args:?}");
    match args.first().map(String::as_str) {
        Some("--panic") => panic!("std-hello was asked to panic"),
        Some("--exit") => std::process::exit(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3)),
        Some("--thread-panic") => {
            let r = std::thread::spawn(|| panic!("a spawned thread panics")).join();
            println!("join: {}", if r.is_err() { "Err" } else { "Ok" });
            return;
        }
        Some("--features") => {
            features();
            return;
        }
        Some("--catch") => {
            catch();
            return;
        }
        _ => {}
    }
    println!("GREETING={:?}", std::env::var("GREETING"));
    println!("MISSING={:?}", std::env::var("STD_HELLO_MISSING").ok());

    let mut words: HashMap<&str, usize> = HashMap::new();
    for w in "the cat and the dog and the bird".split(' ') {
        *words.entry(w).or_default() += 1;
    }
    let mut counts: Vec<_> = words.into_iter().collect();
    counts.sort();
    println!("words: {counts:?}");

    let t0 = Instant::now();
    let handles: Vec<_> = (0..3u64)
        .map(|i| {
            std::thread::spawn(move || {
                SLOT.with(|s| s.set(s.get() * 100 + i));
                let sum: u64 = (0..100_000u64).map(|x| x % (i + 2)).sum();
                (SLOT.with(Cell::get), sum, Instant::now() >= t0)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (slot, sum, later) = h.join().expect("thread result");
        println!("thread {i}: tls {slot} sum {sum} monotonic {later}");
    }
    println!("main tls {}", SLOT.with(Cell::get));
    let t1 = Instant::now();
    println!(
        "elapsed ok: {}",
        t1 >= t0 && t1 - t0 < Duration::from_secs(60)
    );
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() > 1_600_000_000);
    println!("wall clock after 2020: {wall:?}");

    if let Some(dir) = args.first() {
        files(dir);
    }
}

/// std's run-time feature detection (getauxval(AT_HWCAP) and CPUID).
#[cfg(target_arch = "x86_64")]
fn features() {
    println!("sse2: {}", std::arch::is_x86_feature_detected!("sse2"));
    println!("avx2: {}", std::arch::is_x86_feature_detected!("avx2"));
}

/// std's run-time feature detection (getauxval(AT_HWCAP)).
#[cfg(target_arch = "aarch64")]
fn features() {
    println!("neon: {}", std::arch::is_aarch64_feature_detected!("neon"));
    println!("sve: {}", std::arch::is_aarch64_feature_detected!("sve"));
}

/// Prints on drop: shows that unwinding runs destructors.
struct Loud(&'static str);

impl Drop for Loud {
    fn drop(&mut self) {
        println!("dropped {}", self.0);
    }
}

fn catch() {
    let r = std::panic::catch_unwind(|| {
        let _guard = Loud("guard");
        let n = std::env::args().count();
        if n > 0 {
            panic!("caught panic with {n} args");
        }
        7
    });
    let msg = r
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned());
    println!("caught: {msg:?}");
    let ok = std::panic::catch_unwind(|| 7);
    println!("no panic: {ok:?}");
}

fn files(dir: &str) {
    let path = format!("{dir}/std-hello.txt");
    std::fs::write(&path, "line one\nline two\n").expect("write");
    let text = std::fs::read_to_string(&path).expect("read back");
    println!("read {} bytes, {} lines", text.len(), text.lines().count());
    let meta = std::fs::metadata(&path).expect("metadata");
    println!("metadata: len {} file {}", meta.len(), meta.is_file());
    let missing = std::fs::read(format!("{dir}/no-such-file"));
    println!("missing: {:?}", missing.map_err(|e| e.kind()));
    std::fs::remove_file(&path).expect("remove");
    println!(
        "exists after remove: {}",
        std::fs::exists(&path).unwrap_or(true)
    );
}
