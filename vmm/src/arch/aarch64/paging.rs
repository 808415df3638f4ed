//! Stage-1 identity page tables for the guest: 4 KiB granule, 39-bit VA
//! (three levels, starting at level 1), 2 MiB blocks where a range allows,
//! 4 KiB pages elsewhere (guard pages, the doorbell).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::layout::{LayoutError, PagingError};
use crate::memory::GuestRam;

pub const VA_BITS: u32 = 39;

use crate::memory::PAGE;
const BLOCK: u64 = 0x20_0000;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

const VALID: u64 = 1;
const TABLE: u64 = 1 << 1; // table (levels 1-2) or page (level 3)
const AF: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 3 << 8;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// Normal write-back memory (MAIR index 1), EL1 read/write/execute, no EL0.
pub const NORMAL: u64 = (1 << 2) | INNER_SHAREABLE | AF | UXN;
/// Normal memory the guest may read but not write or execute (AP[2]=1):
/// lazy regions.
pub const READ_ONLY: u64 = (1 << 2) | INNER_SHAREABLE | AF | (1 << 7) | PXN | UXN;
/// Device-nGnRnE (MAIR index 0), never executable.
pub const DEVICE: u64 = AF | PXN | UXN;

/// Tables being built; written into guest memory by [`PageTables::write`].
pub struct PageTables {
    root: u64,
    next: u64,
    limit: u64,
    tables: BTreeMap<u64, Vec<u64>>,
}

impl PageTables {
    /// Tables live in `[base, limit)`; the level-1 root is at `base`.
    pub fn new(base: u64, limit: u64) -> PageTables {
        let mut tables = BTreeMap::new();
        tables.insert(base, vec![0; 512]);
        PageTables {
            root: base,
            next: base + PAGE,
            limit,
            tables,
        }
    }

    fn child(&mut self, table: u64, index: usize) -> Result<u64> {
        let e = self.tables[&table][index];
        if e & VALID != 0 {
            if e & TABLE == 0 {
                return Err(PagingError::BlockInTheWay.into());
            }
            return Ok(e & ADDR_MASK);
        }
        if self.next >= self.limit {
            return Err(LayoutError::PageTableSpace {
                reserved: self.limit - self.root,
            }
            .into());
        }
        let t = self.next;
        self.next += PAGE;
        self.tables.insert(t, vec![0; 512]);
        if let Some(tab) = self.tables.get_mut(&table) {
            tab[index] = t | TABLE | VALID;
        }
        Ok(t)
    }

    /// Identity-map `[start, end)` (page aligned) with `attrs`.
    pub fn map(&mut self, start: u64, end: u64, attrs: u64) -> Result<()> {
        if !start.is_multiple_of(PAGE) || !end.is_multiple_of(PAGE) || end > 1 << VA_BITS {
            return Err(PagingError::BadRange { start, end }.into());
        }
        let mut a = start;
        while a < end {
            let l1 = ((a >> 30) & 511) as usize;
            let l2 = ((a >> 21) & 511) as usize;
            let t2 = self.child(self.root, l1)?;
            if a.is_multiple_of(BLOCK) && a + BLOCK <= end && self.tables[&t2][l2] & VALID == 0 {
                if let Some(t) = self.tables.get_mut(&t2) {
                    t[l2] = a | attrs | VALID;
                }
                a += BLOCK;
                continue;
            }
            let t3 = self.child(t2, l2)?;
            let l3 = ((a >> 12) & 511) as usize;
            if let Some(t) = self.tables.get_mut(&t3) {
                t[l3] = a | attrs | TABLE | VALID;
            }
            a += PAGE;
        }
        Ok(())
    }

    /// Number of table pages used.
    #[cfg(test)]
    pub fn pages(&self) -> usize {
        self.tables.len()
    }

    /// Walk the tables for `va`: the physical address and the leaf's
    /// attributes (without the address and the valid/page bits).
    #[cfg(test)]
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for (level, shift) in [30u32, 21, 12].into_iter().enumerate() {
            let e = self.tables.get(&table)?[((va >> shift) & 511) as usize];
            if e & VALID == 0 {
                return None;
            }
            let size = 1u64 << shift;
            if level == 2 || e & TABLE == 0 {
                let pa = (e & ADDR_MASK & !(size - 1)) | (va & (size - 1));
                return Some((pa, e & !ADDR_MASK & !(TABLE | VALID)));
            }
            table = e & ADDR_MASK;
        }
        None
    }

    pub fn write(&self, ram: &GuestRam) -> Result<()> {
        for (addr, t) in &self.tables {
            let bytes: Vec<u8> = t.iter().flat_map(|e| e.to_le_bytes()).collect();
            ram.write(*addr, &bytes)?;
        }
        Ok(())
    }
}
