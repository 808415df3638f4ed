//! x86_64 4-level page tables built by the launcher (identity mapping).
//!
//! The builder maps ranges with 2 MiB pages where alignment allows and 4 KiB
//! pages elsewhere, allocating tables from a fixed window of guest memory.
//! [`PageTables::translate`] walks the result the way the MMU would, so the
//! tests check the tables themselves, not the builder's intentions.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::layout::{LayoutError, PagingError};
use crate::memory::GuestRam;

/// Page-table entry bit: present.
pub const PRESENT: u64 = 1 << 0;
/// Page-table entry bit: writable.
pub const WRITABLE: u64 = 1 << 1;
/// Page-table entry bit: reachable from CPL3.
pub const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

use crate::memory::PAGE;
const HUGE_PAGE: u64 = 0x20_0000;

/// Page tables under construction, kept on the host until written.
pub struct PageTables {
    root: u64,
    next: u64,
    limit: u64,
    tables: BTreeMap<u64, Box<[u64; 512]>>,
}

impl PageTables {
    /// Tables will live in guest-physical `[base, limit)`; the root is at `base`.
    pub fn new(base: u64, limit: u64) -> PageTables {
        let mut t = PageTables {
            root: base,
            next: base,
            limit,
            tables: BTreeMap::new(),
        };
        t.alloc().expect("window holds at least the root table");
        t
    }

    /// Guest-physical address of the PML4 (the value for CR3).
    pub fn root(&self) -> u64 {
        self.root
    }

    fn alloc(&mut self) -> Result<u64> {
        if self.next + PAGE > self.limit {
            return Err(LayoutError::PageTableSpace {
                reserved: self.limit - self.root,
            }
            .into());
        }
        let at = self.next;
        self.next += PAGE;
        self.tables.insert(at, Box::new([0; 512]));
        Ok(at)
    }

    /// The next-level table for `entry` of table `table`, created if absent.
    fn child(&mut self, table: u64, index: usize) -> Result<u64> {
        let e = self.tables[&table][index];
        if e & PRESENT != 0 {
            if e & HUGE != 0 {
                return Err(PagingError::HugePageInTheWay { table, index }.into());
            }
            return Ok(e & ADDR_MASK);
        }
        let new = self.alloc()?;
        // Intermediate entries allow everything; leaves decide.
        self.tables.get_mut(&table).expect("table exists")[index] = new | PRESENT | WRITABLE | USER;
        Ok(new)
    }

    /// Identity-map `[start, end)` (4 KiB aligned) with `flags`.
    pub fn map(&mut self, start: u64, end: u64, flags: u64) -> Result<()> {
        if !start.is_multiple_of(PAGE) || !end.is_multiple_of(PAGE) || end < start || end > 1 << 47
        {
            return Err(PagingError::BadRange { start, end }.into());
        }
        let mut va = start;
        while va < end {
            let pml4 = self.root;
            let pdpt = self.child(pml4, idx(va, 39))?;
            let pd = self.child(pdpt, idx(va, 30))?;
            if va.is_multiple_of(HUGE_PAGE) && end - va >= HUGE_PAGE {
                self.tables.get_mut(&pd).expect("pd")[idx(va, 21)] = va | flags | PRESENT | HUGE;
                va += HUGE_PAGE;
            } else {
                let pt = self.child(pd, idx(va, 21))?;
                self.tables.get_mut(&pt).expect("pt")[idx(va, 12)] = va | flags | PRESENT;
                va += PAGE;
            }
        }
        Ok(())
    }

    /// Walk the tables for `va`: the physical address and the leaf's flags.
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for (level, shift) in [39u32, 30, 21, 12].into_iter().enumerate() {
            let e = self.tables.get(&table)?[idx(va, shift)];
            if e & PRESENT == 0 {
                return None;
            }
            if level == 2 && e & HUGE != 0 {
                return Some((
                    (e & ADDR_MASK & !(HUGE_PAGE - 1)) | (va & (HUGE_PAGE - 1)),
                    e & 0xfff,
                ));
            }
            if level == 3 {
                return Some(((e & ADDR_MASK) | (va & (PAGE - 1)), e & 0xfff));
            }
            table = e & ADDR_MASK;
        }
        None
    }

    /// Write every table into guest memory.
    pub fn write(&self, ram: &GuestRam) -> Result<()> {
        for (addr, t) in &self.tables {
            let bytes: Vec<u8> = t.iter().flat_map(|e| e.to_le_bytes()).collect();
            ram.write(*addr, &bytes)?;
        }
        Ok(())
    }

    /// Number of table pages used.
    pub fn pages(&self) -> usize {
        self.tables.len()
    }
}

fn idx(va: u64, shift: u32) -> usize {
    ((va >> shift) & 0x1ff) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_small_and_huge_pages_and_leaves_holes() {
        let mut pt = PageTables::new(0x10_0000, 0x12_0000);
        pt.map(0x1000, 0x10_0000, WRITABLE).unwrap();
        pt.map(0x10_0000, 0x80_0000, WRITABLE | USER).unwrap();
        assert_eq!(pt.translate(0), None, "null page stays unmapped");
        assert_eq!(pt.translate(0x1234), Some((0x1234, PRESENT | WRITABLE)));
        assert_eq!(
            pt.translate(0x10_0008),
            Some((0x10_0008, PRESENT | WRITABLE | USER))
        );
        // 0x200000..0x800000 is 2 MiB aligned: huge pages.
        let (pa, fl) = pt.translate(0x40_1234).unwrap();
        assert_eq!(pa, 0x40_1234);
        assert_ne!(fl & HUGE, 0);
        assert_eq!(pt.translate(0x80_0000), None);
        // PML4, PDPT, PD, one PT for the first 2 MiB.
        assert_eq!(pt.pages(), 4);
    }

    #[test]
    fn high_mappings_use_other_tables() {
        let mut pt = PageTables::new(0, 0x10_000);
        pt.map(0xc000_0000, 0xc020_0000, WRITABLE | USER).unwrap();
        pt.map(0x1_0000_0000, 0x1_0000_3000, USER).unwrap();
        assert_eq!(pt.translate(0xc000_0008).map(|t| t.0), Some(0xc000_0008));
        assert_eq!(
            pt.translate(0x1_0000_2fff).map(|t| t.0),
            Some(0x1_0000_2fff)
        );
        assert_eq!(pt.translate(0x1_0000_3000), None);
        assert_eq!(pt.translate(0xbfff_f000), None);
    }

    #[test]
    fn running_out_of_table_space_is_an_error() {
        let mut pt = PageTables::new(0, 0x2000);
        assert!(pt.map(0x1000, 0x2000, WRITABLE).is_err());
    }

    #[test]
    fn bad_ranges_are_rejected() {
        let mut pt = PageTables::new(0, 0x10000);
        assert!(pt.map(0x1001, 0x2000, 0).is_err());
        assert!(pt.map(0x2000, 0x1000, 0).is_err());
        assert!(pt.map(0, 1 << 48, 0).is_err());
    }

    #[test]
    fn written_tables_match_the_walk() {
        let ram = GuestRam::new(0, 0x20_0000).unwrap();
        let mut pt = PageTables::new(0x1000, 0x10000);
        pt.map(0x10_0000, 0x20_0000, WRITABLE | USER).unwrap();
        pt.write(&ram).unwrap();
        let pml4e: u64 = ram.read_pod::<vessel_abi::GuestSlice>(0x1000).unwrap().addr;
        assert_eq!(pml4e & PRESENT, PRESENT);
        let pdpt = pml4e & ADDR_MASK;
        assert!((0x2000..0x10000).contains(&pdpt));
    }
}
