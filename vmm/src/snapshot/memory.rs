//! Guest RAM in a snapshot, and putting back only the pages that changed.
//!
//! A snapshot keeps the pages that had memory behind them (`mincore`) and
//! are not all zeros; the rest read as zero. Restoring takes the pages written since the last
//! restore point, from KVM's dirty log (the guest's writes) and the RAM's
//! own host-write bitmap (the launcher's writes on the guest's behalf),
//! and copies each back (zeroes it when the snapshot had none there): the
//! set of pages grows only with what the guest touches, so memory stays
//! flat over any number of restores. A full restore gives RAM back to the
//! host (`MADV_DONTNEED`) before writing the saved pages.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::memory::{GuestRam, PAGE};

/// A page bitmap the host sets from any thread (bit i of word i / 64).
pub struct DirtyBits {
    pages: usize,
    words: Vec<AtomicU64>,
}

impl DirtyBits {
    /// All clear, for `pages` pages.
    pub fn new(pages: usize) -> DirtyBits {
        DirtyBits {
            pages,
            words: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Set pages `first..=last` (indexes past the end are ignored).
    pub fn mark(&self, first: usize, last: usize) {
        for p in first..=last.min(self.pages.saturating_sub(1)) {
            if let Some(w) = self.words.get(p / 64) {
                w.fetch_or(1 << (p % 64), Ordering::Relaxed);
            }
        }
    }

    /// The bitmap, cleared.
    pub fn take(&self) -> Vec<u64> {
        self.words
            .iter()
            .map(|w| w.swap(0, Ordering::Relaxed))
            .collect()
    }
}

/// No saved page for this page index: it reads as zero.
const NONE: u32 = u32::MAX;

/// The contents of guest RAM at a snapshot.
pub struct MemoryImage {
    base: u64,
    /// Per page of RAM: its index in `data`, or [`NONE`].
    index: Vec<u32>,
    /// The saved pages, [`PAGE`] bytes each.
    data: Vec<u8>,
}

impl MemoryImage {
    /// Save every resident page of `ram` that is not all zeros (the vCPU
    /// must be out of KVM_RUN). Skipping zero pages keeps the set the same
    /// however the host backed RAM: with transparent huge pages one touch
    /// makes 512 pages resident, and which ones depends on history.
    pub fn capture(ram: &GuestRam) -> Result<MemoryImage> {
        let resident = ram.resident()?;
        let mut data = Vec::new();
        let mut index = vec![NONE; resident.len()];
        let mut page = vec![0u8; PAGE as usize];
        let mut n = 0u32;
        for (p, r) in resident.iter().enumerate() {
            if r & 1 == 0 {
                continue;
            }
            ram.read(ram.base() + p as u64 * PAGE, &mut page)?;
            if page.iter().all(|&b| b == 0) {
                continue;
            }
            data.extend_from_slice(&page);
            index[p] = n;
            n += 1;
        }
        Ok(MemoryImage {
            base: ram.base(),
            index,
            data,
        })
    }

    /// An image of `ram_size` bytes of RAM at the architecture's RAM base
    /// from saved page indexes (checked by the caller: increasing, inside
    /// RAM) and their pages, in order.
    pub(crate) fn from_parts(ram_size: u64, saved: Vec<usize>, data: Vec<u8>) -> MemoryImage {
        let mut index = vec![NONE; ram_size.div_ceil(PAGE) as usize];
        for (i, p) in saved.into_iter().enumerate() {
            if let Some(slot) = index.get_mut(p) {
                *slot = i as u32;
            }
        }
        MemoryImage {
            base: crate::arch::RAM_BASE,
            index,
            data,
        }
    }

    /// Pages saved.
    pub fn saved_pages(&self) -> usize {
        self.data.len() / PAGE as usize
    }

    /// Bytes of RAM this image describes.
    pub fn ram_size(&self) -> u64 {
        self.index.len() as u64 * PAGE
    }

    /// Put back page `p`: a page the snapshot had none for is zeroed in
    /// place (giving it back to the host would make the next call fault
    /// it in again; the guest touches the same pages call after call).
    fn restore_page(&self, ram: &GuestRam, p: usize) -> Result<()> {
        const ZERO: [u8; PAGE as usize] = [0; PAGE as usize];
        let addr = self.base + p as u64 * PAGE;
        match self.index.get(p).copied() {
            Some(NONE) | None => ram.write_untracked(addr, &ZERO),
            Some(i) => {
                let at = i as usize * PAGE as usize;
                ram.write_untracked(addr, &self.data[at..at + PAGE as usize])
            }
        }
    }

    /// Put back every page set in `dirty`; returns how many.
    pub fn restore_dirty(&self, ram: &GuestRam, dirty: &[u64]) -> Result<usize> {
        let mut n = 0;
        for (w, bits) in dirty.iter().enumerate() {
            let mut b = *bits;
            while b != 0 {
                let p = w * 64 + b.trailing_zeros() as usize;
                b &= b - 1;
                if p < self.index.len() {
                    self.restore_page(ram, p)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Make all of `ram` equal to this image.
    pub fn restore_all(&self, ram: &GuestRam) -> Result<()> {
        ram.discard(ram.base(), ram.size())?;
        for (p, &i) in self.index.iter().enumerate() {
            if i != NONE {
                self.restore_page(ram, p)?;
            }
        }
        Ok(())
    }

    /// Iterate (page index, bytes) over the saved pages.
    pub fn pages(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.index
            .iter()
            .enumerate()
            .filter(|(_, &i)| i != NONE)
            .map(|(p, &i)| {
                let at = i as usize * PAGE as usize;
                (p, &self.data[at..at + PAGE as usize])
            })
    }
}

/// OR `b` into `a` (both page bitmaps; `a` grows to the longer).
pub fn merge(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x |= y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_bits_mark_take_and_clear() {
        let d = DirtyBits::new(130);
        d.mark(1, 2);
        d.mark(129, 200);
        let t = d.take();
        assert_eq!(t, vec![0b110, 0, 0b10]);
        assert_eq!(d.take(), vec![0, 0, 0]);
    }

    #[test]
    fn restore_puts_back_changed_pages_and_zeroes_new_ones() {
        let mut ram = GuestRam::new(0x10000, 16 * PAGE).unwrap();
        ram.track_host_writes();
        ram.write(0x10000 + 3 * PAGE, b"kept").unwrap();
        let img = MemoryImage::capture(&ram).unwrap();
        assert!(img.saved_pages() >= 1);
        let _ = ram.take_host_dirty();
        ram.write(0x10000 + 3 * PAGE, b"XXXX").unwrap();
        ram.write(0x10000 + 9 * PAGE, b"new").unwrap();
        let dirty = ram.take_host_dirty();
        assert_eq!(dirty, vec![(1 << 3) | (1 << 9)]);
        assert_eq!(img.restore_dirty(&ram, &dirty).unwrap(), 2);
        let mut b = [0u8; 4];
        ram.read(0x10000 + 3 * PAGE, &mut b).unwrap();
        assert_eq!(&b, b"kept");
        ram.read(0x10000 + 9 * PAGE, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
        assert!(
            ram.take_host_dirty().iter().all(|w| *w == 0),
            "restores are untracked"
        );
        ram.write(0x10000, b"zz").unwrap();
        img.restore_all(&ram).unwrap();
        assert!(
            ram.resident()
                .unwrap()
                .iter()
                .filter(|r| *r & 1 != 0)
                .count()
                <= img.saved_pages()
        );
        ram.read(0x10000, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
        ram.read(0x10000 + 3 * PAGE, &mut b).unwrap();
        assert_eq!(&b, b"kept");
    }
}
