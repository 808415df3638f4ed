//! The global allocator: linked_list_allocator over the launcher's heap
//! range, with every block aligned to at least 16 bytes.
//!
//! Why the minimum: linked_list_allocator aligns a block only as far as
//! its layout asks (f32 data: 4 bytes, in practice 8), while the host's
//! malloc gives 16 (`max_align_t`). Vector code on 8-aligned data splits
//! every other 16-byte load across cache lines, so the same kernel ran
//! slower in the guest than natively for that alone.

use core::alloc::{GlobalAlloc, Layout};

use linked_list_allocator::LockedHeap;

/// The least alignment of every heap block (what the host's malloc gives).
const MIN_ALIGN: usize = 16;

/// [`LockedHeap`] with [`MIN_ALIGN`].
struct Heap(LockedHeap);

/// `layout` with its alignment raised to [`MIN_ALIGN`].
fn raised(layout: Layout) -> Option<Layout> {
    layout.align_to(MIN_ALIGN).ok()
}

// SAFETY: every call passes the inner allocator a valid layout (the
// caller's, with a larger power-of-two alignment), and dealloc raises the
// layout exactly as alloc did, so each block is freed with the layout it
// was allocated with.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match raised(layout) {
            // SAFETY: the caller's contract (non-zero size), kept by `raised`.
            Some(l) => unsafe { self.0.alloc(l) },
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(l) = raised(layout) {
            // SAFETY: `ptr` came from `alloc` with this same raised layout.
            unsafe { self.0.dealloc(ptr, l) }
        }
    }
}

// A std program's global allocator is std's `System` (`malloc`, which
// guest-rt/libc serves from this heap with `raw_alloc`).
#[cfg_attr(not(vessel_std), global_allocator)]
static HEAP: Heap = Heap(LockedHeap::empty());

pub(crate) fn init(start: u64, size: u64) {
    // SAFETY: the launcher reserved [start, start+size) for the heap; it is
    // mapped, writable and used by nothing else; init runs once, at boot.
    unsafe { HEAP.0.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap in use and free.
pub fn usage() -> (usize, usize) {
    let h = HEAP.0.lock();
    (h.used(), h.free())
}

/// Allocate from the guest heap directly, whatever the program's global
/// allocator is: the C allocator (`malloc`) of `std` programs, whose global
/// allocator is std's `System`, i.e. `malloc` itself.
///
/// # Safety
/// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
pub unsafe fn raw_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe { HEAP.alloc(layout) }
}

/// Free a block from [`raw_alloc`].
///
/// # Safety
/// As [`GlobalAlloc::dealloc`]: `ptr` came from [`raw_alloc`] with `layout`.
pub unsafe fn raw_dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: the caller's contract.
    unsafe { HEAP.dealloc(ptr, layout) }
}
