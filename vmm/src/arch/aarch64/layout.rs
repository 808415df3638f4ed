//! The aarch64 guest-physical memory map (identity mapped):
//!
//! ```text
//! 0x0900_0000  doorbell page (no memslot: stores exit as MMIO)  Device-nGnRnE
//! 0x1000_0000  page tables: own memslot, not mapped (the guest cannot
//!              address them), sized for the largest memory map
//! 0x4000_0000  RAM_BASE (the first 1 MiB unused)
//!   +0x10_0000 boot area: BootInfo, vCPU table, hypercall frames, args/env
//!   +0x20_0000 guest image (IMAGE_BASE), heap, then per-vCPU stacks at the top
//!              of RAM with an unmapped guard page below each
//! 0x20_0000_0000 lazy regions (`--lazy`), 2 MiB apart, read-only, 64 GiB at most
//! ```

use vessel_abi::arch::aarch64 as abi;

use super::paging;

/// Guest-physical address where RAM starts.
pub const RAM_BASE: u64 = abi::RAM_BASE;
pub const BOOT_AREA: u64 = RAM_BASE + 0x10_0000;
/// Entries of the VBAR_EL1 table and its alignment.
pub const VECTOR_ENTRIES: u32 = abi::EXCEPTION_VECTORS;
pub const VECTOR_ALIGN: u64 = 0x800;

const _: () = {
    assert!(BOOT_AREA < abi::IMAGE_BASE);
    assert!(RAM_BASE + abi::MAX_RAM <= 1 << paging::VA_BITS);
};

/// Lazy regions live in `[LAZY_BASE, LAZY_LIMIT)`, above the largest RAM
/// and inside the 39-bit VA space, each starting `LAZY_ALIGN` aligned.
pub const LAZY_BASE: u64 = 0x20_0000_0000;
/// End of the lazy-region window (64 GiB above `LAZY_BASE`).
pub const LAZY_LIMIT: u64 = LAZY_BASE + (64 << 30);
/// Alignment of each lazy region (one 2 MiB block).
pub const LAZY_ALIGN: u64 = 0x20_0000;

const _: () = {
    assert!(RAM_BASE + abi::MAX_RAM <= LAZY_BASE);
    assert!(LAZY_LIMIT <= 1 << paging::VA_BITS);
};

/// Page tables (TTBR0_EL1 points at the level-1 root, the first page) live
/// in their own memslot `[PAGE_TABLES, PAGE_TABLES + PAGE_TABLE_SIZE)`,
/// which no page table maps.
pub const PAGE_TABLES: u64 = 0x1000_0000;
/// Bytes of the page-table memslot.
pub const PAGE_TABLE_SIZE: u64 = 4 << 20;

/// The most table pages any memory map of this layout needs with
/// `lazy_regions` lazy regions, whatever their sizes. Ranges map with 2 MiB
/// blocks except where a range starts or ends inside a 2 MiB block; such a
/// block needs a level-3 table.
pub const fn max_table_pages(lazy_regions: u64) -> u64 {
    const GIB: u64 = 1 << 30;
    // The level-1 root: the whole 39-bit VA space.
    let root = 1;
    // A level-2 table per GiB touched: the doorbell's, RAM, the lazy area.
    let l2 = 1 + (RAM_BASE + abi::MAX_RAM).div_ceil(GIB) - RAM_BASE / GIB
        + (LAZY_LIMIT - LAZY_BASE) / GIB;
    // Blocks mapped in part: the doorbell's (one page), one per stack guard
    // page, the one RAM ends in, and each lazy region's last (regions start
    // 2 MiB aligned).
    let l3 = 1 + super::MAX_VCPUS as u64 + 1 + lazy_regions;
    root + l2 + l3
}

const _: () = {
    // The table bound's premises, and the bound itself for the most regions.
    assert!(RAM_BASE.is_multiple_of(BLOCK));
    assert!(LAZY_BASE.is_multiple_of(1 << 30) && LAZY_LIMIT.is_multiple_of(1 << 30));
    assert!(LAZY_ALIGN.is_multiple_of(BLOCK));
    assert!(max_table_pages(crate::lazy::MAX_REGIONS as u64) * 0x1000 <= PAGE_TABLE_SIZE);
    // The table slot overlaps nothing else: above the doorbell page, below RAM.
    assert!(PAGE_TABLES >= abi::DOORBELL + 0x1000);
    assert!(PAGE_TABLES + PAGE_TABLE_SIZE <= RAM_BASE);
};

const BLOCK: u64 = 0x20_0000;
