//! The aarch64 memory the launcher writes before boot: page tables, and a
//! check of the guest's vector table.

use vessel_abi::arch::aarch64 as abi;

use super::layout::*;
use super::paging;
use crate::elf::GuestImage;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::memory::{GuestRam, PAGE};

/// Write the page tables and check the guest's vector table. `lazy` lists
/// the `(guest address, bytes)` of each lazy region, mapped read-only.
pub fn setup_memory(
    ram: &GuestRam,
    l: &Layout,
    image: &GuestImage,
    lazy: &[(u64, u64)],
) -> Result<()> {
    let h = &image.header;
    if h.vector_count != VECTOR_ENTRIES
        || !h.vector_table.is_multiple_of(VECTOR_ALIGN)
        || h.vector_table < abi::IMAGE_BASE
        || h.vector_table.saturating_add(VECTOR_ALIGN) > image.end()
    {
        return Err(Error::Elf(format!(
            "guest header declares {} vectors at {:#x}; want {VECTOR_ENTRIES} at a 2 KiB-aligned address inside the image",
            h.vector_count, h.vector_table
        )));
    }
    let mut pt = paging::PageTables::new(PAGE_TABLES, BOOT_AREA);
    pt.map(abi::DOORBELL, abi::DOORBELL + PAGE, paging::DEVICE)?;
    let mut at = RAM_BASE;
    for &(bottom, _) in l.stacks.iter().rev() {
        pt.map(at, bottom - PAGE, paging::NORMAL)?;
        at = bottom;
    }
    pt.map(at, l.ram_end, paging::NORMAL)?;
    for &(gpa, len) in lazy {
        pt.map(gpa, gpa + len, paging::READ_ONLY)?;
    }
    pt.write(ram)
}
