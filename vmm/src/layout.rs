//! Where things go in guest RAM: the boot area, the image, the heap, and a
//! stack per vCPU with a guard page below each.

use crate::arch;
use crate::config::VmConfig;
use crate::error::Result;
use crate::memory::PAGE;

/// Where things are in guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Guest-physical start of RAM.
    pub ram_base: u64,
    /// Guest-physical end of RAM.
    pub ram_end: u64,
    /// Number of vCPUs planned for.
    pub vcpus: u32,
    /// `[start, end)` of the boot area (BootInfo, frames, strings).
    pub boot_area: (u64, u64),
    /// `[start, end)` of the heap.
    pub heap: (u64, u64),
    /// `(bottom, top)` of each vCPU's stack; a guard page lies below bottom.
    pub stacks: Vec<(u64, u64)>,
}

const MIN_HEAP: u64 = 64 << 10;

/// A memory map that cannot be built ("invalid configuration: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// RAM size outside what this architecture allows.
    #[error("mem_size {shown} is outside {min}..={max} MiB ({side})", shown = shown_mem(*.0), min = arch::MIN_RAM >> 20, max = arch::MAX_RAM >> 20, side = side(*.0))]
    MemOutOfRange(u64),
    /// RAM size not a whole number of pages.
    #[error("mem_size {0} is not a multiple of 4 KiB")]
    MemNotPages(u64),
    /// vCPU count outside 1..=MAX_VCPUS.
    #[error("vcpus {0} is outside 1..={max}", max = arch::MAX_VCPUS)]
    CpusOutOfRange(u32),
    /// Stack size not a multiple of 4 KiB, or under 64 KiB.
    #[error("stack_size {0} must be a multiple of 4 KiB, at least 64 KiB")]
    StackSize(u64),
    /// The stacks take all of RAM.
    #[error("stacks exceed RAM")]
    StacksExceedRam,
    /// No heap is left after the image and the stacks.
    #[error("mem_size {} MiB leaves no room for a heap after the image ({} KiB) and {vcpus} stack(s) of {} KiB", mem >> 20, image >> 10, stack >> 10)]
    NoRoomForHeap {
        /// RAM size.
        mem: u64,
        /// Bytes from the start of RAM to the end of the image.
        image: u64,
        /// vCPUs.
        vcpus: u32,
        /// Stack size of each.
        stack: u64,
    },
    /// The boot area's strings: `room` bytes in all, `left` of them free
    /// when an `item`-byte string came.
    #[error("arguments, environment and region names do not fit in the {} KiB the boot area has for them (a {item}-byte item did not fit in the {left} bytes left)", room / 1024)]
    BootAreaFull {
        /// Bytes for strings in all.
        room: u64,
        /// Size of the string that did not fit.
        item: u64,
        /// Bytes left when it came.
        left: u64,
    },
    /// The page tables outgrew the `reserved` bytes set aside for them.
    #[error("page tables for this memory map need more than the {} KiB reserved for them", reserved / 1024)]
    PageTableSpace {
        /// Bytes reserved for page tables.
        reserved: u64,
    },
    /// arm64: the memory map needs a wider IPA than the host offers
    /// (`limit` None: the host has no KVM_CAP_ARM_VM_IPA_SIZE).
    #[error("guest memory ends at {end:#x}, which needs a {need}-bit IPA; {}", ipa_offer(*limit))]
    IpaTooSmall {
        /// The highest guest-physical address in use.
        end: u64,
        /// IPA bits that address needs.
        need: u32,
        /// The host's IPA limit, if it says.
        limit: Option<u32>,
    },
}

fn shown_mem(mem: u64) -> String {
    if mem < 1 << 20 {
        format!("{mem} bytes")
    } else {
        format!("{} MiB", mem >> 20)
    }
}

fn side(mem: u64) -> &'static str {
    if mem < arch::MIN_RAM {
        "below the minimum"
    } else {
        "above the maximum"
    }
}

fn ipa_offer(limit: Option<u32>) -> String {
    match limit {
        None => format!(
            "this host offers only {} bits (no KVM_CAP_ARM_VM_IPA_SIZE)",
            crate::ipa::DEFAULT_IPA_BITS
        ),
        Some(l) => format!("this host's KVM_CAP_ARM_VM_IPA_SIZE is {l}"),
    }
}

/// Page-table requests the builder cannot honour: a bug in the memory map
/// rather than a configuration ("page tables: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    /// An empty or unaligned range.
    #[error("cannot map {start:#x}..{end:#x}")]
    BadRange {
        /// Start of the range.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// x86_64: a 2 MiB page covers what a finer mapping needs.
    #[error("mapping conflicts with a huge page at table {table:#x}[{index}]")]
    HugePageInTheWay {
        /// The table's address.
        table: u64,
        /// The entry.
        index: usize,
    },
    /// arm64: a block covers what a finer mapping needs.
    #[error("a block is in the way of a finer mapping")]
    BlockInTheWay,
}

/// `--mem` within the documented bounds and a whole number of pages.
pub fn check_mem_size(mem: u64) -> Result<(), LayoutError> {
    if !(arch::MIN_RAM..=arch::MAX_RAM).contains(&mem) {
        return Err(LayoutError::MemOutOfRange(mem));
    }
    if !mem.is_multiple_of(PAGE) {
        return Err(LayoutError::MemNotPages(mem));
    }
    Ok(())
}

impl Layout {
    /// Plan memory for `cfg` and an image ending at `image_end`.
    pub fn plan(cfg: &VmConfig, image_end: u64) -> Result<Layout> {
        check_mem_size(cfg.mem_size)?;
        if cfg.vcpus == 0 || cfg.vcpus > arch::MAX_VCPUS {
            return Err(LayoutError::CpusOutOfRange(cfg.vcpus).into());
        }
        if cfg.stack_size < 16 * PAGE || !cfg.stack_size.is_multiple_of(PAGE) {
            return Err(LayoutError::StackSize(cfg.stack_size).into());
        }
        let ram_base = arch::RAM_BASE;
        let ram_end = ram_base + cfg.mem_size;
        let mut stacks = Vec::new();
        let mut top = ram_end;
        for _ in 0..cfg.vcpus {
            let bottom = top
                .checked_sub(cfg.stack_size)
                .ok_or(LayoutError::StacksExceedRam)?;
            stacks.push((bottom, top));
            top = bottom.saturating_sub(PAGE); // guard page
        }
        let heap_start = image_end.next_multiple_of(PAGE);
        let heap_end = top;
        if heap_end < heap_start + MIN_HEAP {
            return Err(LayoutError::NoRoomForHeap {
                mem: cfg.mem_size,
                image: image_end - ram_base,
                vcpus: cfg.vcpus,
                stack: cfg.stack_size,
            }
            .into());
        }
        Ok(Layout {
            ram_base,
            ram_end,
            vcpus: cfg.vcpus,
            boot_area: arch::boot_area(),
            heap: (heap_start, heap_end),
            stacks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_puts_heap_between_image_and_stacks() {
        let cfg = VmConfig {
            mem_size: 64 << 20,
            ..Default::default()
        };
        let l = Layout::plan(&cfg, 0x21_0123).unwrap();
        assert_eq!(l.heap.0, 0x21_1000);
        assert_eq!(l.stacks, vec![((64 << 20) - (1 << 20), 64 << 20)]);
        assert_eq!(
            l.heap.1,
            (63 << 20) - 0x1000,
            "a guard page separates heap and stack"
        );
    }

    #[test]
    fn bad_sizes_are_config_errors() {
        for cfg in [
            VmConfig {
                mem_size: 1 << 20,
                ..Default::default()
            },
            VmConfig {
                mem_size: arch::MAX_RAM + 4096,
                ..Default::default()
            },
            VmConfig {
                mem_size: (64 << 20) + 1,
                ..Default::default()
            },
            VmConfig {
                vcpus: 0,
                ..Default::default()
            },
            VmConfig {
                vcpus: 1000,
                ..Default::default()
            },
            VmConfig {
                stack_size: 100,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(Layout::plan(&cfg, 0x21_0000), Err(crate::Error::Layout(_))),
                "{cfg:?}"
            );
        }
        let big_image = VmConfig {
            mem_size: 8 << 20,
            ..Default::default()
        };
        assert!(Layout::plan(&big_image, 0x70_0000).is_err());
    }
}
