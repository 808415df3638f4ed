//! The x86_64 guest-physical memory map (identity mapped, GVA = GPA).
//!
//! ```text
//! 0x0000_0000  unmapped (null guard)
//! 0x0000_1000  GDT                     supervisor only
//! 0x0000_2000  IDT                     supervisor only
//! 0x0000_3000  TSSs, 128 bytes apart   supervisor only
//! 0x0002_0000  ring-0 stacks, 16 KiB per vCPU (12 KiB RSP0 + 4 KiB IST1)
//! 0x000a_0000  free                    supervisor only
//! 0x0010_0000  boot area: BootInfo, vCPU table, hypercall frames, args/env
//! 0x0020_0000  guest image (IMAGE_BASE), then heap
//!   ...        per-vCPU stacks at the top of RAM, a guard page below each
//! 0xc000_0000  doorbell page (no memory: stores exit to the launcher)
//! 0xd000_0000  page tables: own memslot, not mapped (the guest cannot
//!              address them), sized for the largest memory map
//! 0x1_0000_0000  lazy regions (`--lazy`), 2 MiB apart, read-only for
//!   ...          the guest, own memslots, filled on first touch; 64 GiB at most
//! ```

use vessel_abi::MAX_VCPUS;

/// The GDT (one page).
pub const GDT: u64 = 0x1000;
/// The IDT (one page).
pub const IDT: u64 = 0x2000;
/// The first vCPU's TSS; the others follow `TSS_STRIDE` apart.
pub const TSS: u64 = 0x3000;
/// Bytes between two vCPUs' TSSs.
pub const TSS_STRIDE: u64 = 128;
/// The first vCPU's ring-0 stack; the others follow `RING0_STACK_SIZE` apart.
pub const RING0_STACKS: u64 = 0x2_0000;
/// Bytes of each vCPU's ring-0 stack.
pub const RING0_STACK_SIZE: u64 = 0x4000;
/// The boot area (BootInfo, vCPU table, strings), up to the image.
pub const BOOT_AREA: u64 = 0x10_0000;
/// End of the system area the launcher owns below the boot area.
pub const SYSTEM_END: u64 = BOOT_AREA;
/// Lazy regions live in `[LAZY_BASE, LAZY_LIMIT)`, each starting `LAZY_ALIGN` aligned.
pub const LAZY_BASE: u64 = 0x1_0000_0000;
/// End of the lazy-region window (64 GiB above `LAZY_BASE`).
pub const LAZY_LIMIT: u64 = LAZY_BASE + (64 << 30);
/// Alignment of each lazy region (one 2 MiB page).
pub const LAZY_ALIGN: u64 = 0x20_0000;
/// Vector of the launcher's wake-up MSI (timed Wait): any vector >= 32 goes
/// to the guest's one interrupt stub, which only EOIs when no token is set.
pub const WAKE_VECTOR: u32 = 0x41;

/// Page tables (CR3 points at the first page) live in their own memslot
/// `[PAGE_TABLES, PAGE_TABLES + PAGE_TABLE_SIZE)`, which no page table maps.
pub const PAGE_TABLES: u64 = 0xd000_0000;
/// Bytes of the page-table memslot.
pub const PAGE_TABLE_SIZE: u64 = 4 << 20;

/// The most table pages any memory map of this layout needs with
/// `lazy_regions` lazy regions, whatever their sizes. Ranges map with 2 MiB
/// pages except where a range starts or ends inside a 2 MiB block; such a
/// block needs a 4 KiB page table.
pub const fn max_table_pages(lazy_regions: u64) -> u64 {
    const GIB: u64 = 1 << 30;
    // One PML4 and one PDPT: everything lies below 512 GiB.
    let top = 2;
    // A page directory per GiB touched: RAM, the doorbell's, the lazy area.
    let pds = MAX_RAM.div_ceil(GIB) + 1 + (LAZY_LIMIT - LAZY_BASE) / GIB;
    // Blocks mapped in part: the system area's (the null page), one per
    // stack guard page, the one RAM ends in, and each lazy region's last
    // (regions start 2 MiB aligned).
    let pts = 1 + MAX_VCPUS as u64 + 1 + lazy_regions;
    top + pds + pts
}

const MAX_RAM: u64 = vessel_abi::arch::x86_64::MAX_RAM;

const _: () = {
    assert!(TSS + TSS_STRIDE * MAX_VCPUS as u64 <= TSS + 0x1000);
    assert!(RING0_STACKS + RING0_STACK_SIZE * MAX_VCPUS as u64 <= BOOT_AREA);
    // The table bound's premises, and the bound itself for the most regions.
    assert!(LAZY_LIMIT <= 1 << 39);
    assert!(SYSTEM_END <= 0x20_0000);
    assert!(vessel_abi::arch::x86_64::DOORBELL.is_multiple_of(0x20_0000));
    assert!(LAZY_BASE.is_multiple_of(1 << 30) && LAZY_LIMIT.is_multiple_of(1 << 30));
    assert!(LAZY_ALIGN.is_multiple_of(0x20_0000));
    assert!(max_table_pages(crate::lazy::MAX_REGIONS as u64) * 0x1000 <= PAGE_TABLE_SIZE);
    // The table slot overlaps nothing else: above the doorbell's 2 MiB page,
    // below the local APIC and KVM's TSS (0xfee0_0000, 0xfffb_d000).
    assert!(PAGE_TABLES >= vessel_abi::arch::x86_64::DOORBELL + 0x20_0000);
    assert!(PAGE_TABLES + PAGE_TABLE_SIZE <= 0xfec0_0000);
    assert!(BOOT_AREA < vessel_abi::arch::x86_64::IMAGE_BASE);
    // GDT: 5 fixed entries + 2 per TSS.
    assert!((5 + 2 * MAX_VCPUS as u64) * 8 <= 0x1000);
};
