//! The shared side of the heap: the large-block allocator
//! (`linked_list_allocator`, first fit over everything left) and, per size
//! class, a pool of free blocks and the unused tail of its newest chunk.
//!
//! Lock order: a vCPU's cache, a class's pool, then the large allocator;
//! nothing waits for a pool or a cache while holding the large allocator,
//! and [`reclaim`] only tries (`try_lock`) pools and caches.

use core::alloc::Layout;
use core::ptr::{null_mut, NonNull};

use linked_list_allocator::Heap;
use spin::Mutex;

use super::class::{self, COUNT, MIN_ALIGN};
use super::list::FreeList;

/// The first chunk of a class: at least this many bytes...
const FIRST_CHUNK: usize = 4 << 10;
/// ...doubling per chunk up to this (or 4 blocks of the class).
const MAX_CHUNK: usize = 64 << 10;

/// One class's shared blocks.
pub struct Pool {
    /// Freed blocks handed back by the vCPU caches.
    pub free: FreeList,
    /// The unused part of the newest chunk: [bump, end).
    bump: usize,
    end: usize,
    /// The size of the next chunk.
    next_chunk: usize,
}

impl Pool {
    const fn new() -> Self {
        Pool {
            free: FreeList::new(),
            bump: 0,
            end: 0,
            next_chunk: 0,
        }
    }

    /// Bytes still uncarved in the newest chunk.
    pub fn tail(&self) -> usize {
        self.end - self.bump
    }
}

/// The large-block allocator.
pub static LARGE: Mutex<Heap> = Mutex::new(Heap::empty());

/// The pools, one per class.
pub static POOLS: [Mutex<Pool>; COUNT] = [const { Mutex::new(Pool::new()) }; COUNT];

/// `layout` with its alignment raised to 16, as every block has.
pub fn raised(layout: Layout) -> Option<Layout> {
    layout.align_to(MIN_ALIGN).ok()
}

/// A large block (null when the heap has no room, even after
/// [`reclaim`]).
pub fn alloc_large(layout: Layout) -> *mut u8 {
    let Some(l) = raised(layout) else {
        return null_mut();
    };
    let first = LARGE.lock().allocate_first_fit(l);
    match first {
        Ok(p) => p.as_ptr(),
        Err(()) if reclaim() => LARGE
            .lock()
            .allocate_first_fit(l)
            .map_or(null_mut(), NonNull::as_ptr),
        Err(()) => null_mut(),
    }
}

/// Hand every free class block (pools and the caches not in use) back to
/// the large allocator, where neighbours coalesce: a program that freed
/// many small blocks can then allocate large ones. Only when an
/// allocation would fail otherwise. Busy pools and caches are skipped
/// (never waited for: the caller may hold one). True when anything was
/// handed back.
fn reclaim() -> bool {
    let mut any = false;
    for (c, pool) in POOLS.iter().enumerate() {
        let Some(mut pool) = pool.try_lock() else {
            continue;
        };
        let mut blocks = core::mem::replace(&mut pool.free, FreeList::new());
        blocks.append(super::cache::drain(c));
        any |= !blocks.is_empty() || pool.tail() > 0;
        let size = class::size(c);
        while let Some(b) = blocks.pop() {
            // SAFETY: `b` is a free block of class `c`, carved from a chunk
            // of the large allocator: a 16-aligned run of `size` bytes
            // nothing uses, which the large allocator takes back as a hole.
            unsafe { give_back(b, size) };
        }
        if pool.tail() > 0 {
            // SAFETY: the chunk's uncarved tail, used by nothing.
            unsafe { give_back(pool.bump as *mut u8, pool.tail()) };
            (pool.bump, pool.end) = (0, 0);
        }
    }
    any
}

/// Free `len` bytes at `p` into the large allocator.
///
/// # Safety
/// `[p, p + len)` is heap memory nothing uses, 16-aligned, `len` a
/// non-zero multiple of 16.
unsafe fn give_back(p: *mut u8, len: usize) {
    if let (Some(p), Ok(l)) = (NonNull::new(p), Layout::from_size_align(len, MIN_ALIGN)) {
        // SAFETY: the caller's contract.
        unsafe { LARGE.lock().deallocate(p, l) }
    }
}

/// Free a block from [`alloc_large`].
///
/// # Safety
/// `ptr` came from [`alloc_large`] with this `layout` and is not used again.
pub unsafe fn dealloc_large(ptr: *mut u8, layout: Layout) {
    if let (Some(l), Some(p)) = (raised(layout), NonNull::new(ptr)) {
        // SAFETY: the caller's contract; the layout is raised as in alloc.
        unsafe { LARGE.lock().deallocate(p, l) }
    }
}

/// Take up to `want` (>= 1) blocks of class `c` from its pool, carving a
/// new chunk when the pool is empty: the blocks as a list (empty when the
/// heap has no room).
pub fn take(c: usize, want: usize) -> FreeList {
    let mut pool = POOLS[c].lock();
    let got = pool.free.split_off(want);
    if !got.is_empty() {
        return got;
    }
    let size = class::size(c);
    if pool.tail() < size && !new_chunk(&mut pool, c) {
        return FreeList::new();
    }
    let mut out = FreeList::new();
    while out.len() < want && pool.tail() >= size {
        let block = pool.bump as *mut u8;
        pool.bump += size;
        // SAFETY: `block` is a fresh, unused block of this class inside a
        // chunk the pool owns, at least 16 bytes and 16-aligned.
        unsafe { out.push(block) };
    }
    out
}

/// Give class `c`'s pool a new chunk (its old tail, too small for a block,
/// is left unused); false when the heap has no room.
fn new_chunk(pool: &mut Pool, c: usize) -> bool {
    let size = class::size(c);
    // A whole number of blocks, so no tail is ever left unused.
    let bytes = pool.next_chunk.max(FIRST_CHUNK).max(size) / size * size;
    let Ok(layout) = Layout::from_size_align(bytes, class::chunk_align(c)) else {
        return false;
    };
    let p = alloc_large(layout);
    if p.is_null() {
        return false;
    }
    pool.bump = p as usize;
    pool.end = pool.bump + bytes;
    pool.next_chunk = (bytes * 2).min(MAX_CHUNK.max(4 * size));
    true
}

/// Give blocks of class `c` back to its pool.
pub fn give(c: usize, blocks: FreeList) {
    POOLS[c].lock().free.append(blocks);
}

/// Bytes held free in the pools (free lists and chunk tails).
pub fn free_bytes() -> usize {
    POOLS
        .iter()
        .enumerate()
        .map(|(c, p)| {
            let p = p.lock();
            p.free.len() * class::size(c) + p.tail()
        })
        .sum()
}
