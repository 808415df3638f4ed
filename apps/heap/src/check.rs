//! The heap's correctness checks (`heap check`, `threads`, `oom`, `reuse`).

use alloc::alloc::{alloc, dealloc, realloc, Layout};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use guest_rt::{eprintln, println, thread};

/// A live block: address, layout, the seed of its pattern.
struct Block {
    p: usize,
    layout: Layout,
    seed: u8,
}

/// Pseudo-random numbers (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The byte ranges of a block that carry its pattern: all of a small
/// block, the first and last 256 bytes of a larger one.
fn spans(len: usize) -> [core::ops::Range<usize>; 2] {
    if len <= 1024 {
        [0..len, len..len]
    } else {
        [0..256, len - 256..len]
    }
}

fn fill(p: usize, len: usize, seed: u8) {
    for r in spans(len) {
        for i in r {
            // SAFETY: `i < len`, inside the live block at `p`.
            unsafe { ((p + i) as *mut u8).write(seed.wrapping_add(i as u8)) };
        }
    }
}

/// Whether the first `len` bytes of the block at `p` still carry the
/// pattern of a block of `full` bytes.
fn intact(p: usize, len: usize, full: usize, seed: u8) -> bool {
    spans(full).into_iter().all(|r| {
        r.filter(|&i| i < len)
            // SAFETY: `i < len`, inside the live block at `p`.
            .all(|i| unsafe { ((p + i) as *const u8).read() } == seed.wrapping_add(i as u8))
    })
}

/// A random layout: mostly small, some up to 40 KiB and 200 KiB, usually
/// aligned to 1..16, sometimes up to 8 KiB.
fn layout(r: &mut Rng) -> Layout {
    let x = r.next();
    let size = match x % 10 {
        0..=6 => 1 + (x >> 8) % 256,
        7 | 8 => 257 + (x >> 8) % 40_000,
        _ => 1 + (x >> 8) % 200_000,
    } as usize;
    let align = if (x >> 40).is_multiple_of(10) {
        32 << ((x >> 44) % 9)
    } else {
        1 << ((x >> 44) % 5)
    };
    Layout::from_size_align(size, align).expect("valid layout")
}

/// Whether `p` is a good block for `l`: non-null, aligned to the layout
/// and to 16.
fn good(p: *mut u8, l: Layout) -> bool {
    !p.is_null() && (p as usize).is_multiple_of(l.align().max(16))
}

/// `ops` random operations with up to 2000 live blocks, every block
/// checked before it goes; ends with everything freed. The error, if any.
fn run(seed: u64, ops: u64) -> Result<usize, &'static str> {
    let mut r = Rng(seed | 1);
    let mut live: Vec<Block> = Vec::with_capacity(2000);
    let mut peak = 0;
    for i in 0..ops {
        let x = r.next();
        if live.len() < 2000 && (live.is_empty() || x % 100 < 45) {
            let l = layout(&mut r);
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { alloc(l) };
            if !good(p, l) {
                return Err("alloc gave a null or misaligned block");
            }
            fill(p as usize, l.size(), i as u8);
            live.push(Block {
                p: p as usize,
                layout: l,
                seed: i as u8,
            });
            peak = peak.max(live.len());
            continue;
        }
        let b = live.swap_remove((x >> 8) as usize % live.len());
        if !intact(b.p, b.layout.size(), b.layout.size(), b.seed) {
            return Err("a block's contents changed while it was live");
        }
        if x % 100 < 80 {
            // SAFETY: `b` was allocated with this layout and is dropped here.
            unsafe { dealloc(b.p as *mut u8, b.layout) };
            continue;
        }
        let new = layout(&mut r).size();
        // SAFETY: as above; `new` is non-zero.
        let p = unsafe { realloc(b.p as *mut u8, b.layout, new) };
        let nl = Layout::from_size_align(new, b.layout.align()).expect("valid layout");
        if !good(p, nl) {
            return Err("realloc gave a null or misaligned block");
        }
        if !intact(
            p as usize,
            new.min(b.layout.size()),
            b.layout.size(),
            b.seed,
        ) {
            return Err("realloc lost the block's contents");
        }
        fill(p as usize, new, i as u8);
        live.push(Block {
            p: p as usize,
            layout: nl,
            seed: i as u8,
        });
    }
    for b in live.drain(..) {
        if !intact(b.p, b.layout.size(), b.layout.size(), b.seed) {
            return Err("a block's contents changed while it was live");
        }
        // SAFETY: allocated with this layout, dropped here.
        unsafe { dealloc(b.p as *mut u8, b.layout) };
    }
    Ok(peak)
}

/// Heap bytes in use now.
fn used() -> usize {
    guest_rt::heap::usage().0
}

/// `heap check OPS`: one run; the heap's use must be back where it was.
pub fn single(ops: u64) -> bool {
    let before = used();
    match run(0x5eed, ops) {
        Ok(peak) => {
            let after = used();
            println!(
                "heap check: {ops} operations, peak {peak} live blocks, used {before} -> {after}"
            );
            after == before
        }
        Err(e) => {
            eprintln!("heap check failed: {e}");
            false
        }
    }
}

/// `heap threads OPS`: a run on every vCPU at once, then blocks allocated
/// on this vCPU and checked and freed on another.
pub fn threads(ops: u64) -> bool {
    let before = used();
    let failed = AtomicUsize::new(0);
    let n = thread::available_parallelism();
    thread::parallel_for(0..n, |r| {
        for i in r {
            if let Err(e) = run(0x1234 + i as u64, ops) {
                eprintln!("vcpu {}: {e}", thread::current_vcpu());
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let blocks: Vec<usize> = (0..10_000usize)
        .map(|i| {
            let l = Layout::from_size_align(1 + i % 300, 8).expect("valid layout");
            // SAFETY: non-zero size.
            let p = unsafe { alloc(l) } as usize;
            fill(p, l.size(), i as u8);
            p
        })
        .collect();
    let here = thread::current_vcpu();
    let freer = thread::spawn(move || {
        let ok = blocks.iter().enumerate().all(|(i, &p)| {
            let l = Layout::from_size_align(1 + i % 300, 8).expect("valid layout");
            let good = intact(p, l.size(), l.size(), i as u8);
            // SAFETY: allocated above with this layout, freed once here.
            unsafe { dealloc(p as *mut u8, l) };
            good
        });
        (ok, thread::current_vcpu())
    });
    // Leave the thread to an idle vCPU (join would run it here).
    let t = guest_rt::time::Instant::now();
    while !freer.is_finished() && t.elapsed().as_secs() < 5 {
        core::hint::spin_loop();
    }
    let (ok, there) = freer.join();
    let after = used();
    let fails = failed.load(Ordering::Relaxed);
    println!(
        "heap threads: {n} vCPUs x {ops} operations, {fails} failed; 10000 blocks from vcpu {here} freed on vcpu {there}: {}; used {before} -> {after}",
        if ok { "intact" } else { "CHANGED" }
    );
    // Nothing leaked: the runs' and the 10000 blocks' bytes are back (the
    // thread machinery may keep a little).
    fails == 0 && ok && there != here && after <= before + (16 << 10)
}

/// `heap oom`: 1 MiB vectors until the heap is full (never returns: the
/// allocation failure panics, exit 101).
pub fn oom() -> bool {
    let mut v: Vec<Vec<u8>> = Vec::with_capacity(1 << 16);
    loop {
        v.push(alloc::vec![1u8; 1 << 20]);
        core::hint::black_box(&v);
    }
}

/// Allocate blocks of `size` until the heap is full, linking each to the
/// previous through its first word; the chain's head and count.
fn fill_heap(size: usize) -> (usize, usize) {
    let l = Layout::from_size_align(size, 16).expect("valid layout");
    let (mut head, mut n) = (0usize, 0);
    loop {
        // SAFETY: non-zero size.
        let p = unsafe { alloc(l) };
        if p.is_null() {
            return (head, n);
        }
        // SAFETY: a fresh block of `size` >= 8 bytes.
        unsafe { p.cast::<usize>().write(head) };
        (head, n) = (p as usize, n + 1);
    }
}

/// Free a chain from [`fill_heap`].
fn free_chain(mut head: usize, size: usize) {
    let l = Layout::from_size_align(size, 16).expect("valid layout");
    while head != 0 {
        // SAFETY: a block of the chain: its first word is the next one.
        let next = unsafe { (head as *const usize).read() };
        // SAFETY: allocated by fill_heap with `l`, freed once.
        unsafe { dealloc(head as *mut u8, l) };
        head = next;
    }
}

/// `heap reuse`: fill the heap with 1000-byte blocks, free them, then
/// fill it with 100 KiB blocks: the second fill must get at least 80% of
/// the bytes of the first (freed class blocks go back to the large
/// allocator when it runs out).
pub fn reuse() -> bool {
    let (head, small) = fill_heap(1000);
    free_chain(head, 1000);
    let (head, large) = fill_heap(100 << 10);
    free_chain(head, 100 << 10);
    let (a, b) = (small * 1000, large * (100 << 10));
    println!("heap reuse: {small} small blocks ({a} bytes), then {large} large ({b} bytes)");
    b >= a / 10 * 8
}
