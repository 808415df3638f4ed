//! Per-vCPU caches in front of the pools: each vCPU keeps up to two
//! batches of free blocks per class, so most allocations and frees touch
//! no shared state. A cache is taken with `try_lock` (uncontended: only its
//! own vCPU uses it); if it is somehow held already, the call goes to the
//! pool directly, so nothing ever waits on a cache.

use spin::Mutex;

use super::class::{batch, COUNT};
use super::list::FreeList;
use super::pool;

/// One vCPU's free blocks, one list per class, on its own cache lines.
#[repr(align(64))]
struct Cache([FreeList; COUNT]);

/// The caches, indexed by vCPU id.
static CACHES: [Mutex<Cache>; vessel_abi::MAX_VCPUS as usize] =
    [const { Mutex::new(Cache([const { FreeList::new() }; COUNT])) };
        vessel_abi::MAX_VCPUS as usize];

/// This vCPU's cache, if it is free to use.
#[inline]
fn mine() -> Option<spin::MutexGuard<'static, Cache>> {
    CACHES
        .get(crate::arch::vcpu_id() as usize)
        .and_then(Mutex::try_lock)
}

/// A block of class `c`, or null when the heap has no room.
#[inline]
pub fn alloc(c: usize) -> *mut u8 {
    let Some(mut cache) = mine() else {
        return pool::take(c, 1).pop().unwrap_or(core::ptr::null_mut());
    };
    let list = &mut cache.0[c];
    if let Some(b) = list.pop() {
        return b;
    }
    *list = pool::take(c, batch(c));
    list.pop().unwrap_or(core::ptr::null_mut())
}

/// Free a block of class `c`.
///
/// # Safety
/// `block` came from [`alloc`] with class `c` and is not used again.
#[inline]
pub unsafe fn dealloc(block: *mut u8, c: usize) {
    let Some(mut cache) = mine() else {
        let mut one = FreeList::new();
        // SAFETY: the caller's contract: a free block of class `c`.
        unsafe { one.push(block) };
        return pool::give(c, one);
    };
    let list = &mut cache.0[c];
    // SAFETY: the caller's contract: a free block of class `c`.
    unsafe { list.push(block) };
    if list.len() > 2 * batch(c) {
        pool::give(c, list.split_off(batch(c)));
    }
}

/// Take class `c`'s free blocks out of every cache not in use now.
pub fn drain(c: usize) -> FreeList {
    let mut out = FreeList::new();
    for cache in CACHES.iter().filter_map(Mutex::try_lock) {
        let mut cache = cache;
        out.append(core::mem::replace(&mut cache.0[c], FreeList::new()));
    }
    out
}

/// Bytes held free in the caches (those not in use right now).
pub fn free_bytes() -> usize {
    CACHES
        .iter()
        .filter_map(Mutex::try_lock)
        .map(|c| {
            c.0.iter()
                .enumerate()
                .map(|(i, l)| l.len() * super::class::size(i))
                .sum::<usize>()
        })
        .sum()
}
