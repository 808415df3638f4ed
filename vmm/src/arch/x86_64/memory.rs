//! The x86_64 system area the launcher writes before boot: GDT, TSSs, IDT
//! and page tables.

use vessel_abi::arch::x86_64 as abi;

use super::descriptors::{gdt_fixed, interrupt_gate, tss, tss_descriptor};
use super::layout::*;
use super::paging::{PageTables, USER, WRITABLE};
use crate::elf::{ElfError, GuestImage};
use crate::error::Result;
use crate::layout::Layout;
use crate::memory::{GuestRam, PAGE};

/// Write GDT, TSSs and IDT into `ram` and the page tables into `tables`
/// (the memslot at [`PAGE_TABLES`]). `lazy` lists the `(guest address,
/// bytes)` of each lazy region, mapped read-only.
pub fn setup_memory(
    ram: &GuestRam,
    tables: &GuestRam,
    l: &Layout,
    image: &GuestImage,
    lazy: &[(u64, u64)],
) -> Result<()> {
    let mut gdt: Vec<u64> = gdt_fixed().to_vec();
    for i in 0..u64::from(l.vcpus) {
        let tss_base = TSS + i * TSS_STRIDE;
        let stack = RING0_STACKS + i * RING0_STACK_SIZE;
        // RSP0 at the top of the lower 12 KiB, IST1 (double fault) above it.
        let rsp0 = stack + RING0_STACK_SIZE - 0x1000;
        let ist1 = stack + RING0_STACK_SIZE;
        ram.write(tss_base, &tss(rsp0, ist1))?;
        gdt.extend_from_slice(&tss_descriptor(tss_base));
    }
    ram.write(GDT, &words(&gdt))?;

    let h = &image.header;
    if h.vector_count != abi::EXCEPTION_VECTORS || h.vector_stride != abi::STUB_STRIDE {
        return Err(ElfError::ExceptionStubs {
            count: h.vector_count,
            stride: h.vector_stride,
            want_count: abi::EXCEPTION_VECTORS,
            want_stride: abi::STUB_STRIDE,
        }
        .into());
    }
    let mut idt = Vec::with_capacity(512);
    for v in 0..256u64 {
        if v < u64::from(abi::EXCEPTION_VECTORS) {
            let ist = if v == 8 { 1 } else { 0 };
            idt.extend_from_slice(&interrupt_gate(
                h.vector_table + v * abi::STUB_STRIDE,
                ist,
                0,
            ));
        } else if h.irq_entry != 0 {
            // Every external interrupt goes to the guest's one IRQ stub.
            idt.extend_from_slice(&interrupt_gate(h.irq_entry, 0, 0));
        } else {
            idt.extend_from_slice(&[0, 0]);
        }
    }
    ram.write(IDT, &words(&idt))?;
    page_tables(l, lazy)?.write(tables)
}

/// The identity map of `l` and the lazy regions.
fn page_tables(l: &Layout, lazy: &[(u64, u64)]) -> Result<PageTables> {
    let mut pt = PageTables::new(PAGE_TABLES, PAGE_TABLES + PAGE_TABLE_SIZE);
    pt.map(0x1000, SYSTEM_END, WRITABLE)?;
    // User memory, with an unmapped guard page below each vCPU stack.
    let mut at = SYSTEM_END;
    for &(bottom, _) in l.stacks.iter().rev() {
        let guard = bottom - PAGE;
        pt.map(at, guard, WRITABLE | USER)?;
        at = bottom;
    }
    pt.map(at, l.ram_end, WRITABLE | USER)?;
    pt.map(abi::DOORBELL, abi::DOORBELL + 0x20_0000, WRITABLE | USER)?;
    for &(gpa, len) in lazy {
        pt.map(gpa, gpa + len, USER)?;
    }
    Ok(pt)
}

fn words(w: &[u64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VmConfig;
    use crate::lazy::MAX_REGIONS;
    use vessel_abi::MAX_VCPUS;

    /// The worst case for table space: the most RAM, not 2 MiB aligned at
    /// its end, the most vCPUs with each guard page in its own 2 MiB block,
    /// and the most lazy regions, each ending inside a block, touching
    /// every GiB of the lazy area.
    #[test]
    fn the_largest_memory_map_fits_the_table_area() {
        let cfg = VmConfig {
            mem_size: super::super::MAX_RAM - PAGE,
            vcpus: MAX_VCPUS,
            stack_size: LAZY_ALIGN + 3 * PAGE,
            ..Default::default()
        };
        let l = Layout::plan(&cfg, 0x30_0000).unwrap();
        let mut lazy: Vec<(u64, u64)> = (0..MAX_REGIONS as u64 - 1)
            .map(|i| (LAZY_BASE + i * LAZY_ALIGN, 1 << 20))
            .collect();
        let last = LAZY_BASE + (MAX_REGIONS as u64 - 1) * LAZY_ALIGN;
        lazy.push((last, LAZY_LIMIT - PAGE - last));
        let pt = page_tables(&l, &lazy).unwrap();
        assert_eq!(pt.pages() as u64, max_table_pages(MAX_REGIONS as u64));
        assert!(pt.pages() as u64 * PAGE <= PAGE_TABLE_SIZE);
        // The ends are mapped, what lies past them is not.
        assert!(pt.translate(LAZY_LIMIT - PAGE - 1).is_some());
        assert_eq!(pt.translate(LAZY_LIMIT - PAGE), None);
        assert!(pt.translate(LAZY_BASE + (1 << 20) - 1).is_some());
        assert_eq!(pt.translate(LAZY_BASE + (1 << 20)), None);
    }

    #[test]
    fn hundreds_of_small_lazy_regions_fit() {
        let l = Layout::plan(&VmConfig::default(), 0x30_0000).unwrap();
        let lazy: Vec<(u64, u64)> = (0..300)
            .map(|i| (LAZY_BASE + i * LAZY_ALIGN, 1 << 20))
            .collect();
        let pt = page_tables(&l, &lazy).unwrap();
        for &(gpa, len) in &lazy {
            assert_eq!(
                pt.translate(gpa + len - 1).map(|t| t.0),
                Some(gpa + len - 1)
            );
            assert_eq!(pt.translate(gpa + len), None, "past the end of {gpa:#x}");
        }
        // The page tables themselves are out of the guest's reach.
        assert_eq!(pt.translate(PAGE_TABLES), None);
    }
}
