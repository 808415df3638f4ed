//! The aarch64 memory the launcher writes before boot: page tables, and a
//! check of the guest's vector table.

use vessel_abi::arch::aarch64 as abi;

use super::layout::*;
use super::paging;
use crate::elf::{ElfError, GuestImage};
use crate::error::Result;
use crate::layout::Layout;
use crate::memory::{GuestRam, PAGE};

/// Check the guest's vector table and write the page tables into `tables`
/// (the memslot at [`PAGE_TABLES`]). `lazy` lists the `(guest address,
/// bytes)` of each lazy region, mapped read-only.
pub fn setup_memory(
    _ram: &GuestRam,
    tables: &GuestRam,
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
        return Err(ElfError::VectorTable {
            count: h.vector_count,
            at: h.vector_table,
            want: VECTOR_ENTRIES,
        }
        .into());
    }
    page_tables(l, lazy)?.write(tables)
}

/// The identity map of `l`, the doorbell and the lazy regions.
fn page_tables(l: &Layout, lazy: &[(u64, u64)]) -> Result<paging::PageTables> {
    let mut pt = paging::PageTables::new(PAGE_TABLES, PAGE_TABLES + PAGE_TABLE_SIZE);
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
    Ok(pt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VmConfig;
    use crate::lazy::MAX_REGIONS;

    /// The worst case for table space: the most RAM, not 2 MiB aligned at
    /// its end, the most vCPUs with each guard page in its own 2 MiB block,
    /// and the most lazy regions, each ending inside a block, touching
    /// every GiB of the lazy area.
    #[test]
    fn the_largest_memory_map_fits_the_table_area() {
        let cfg = VmConfig {
            mem_size: abi::MAX_RAM - PAGE,
            vcpus: super::super::MAX_VCPUS,
            stack_size: LAZY_ALIGN + 3 * PAGE,
            ..Default::default()
        };
        let l = Layout::plan(&cfg, abi::IMAGE_BASE + 0x10_0000).unwrap();
        let n = MAX_REGIONS as u64;
        let mut lazy: Vec<(u64, u64)> = (0..n - 1)
            .map(|i| (LAZY_BASE + i * LAZY_ALIGN, 1 << 20))
            .collect();
        let last = LAZY_BASE + (n - 1) * LAZY_ALIGN;
        lazy.push((last, LAZY_LIMIT - PAGE - last));
        let pt = page_tables(&l, &lazy).unwrap();
        assert_eq!(pt.pages() as u64, max_table_pages(n));
        assert!(pt.pages() as u64 * PAGE <= PAGE_TABLE_SIZE);
        assert!(pt.translate(LAZY_LIMIT - PAGE - 1).is_some());
        assert_eq!(pt.translate(LAZY_LIMIT - PAGE), None);
    }

    #[test]
    fn hundreds_of_small_lazy_regions_fit_and_end_where_they_end() {
        let l = Layout::plan(&VmConfig::default(), abi::IMAGE_BASE + 0x10_0000).unwrap();
        let lazy: Vec<(u64, u64)> = (0..300)
            .map(|i| (LAZY_BASE + i * LAZY_ALIGN, 1 << 20))
            .collect();
        let pt = page_tables(&l, &lazy).unwrap();
        for &(gpa, len) in &lazy {
            let (pa, attrs) = pt.translate(gpa + len - 1).unwrap();
            assert_eq!((pa, attrs), (gpa + len - 1, paging::READ_ONLY));
            assert_eq!(pt.translate(gpa + len), None, "past the end of {gpa:#x}");
        }
        assert_eq!(
            pt.translate(abi::DOORBELL).map(|t| t.1),
            Some(paging::DEVICE)
        );
        assert_eq!(pt.translate(PAGE_TABLES), None, "tables out of reach");
        assert_eq!(
            pt.translate(RAM_BASE + (1 << 20)).map(|t| t.0),
            Some(RAM_BASE + (1 << 20))
        );
    }
}
