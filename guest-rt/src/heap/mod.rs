//! The global allocator: size classes with per-vCPU caches in front of
//! shared pools, and `linked_list_allocator` for large blocks and for the
//! pools' chunks, over the launcher's heap range (all guest RAM left after
//! the image and the stacks).
//!
//! - Blocks up to 32 KiB ([`class::MAX_SMALL`]) come from one of 24 size
//!   classes ([`class`]): 16-byte steps to 128 bytes, then two per
//!   doubling. An allocation pops the vCPU's cache for its class; an empty
//!   cache takes a batch (about 8 KiB) from the class's shared pool, which
//!   carves chunks (4 KiB growing to 64 KiB) from the large allocator. A
//!   free pushes onto the cache; a cache over two batches gives one back.
//!   So the cost of a small allocation does not grow with the number of
//!   live blocks, and blocks of one size never fragment the large heap.
//! - Larger blocks (and alignments above a page) go to the first-fit
//!   large allocator directly.
//! - `realloc` within one class returns the same block.
//! - Every block is aligned to at least 16 bytes, what the host's malloc
//!   gives (`max_align_t`): vector code on 8-aligned data splits every
//!   other 16-byte load across cache lines.
//! - Memory a class has carved stays with that class (it is reused for
//!   blocks of that class only).
//! - A failed allocation is recorded; the panic that follows
//!   (`memory allocation of N bytes failed`) prints the heap's state:
//!   requested size, used, free and the largest free block ([`failure_report`]).

use core::alloc::{GlobalAlloc, Layout};

mod cache;
pub mod class;
mod list;
mod pool;
mod report;

pub use report::{failure_report, Usage};

/// The allocator: see the module documentation.
struct Heap;

/// A block for `layout` (null when the heap has no room).
#[inline]
fn alloc_block(layout: Layout) -> *mut u8 {
    let p = match class::of(layout) {
        Some(c) => cache::alloc(c),
        None => pool::alloc_large(layout),
    };
    if p.is_null() {
        report::record_failure(layout);
    }
    p
}

/// Free a block from [`alloc_block`].
///
/// # Safety
/// `ptr` came from [`alloc_block`] with `layout` and is not used again.
#[inline]
unsafe fn dealloc_block(ptr: *mut u8, layout: Layout) {
    match class::of(layout) {
        // SAFETY: the caller's contract; the class is a function of the layout.
        Some(c) => unsafe { cache::dealloc(ptr, c) },
        // SAFETY: the caller's contract.
        None => unsafe { pool::dealloc_large(ptr, layout) },
    }
}

// SAFETY: every block is at least as large and as aligned as its layout
// asks (a class's blocks have its size and are aligned to the layouts it
// serves; large blocks come from linked_list_allocator with the layout,
// alignment raised to 16), blocks are never handed out twice, and dealloc
// finds the allocator alloc used from the layout alone.
unsafe impl GlobalAlloc for Heap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        alloc_block(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        unsafe { dealloc_block(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let old_class = class::of(layout);
        if old_class.is_some() && old_class == class::of(new) {
            return ptr;
        }
        let p = alloc_block(new);
        if !p.is_null() {
            // SAFETY: both blocks are valid for the smaller size and are
            // distinct blocks; the old one is freed with its own layout.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                dealloc_block(ptr, layout);
            }
        }
        p
    }
}

// A std program's global allocator is std's `System` (`malloc`, which
// guest-rt/libc serves from this heap with `raw_alloc`).
#[cfg_attr(not(vessel_std), global_allocator)]
static HEAP: Heap = Heap;

pub(crate) fn init(start: u64, size: u64) {
    // SAFETY: the launcher reserved [start, start+size) for the heap; it is
    // mapped, writable and used by nothing else; init runs once, at boot.
    unsafe { pool::LARGE.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap in use and free (free blocks held by the size classes
/// count as free).
pub fn usage() -> (usize, usize) {
    let u = Usage::now();
    (u.used, u.free)
}

/// Allocate from the guest heap directly, whatever the program's global
/// allocator is: the C allocator (`malloc`) of `std` programs, whose global
/// allocator is std's `System`, i.e. `malloc` itself.
///
/// # Safety
/// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
pub unsafe fn raw_alloc(layout: Layout) -> *mut u8 {
    alloc_block(layout)
}

/// Free a block from [`raw_alloc`].
///
/// # Safety
/// As [`GlobalAlloc::dealloc`]: `ptr` came from [`raw_alloc`] with `layout`.
pub unsafe fn raw_dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: the caller's contract.
    unsafe { dealloc_block(ptr, layout) }
}
