//! The aarch64 guest-physical memory map (identity mapped):
//!
//! ```text
//! 0x0900_0000  doorbell page (no memslot: stores exit as MMIO)  Device-nGnRnE
//! 0x4000_0000  RAM_BASE
//!   +0x1_0000  page tables
//!   +0x10_0000 boot area: BootInfo, vCPU table, hypercall frames, args/env
//!   +0x20_0000 guest image (IMAGE_BASE), heap, then per-vCPU stacks at the top
//!              of RAM with an unmapped guard page below each
//! 0x20_0000_0000 lazy regions (`--lazy`), 2 MiB apart, read-only, 64 GiB at most
//! ```

use vessel_abi::arch::aarch64 as abi;

use super::paging;

pub const RAM_BASE: u64 = abi::RAM_BASE;
pub const PAGE_TABLES: u64 = RAM_BASE + 0x1_0000;
pub const BOOT_AREA: u64 = RAM_BASE + 0x10_0000;
/// Entries of the VBAR_EL1 table and its alignment.
pub const VECTOR_ENTRIES: u32 = abi::EXCEPTION_VECTORS;
pub const VECTOR_ALIGN: u64 = 0x800;

const _: () = {
    assert!(BOOT_AREA < abi::IMAGE_BASE);
    assert!(PAGE_TABLES < BOOT_AREA);
    assert!(RAM_BASE + abi::MAX_RAM <= 1 << paging::VA_BITS);
};

/// Lazy regions live in `[LAZY_BASE, LAZY_LIMIT)`, above the largest RAM
/// and inside the 39-bit VA space, each starting `LAZY_ALIGN` aligned.
pub const LAZY_BASE: u64 = 0x20_0000_0000;
pub const LAZY_LIMIT: u64 = LAZY_BASE + (64 << 30);
pub const LAZY_ALIGN: u64 = 0x20_0000;

const _: () = {
    assert!(RAM_BASE + abi::MAX_RAM <= LAZY_BASE);
    assert!(LAZY_LIMIT <= 1 << paging::VA_BITS);
};
