//! The boot area: BootInfo, the vCPU table, hypercall frames, the guest's
//! stdout buffer, args and env.

use vessel_abi::zerocopy::IntoBytes;
use vessel_abi::{
    BootInfo, ConsoleBuffer, GuestSlice, VcpuInfo, ABI_VERSION, BOOT_MAGIC, MAX_VCPUS,
};

use crate::error::Result;
use crate::layout::{Layout, LayoutError};
use crate::memory::GuestRam;

/// Offsets inside the boot area.
const VCPUS_OFF: u64 = 0x100;
const FRAMES_OFF: u64 = 0x1000;
const FRAME_STRIDE: u64 = 128;
const STDOUT_OFF: u64 = 0x2000;
const STRINGS_OFF: u64 =
    STDOUT_OFF + (std::mem::size_of::<ConsoleBuffer>() as u64).next_multiple_of(0x100);

/// Guest address of vCPU `i`'s hypercall frame.
pub fn frame_addr(area: u64, i: u32) -> u64 {
    area + FRAMES_OFF + FRAME_STRIDE * u64::from(i)
}

/// Guest address of vCPU `i`'s [`VcpuInfo`], given the BootInfo's address
/// (the start of the boot area).
pub fn vcpu_info_addr(info: u64, i: u32) -> u64 {
    info + VCPUS_OFF + u64::from(i) * std::mem::size_of::<VcpuInfo>() as u64
}

/// What goes into BootInfo besides the layout.
pub struct BootParams<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub features: u64,
    pub vector_bits: u64,
    pub counter_khz: u64,
    /// (name, guest address, length) of each lazy region.
    pub lazy: &'a [(String, u64, u64)],
    /// Console behaviour bits (`vessel_abi::console`).
    pub console_flags: u64,
}

/// A bump writer over `[at, end)`.
struct Area<'a> {
    ram: &'a GuestRam,
    /// Where the strings begin: the space they have is `first..end`.
    first: u64,
    at: u64,
    end: u64,
}

impl Area<'_> {
    fn put(&mut self, bytes: &[u8], align: u64) -> Result<u64> {
        let start = self.at.next_multiple_of(align);
        let len = bytes.len() as u64;
        if start.checked_add(len).is_none_or(|e| e > self.end) {
            return Err(LayoutError::BootAreaFull {
                room: self.end - self.first,
                item: len,
                left: self.end.saturating_sub(self.at),
            }
            .into());
        }
        self.ram.write(start, bytes)?;
        self.at = start + len;
        Ok(start)
    }

    fn strs(&mut self, items: impl Iterator<Item = String>) -> Result<(u64, u64)> {
        let mut refs = Vec::new();
        for s in items {
            let addr = self.put(s.as_bytes(), 1)?;
            refs.push(GuestSlice {
                addr,
                len: s.len() as u64,
            });
        }
        Ok((self.put(refs.as_bytes(), 8)?, refs.len() as u64))
    }
}

/// Guest addresses [`write`] chose. The launcher keeps them: the guest can
/// overwrite its BootInfo, so nothing is read back from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootAddrs {
    /// The BootInfo (handed to the guest in its first argument register).
    pub info: u64,
    /// The guest's stdout [`ConsoleBuffer`] (`BootInfo::stdout_buffer`).
    pub stdout: u64,
}

/// Write the boot area.
pub fn write(ram: &GuestRam, l: &Layout, p: &BootParams) -> Result<BootAddrs> {
    // Fresh guest RAM is zero, so the area needs no clearing (clearing 1 MiB
    // would fault in 256 pages: about 1 ms of a 5 ms boot).
    let (start, end) = l.boot_area;
    let mut area = Area {
        ram,
        first: start + STRINGS_OFF,
        at: start + STRINGS_OFF,
        end,
    };
    let (argv, argc) = area.strs(p.args.iter().cloned())?;
    let (envp, envc) = area.strs(p.env.iter().cloned())?;
    let mut lazy_entries = Vec::new();
    for (name, addr, len) in p.lazy {
        let n = area.put(name.as_bytes(), 1)?;
        lazy_entries.push(vessel_abi::LazyRegion {
            name: GuestSlice {
                addr: n,
                len: name.len() as u64,
            },
            addr: *addr,
            len: *len,
        });
    }
    let lazy = area.put(lazy_entries.as_bytes(), 8)?;

    // The stdout buffer starts empty: `len` 0 (the data needs no clearing).
    let stdout = start + STDOUT_OFF;
    ram.write(stdout, &0u64.to_le_bytes())?;

    let vcpus = start + VCPUS_OFF;
    for i in 0..l.vcpus {
        let (bottom, top) = l.stacks[i as usize];
        let info = VcpuInfo {
            id: u64::from(i),
            frame: frame_addr(start, i),
            stack_top: top,
            stack_size: top - bottom,
        };
        ram.write_pod(vcpu_info_addr(start, i), &info)?;
    }
    let info = BootInfo {
        magic: BOOT_MAGIC,
        abi_version: ABI_VERSION,
        vcpu_count: l.vcpus,
        features: p.features,
        mem_size: l.ram_end - l.ram_base,
        heap_start: l.heap.0,
        heap_size: l.heap.1 - l.heap.0,
        argv,
        argc,
        envp,
        envc,
        vcpus,
        lazy,
        lazy_count: lazy_entries.len() as u64,
        vector_bits: p.vector_bits,
        counter_khz: p.counter_khz,
        console_flags: p.console_flags,
        stdout_buffer: stdout,
        reserved: [0; 6],
    };
    ram.write_pod(start, &info)?;
    Ok(BootAddrs {
        info: start,
        stdout,
    })
}

const _: () = {
    assert!(std::mem::size_of::<BootInfo>() as u64 <= VCPUS_OFF);
    assert!(VCPUS_OFF + MAX_VCPUS as u64 * std::mem::size_of::<VcpuInfo>() as u64 <= FRAMES_OFF);
    assert!(std::mem::size_of::<vessel_abi::Frame>() as u64 <= FRAME_STRIDE);
    assert!(FRAMES_OFF + MAX_VCPUS as u64 * FRAME_STRIDE <= STDOUT_OFF);
    assert!(STDOUT_OFF.is_multiple_of(std::mem::align_of::<ConsoleBuffer>() as u64));
};

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            ram_base: 0,
            ram_end: 0x80_0000,
            vcpus: 1,
            boot_area: (0x10_0000, 0x10_4000),
            heap: (0x30_0000, 0x70_0000),
            stacks: vec![(0x70_1000, 0x80_0000)],
        }
    }

    #[test]
    fn boot_info_describes_args_env_and_vcpus() {
        let ram = GuestRam::new(0, 0x80_0000).unwrap();
        let l = layout();
        let args = vec!["hello".to_string(), "wörld".to_string()];
        let env = vec!["A=1".to_string()];
        let p = BootParams {
            args: &args,
            env: &env,
            features: 0,
            vector_bits: 0,
            counter_khz: 7,
            lazy: &[],
            console_flags: 0,
        };
        let at = write(&ram, &l, &p).unwrap();
        let b: BootInfo = ram.read_pod(at.info).unwrap();
        assert_eq!(b.stdout_buffer, at.stdout);
        let out: ConsoleBuffer = ram.read_pod(at.stdout).unwrap();
        assert_eq!(out.len, 0);
        assert_eq!(b.magic, BOOT_MAGIC);
        assert_eq!((b.argc, b.envc, b.vcpu_count, b.counter_khz), (2, 1, 1, 7));
        assert_eq!((b.heap_start, b.heap_size), (0x30_0000, 0x40_0000));
        let s: GuestSlice = ram.read_pod(b.argv + 16).unwrap();
        assert_eq!(
            ram.read_vec(s.addr, s.len, 100).unwrap(),
            "wörld".as_bytes()
        );
        let v: VcpuInfo = ram.read_pod(b.vcpus).unwrap();
        assert_eq!(
            (v.frame, v.stack_top),
            (frame_addr(0x10_0000, 0), 0x80_0000)
        );
    }

    #[test]
    fn oversized_arguments_are_an_error_not_a_panic() {
        let ram = GuestRam::new(0, 0x80_0000).unwrap();
        let args = vec!["x".repeat(0x3000)];
        let p = BootParams {
            args: &args,
            env: &[],
            features: 0,
            vector_bits: 0,
            counter_khz: 0,
            lazy: &[],
            console_flags: 0,
        };
        let e = write(&ram, &layout(), &p).unwrap_err().to_string();
        assert!(e.contains("do not fit"), "{e}");
        let room = (0x4000 - STRINGS_OFF) / 1024;
        assert!(
            e.contains(&format!("the {room} KiB the boot area has")),
            "{e}"
        );
        assert!(e.contains("a 12288-byte item"), "what did not fit: {e}");
    }
}
