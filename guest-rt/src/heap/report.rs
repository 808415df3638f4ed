//! The heap's state, and what a failed allocation reports.

use core::alloc::Layout;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::{cache, pool};

/// The size and alignment of the latest failed allocation (0: none).
static FAILED_SIZE: AtomicUsize = AtomicUsize::new(0);
static FAILED_ALIGN: AtomicUsize = AtomicUsize::new(0);

/// Remember a failed allocation for [`failure_report`].
pub fn record_failure(layout: Layout) {
    FAILED_SIZE.store(layout.size(), Relaxed);
    FAILED_ALIGN.store(layout.align(), Relaxed);
}

/// The heap's state.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// The heap's size in bytes.
    pub size: usize,
    /// Bytes in blocks handed out (including the unused rest of each
    /// size-class block).
    pub used: usize,
    /// Bytes free: in the large allocator plus free size-class blocks.
    pub free: usize,
    /// The largest block the large allocator can give now (16-aligned).
    pub largest_free: usize,
}

impl Usage {
    /// The state now (walks the free lists: for reports, not hot paths).
    pub fn now() -> Usage {
        let cached = pool::free_bytes() + cache::free_bytes();
        let large = pool::LARGE.lock();
        let (size, lfree) = (large.size(), large.free());
        drop(large);
        Usage {
            size,
            used: size - lfree - cached.min(size - lfree),
            free: lfree + cached,
            largest_free: largest_free(),
        }
    }
}

/// The largest 16-aligned block the large allocator can give, found by
/// trying (binary search over sizes; nothing is kept).
fn largest_free() -> usize {
    let mut large = pool::LARGE.lock();
    let (mut lo, mut hi) = (0usize, large.free() / 16);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let Ok(l) = Layout::from_size_align(mid * 16, 16) else {
            break;
        };
        match large.allocate_first_fit(l) {
            Ok(p) => {
                // SAFETY: `p` was just allocated with `l`.
                unsafe { large.deallocate(p, l) };
                lo = mid;
            }
            Err(()) => hi = mid - 1,
        }
    }
    lo * 16
}

/// Bytes in KiB or MiB, for the report.
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b if b >= 1 << 20 => write!(f, "{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
            b if b >= 1 << 10 => write!(f, "{:.1} KiB", b as f64 / 1024.0),
            b => write!(f, "{b} bytes"),
        }
    }
}

/// One line on the latest failed allocation and the heap's state, if an
/// allocation failed: `heap: could not allocate N bytes (align A): used U,
/// free F, largest free block L, of S`.
pub fn failure_report(out: &mut dyn fmt::Write) -> fmt::Result {
    let size = FAILED_SIZE.load(Relaxed);
    if size == 0 {
        return Ok(());
    }
    let u = Usage::now();
    writeln!(
        out,
        "heap: could not allocate {size} bytes (align {}): used {}, free {}, largest free block {}, of {}",
        FAILED_ALIGN.load(Relaxed),
        Bytes(u.used),
        Bytes(u.free),
        Bytes(u.largest_free),
        Bytes(u.size)
    )
}
