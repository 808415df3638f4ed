//! Where things go in guest RAM: the boot area, the image, the heap, and a
//! stack per vCPU with a guard page below each.

use crate::arch;
use crate::config::VmConfig;
use crate::error::{Error, Result};
use crate::memory::PAGE;

/// Where things are in guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub ram_base: u64,
    pub ram_end: u64,
    pub vcpus: u32,
    /// `[start, end)` of the boot area (BootInfo, frames, strings).
    pub boot_area: (u64, u64),
    /// `[start, end)` of the heap.
    pub heap: (u64, u64),
    /// `(bottom, top)` of each vCPU's stack; a guard page lies below bottom.
    pub stacks: Vec<(u64, u64)>,
}

const MIN_HEAP: u64 = 64 << 10;

/// `--mem` within the documented bounds and a whole number of pages.
pub fn check_mem_size(mem: u64) -> Result<()> {
    let mib = |b: u64| b >> 20;
    let side = if mem < arch::MIN_RAM {
        "below the minimum"
    } else if mem > arch::MAX_RAM {
        "above the maximum"
    } else {
        ""
    };
    if !side.is_empty() {
        let shown = if mem < 1 << 20 {
            format!("{mem} bytes")
        } else {
            format!("{} MiB", mib(mem))
        };
        return Err(Error::Config(format!(
            "--mem {shown} is outside {}..={} MiB ({side})",
            mib(arch::MIN_RAM),
            mib(arch::MAX_RAM)
        )));
    }
    if !mem.is_multiple_of(PAGE) {
        return Err(Error::Config(format!(
            "--mem {mem} is not a multiple of 4 KiB"
        )));
    }
    Ok(())
}

impl Layout {
    /// Plan memory for `cfg` and an image ending at `image_end`.
    pub fn plan(cfg: &VmConfig, image_end: u64) -> Result<Layout> {
        let mib = |b: u64| b >> 20;
        check_mem_size(cfg.mem_size)?;
        if cfg.vcpus == 0 || cfg.vcpus > arch::MAX_VCPUS {
            return Err(Error::Config(format!(
                "--cpus {} is outside 1..={}",
                cfg.vcpus,
                arch::MAX_VCPUS
            )));
        }
        if cfg.stack_size < 16 * PAGE || !cfg.stack_size.is_multiple_of(PAGE) {
            return Err(Error::Config(format!(
                "stack size {} must be a multiple of 4 KiB, at least 64 KiB",
                cfg.stack_size
            )));
        }
        let ram_base = arch::RAM_BASE;
        let ram_end = ram_base + cfg.mem_size;
        let mut stacks = Vec::new();
        let mut top = ram_end;
        for _ in 0..cfg.vcpus {
            let bottom = top
                .checked_sub(cfg.stack_size)
                .ok_or_else(|| Error::Config("stacks exceed RAM".into()))?;
            stacks.push((bottom, top));
            top = bottom.saturating_sub(PAGE); // guard page
        }
        let heap_start = image_end.next_multiple_of(PAGE);
        let heap_end = top;
        if heap_end < heap_start + MIN_HEAP {
            return Err(Error::Config(format!(
                "--mem {} MiB leaves no room for a heap after the image ({} KiB) and {} stack(s) of {} KiB",
                mib(cfg.mem_size),
                (image_end - ram_base) >> 10,
                cfg.vcpus,
                cfg.stack_size >> 10
            )));
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
                matches!(Layout::plan(&cfg, 0x21_0000), Err(Error::Config(_))),
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
