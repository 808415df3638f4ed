//! The C allocator (`malloc`, `calloc`, `realloc`, `free`,
//! `posix_memalign`, `aligned_alloc`) and anonymous `mmap`, over the guest
//! heap.
//!
//! std's global allocator in a C-library program is `System`, which is
//! `malloc`: so these go to guest-rt's heap directly
//! ([`guest_rt::heap::raw_alloc`]), never through Rust's global allocator
//! (that would come back here). Each block carries a 16-byte header
//! (alignment, total size) just below the pointer handed out, so `free`
//! needs no size.

use core::ffi::{c_int, c_void};
use core::ptr::null_mut;

use rust_alloc::vec::Vec;
use spin::Mutex;

use crate::errno::set_errno;
use guest_rt::heap::{raw_alloc, raw_dealloc};

use core::alloc::Layout;

/// What malloc guarantees (`max_align_t`), and the header's size.
const MIN_ALIGN: usize = 16;
/// The page size `mmap` rounds to (and `sysconf(_SC_PAGESIZE)` reports).
pub const PAGE: usize = 4096;

/// A block of `size` usable bytes aligned to `align` (a power of two).
fn alloc_block(size: usize, align: usize) -> *mut c_void {
    let align = align.max(MIN_ALIGN);
    let Some(total) = size.checked_add(align) else {
        return null_mut();
    };
    let Ok(layout) = Layout::from_size_align(total, align) else {
        return null_mut();
    };
    // SAFETY: `total` >= 16 is non-zero.
    let base = unsafe { raw_alloc(layout) };
    if base.is_null() {
        return null_mut();
    }
    // SAFETY: `align` >= 16 bytes lie before the user pointer, inside the
    // block: room for the two-word header.
    unsafe {
        let user = base.add(align);
        user.cast::<usize>().sub(2).write(align);
        user.cast::<usize>().sub(1).write(total);
        user.cast()
    }
}

/// The header of a block from [`alloc_block`]: (alignment, total size).
///
/// # Safety
/// `p` came from [`alloc_block`] and was not freed.
unsafe fn header(p: *mut c_void) -> (usize, usize) {
    // SAFETY: the caller's contract: the header lies just below `p`.
    unsafe {
        (
            p.cast::<usize>().sub(2).read(),
            p.cast::<usize>().sub(1).read(),
        )
    }
}

/// Allocate `size` bytes aligned to 16; null (ENOMEM) when the heap is full.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    let p = alloc_block(size, MIN_ALIGN);
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p
}

/// Allocate `n * size` zeroed bytes.
#[no_mangle]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(bytes) = n.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return null_mut();
    };
    let p = malloc(bytes);
    if !p.is_null() {
        // SAFETY: `p` has `bytes` writable bytes.
        unsafe { p.cast::<u8>().write_bytes(0, bytes) };
    }
    p
}

/// Free a block from this allocator (null: nothing).
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: C's contract: `p` came from this allocator, not yet freed.
    unsafe {
        let (align, total) = header(p);
        let base = p.cast::<u8>().sub(align);
        raw_dealloc(base, Layout::from_size_align_unchecked(total, align));
    }
}

/// Resize a block, keeping its contents up to the smaller size.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return malloc(size);
    }
    // SAFETY: C's contract: `p` is live and from this allocator.
    let (align, total) = unsafe { header(p) };
    let old = total - align;
    if size <= old && size >= old / 2 {
        return p;
    }
    let q = alloc_block(size, align);
    if q.is_null() {
        set_errno(libc::ENOMEM);
        return null_mut();
    }
    // SAFETY: both blocks are live, distinct, and hold at least the bytes
    // copied; then the old one is freed once.
    unsafe {
        core::ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), old.min(size));
        free(p);
    }
    q
}

/// `*out` = `size` bytes aligned to `align` (a power of two, a multiple of
/// the pointer size); EINVAL or ENOMEM otherwise.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<usize>()) {
        return libc::EINVAL;
    }
    let p = alloc_block(size, align);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: C's contract: `out` is writable.
    unsafe { out.write(p) };
    0
}

/// `size` bytes aligned to `align` (C11).
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return null_mut();
    }
    let p = alloc_block(size, align);
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p
}

/// Anonymous mappings handed out: (address, rounded length).
static MAPPINGS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Anonymous private memory (zeroed, page aligned) from the heap. File
/// mappings are not offered: ENODEV (an `io::Error` of kind `Other`, with
/// "No such device"; see guest-rt/README.md).
#[no_mangle]
pub extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    _prot: c_int,
    flags: c_int,
    fd: c_int,
    _off: i64,
) -> *mut c_void {
    if flags & libc::MAP_ANONYMOUS == 0 || fd != -1 {
        set_errno(libc::ENODEV);
        return libc::MAP_FAILED;
    }
    if flags & libc::MAP_FIXED != 0 && !addr.is_null() {
        set_errno(libc::EINVAL);
        return libc::MAP_FAILED;
    }
    let Some(rounded) = len.checked_next_multiple_of(PAGE).filter(|&l| l > 0) else {
        set_errno(libc::EINVAL);
        return libc::MAP_FAILED;
    };
    let Ok(layout) = Layout::from_size_align(rounded, PAGE) else {
        set_errno(libc::ENOMEM);
        return libc::MAP_FAILED;
    };
    // SAFETY: `rounded` is non-zero.
    let p = unsafe { raw_alloc(layout) };
    if p.is_null() {
        set_errno(libc::ENOMEM);
        return libc::MAP_FAILED;
    }
    // SAFETY: the block has `rounded` writable bytes.
    unsafe { p.write_bytes(0, rounded) };
    MAPPINGS.lock().push((p as usize, rounded));
    p.cast()
}

/// Unmap a whole mapping from [`mmap`]; a part of one is left mapped (the
/// heap cannot give back part of a block), and that is not an error.
#[no_mangle]
pub extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    let mut maps = MAPPINGS.lock();
    let whole = len.checked_next_multiple_of(PAGE).unwrap_or(0);
    if let Some(i) = maps
        .iter()
        .position(|&(a, l)| a == addr as usize && l == whole)
    {
        let (a, l) = maps.swap_remove(i);
        // SAFETY: (a, l) is a live mapping from `mmap`, allocated with
        // exactly this layout, removed from the table before it is freed.
        unsafe { raw_dealloc(a as *mut u8, Layout::from_size_align_unchecked(l, PAGE)) };
    }
    0
}

/// Page protections are not enforced (the guest's pages are all
/// read-write): accepted and ignored, so std's guard pages are no-ops.
#[no_mangle]
pub extern "C" fn mprotect(_addr: *mut c_void, _len: usize, _prot: c_int) -> c_int {
    0
}
