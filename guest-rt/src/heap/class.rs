//! Size classes: 16-byte steps up to 128 bytes, then two classes per
//! doubling (1.5 x 2^p and 2^(p+1)) up to [`MAX_SMALL`]; 24 in all.
//!
//! A block's class is a function of its layout alone, so `dealloc` finds
//! the class `alloc` used without a header. Alignments above 16 (up to
//! [`MAX_ALIGN`]) use the power-of-two class at least as large as the
//! alignment: chunks of a class are aligned to the largest power of two
//! dividing its size (at most a page), so its blocks are too.

use core::alloc::Layout;

/// The least alignment (and size step) of every block.
pub const MIN_ALIGN: usize = 16;
/// The largest size served from a class; larger blocks are "large".
pub const MAX_SMALL: usize = 32 << 10;
/// The largest alignment served from a class.
pub const MAX_ALIGN: usize = 4096;
/// Classes of [`MIN_ALIGN`] steps (16..=128).
const LINEAR: usize = 8;
/// The number of classes.
pub const COUNT: usize = LINEAR + 2 * (MAX_SMALL.trailing_zeros() as usize - 7);

/// The class index of a block of `size` bytes aligned to at most 16.
#[inline]
fn of_size(size: usize) -> usize {
    if size <= LINEAR * MIN_ALIGN {
        return size.saturating_sub(1) / MIN_ALIGN;
    }
    // size - 1 lies in [2^p, 2^(p+1)) with p >= 7.
    let p = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let upper = size > (3 << (p - 1));
    LINEAR + 2 * (p - 7) + usize::from(upper)
}

/// The class of `layout`, or `None` for a large block.
#[inline]
pub fn of(layout: Layout) -> Option<usize> {
    let (size, align) = (layout.size(), layout.align());
    if align <= MIN_ALIGN {
        return (size <= MAX_SMALL).then(|| of_size(size));
    }
    if align > MAX_ALIGN {
        return None;
    }
    // The power-of-two class covering both size and alignment.
    let need = size.max(align).checked_next_power_of_two()?;
    (need <= MAX_SMALL).then(|| of_size(need))
}

/// The block size of class `c`.
#[inline]
pub const fn size(c: usize) -> usize {
    if c < LINEAR {
        return (c + 1) * MIN_ALIGN;
    }
    let p = 7 + (c - LINEAR) / 2;
    if (c - LINEAR).is_multiple_of(2) {
        3 << (p - 1)
    } else {
        1 << (p + 1)
    }
}

/// The alignment of class `c`'s chunks: the largest power of two dividing
/// its size, at most a page.
pub const fn chunk_align(c: usize) -> usize {
    let a = 1 << size(c).trailing_zeros();
    if a > MAX_ALIGN {
        MAX_ALIGN
    } else {
        a
    }
}

/// Blocks moved between a vCPU's cache and the shared pool at once: about
/// 8 KiB of blocks, between 2 and 64.
pub const fn batch(c: usize) -> usize {
    let n = (8 << 10) / size(c);
    if n < 2 {
        2
    } else if n > 64 {
        64
    } else {
        n
    }
}

// The table's shape, checked at compile time.
const _: () = assert!(COUNT == 24);
const _: () = assert!(size(COUNT - 1) == MAX_SMALL);
const _: () = assert!(size(LINEAR) == 192 && size(LINEAR + 1) == 256);
