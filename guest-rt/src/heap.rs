//! The global allocator: linked_list_allocator over the launcher's heap range.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub(crate) fn init(start: u64, size: u64) {
    // SAFETY: the launcher reserved [start, start+size) for the heap; it is
    // mapped, writable and used by nothing else; init runs once, at boot.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap in use and free.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
