//! Guest RAM (vm-memory) and checked access to it on the guest's behalf.
//!
//! Every address or length that came from the guest goes through these
//! helpers, which check it against guest memory with overflow-safe
//! arithmetic and return an error instead of panicking.

use vessel_abi::zerocopy::{FromBytes, Immutable, IntoBytes};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

use crate::error::Result;

/// The page size Vessel maps guests with (4 KiB on both architectures).
pub const PAGE: u64 = 0x1000;

/// A guest RAM access or mapping that failed ("guest memory: ...").
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A size the host cannot map.
    #[error("size {0:#x} too large")]
    SizeTooLarge(u64),
    /// The host mapping for guest RAM could not be made.
    #[error("cannot map {size} bytes of guest RAM: {source}")]
    Map {
        /// Bytes asked for.
        size: u64,
        /// Why.
        source: vm_memory::mmap::FromRangesError,
    },
    /// A range outside guest RAM.
    #[error("range {addr:#x}+{len:#x} is outside guest RAM")]
    OutOfRange {
        /// Guest-physical start.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// A u64 store at an address that is not 8-byte aligned.
    #[error("unaligned u64 store at {0:#x}")]
    Unaligned(u64),
    /// madvise or mincore on guest RAM failed.
    #[error("releasing or inspecting guest RAM: {0}")]
    Discard(std::io::Error),
    /// A length over the limit for its use.
    #[error("length {len} exceeds the limit of {max}")]
    TooLong {
        /// The length asked for.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// vm-memory refused an access that passed the range check (`op`:
    /// "read", "write", "store").
    #[error("{op} at {addr:#x}: {source}")]
    Access {
        /// The operation.
        op: &'static str,
        /// Guest-physical address.
        addr: u64,
        /// Why.
        source: vm_memory::GuestMemoryError,
    },
}

fn access(op: &'static str, addr: u64) -> impl FnOnce(vm_memory::GuestMemoryError) -> MemoryError {
    move |source| MemoryError::Access { op, addr, source }
}

/// Guest RAM: one contiguous region. Clones share the mapping, which lives
/// until the last clone is dropped.
#[derive(Clone)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
    base: u64,
    size: u64,
    /// Pages the host wrote on the guest's behalf (KVM's dirty log sees
    /// only the guest's own writes), when a sandbox restores RAM.
    host_dirty: Option<std::sync::Arc<crate::snapshot::memory::DirtyBits>>,
}

impl GuestRam {
    /// Map `size` bytes of anonymous memory for guest-physical `[base, base+size)`.
    pub fn new(base: u64, size: u64) -> Result<GuestRam> {
        let len = usize::try_from(size).map_err(|_| MemoryError::SizeTooLarge(size))?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(base), len)])
            .map_err(|source| MemoryError::Map { size, source })?;
        Ok(GuestRam {
            mem,
            base,
            size,
            host_dirty: None,
        })
    }

    /// Record from now on which pages the host writes.
    pub fn track_host_writes(&mut self) {
        let pages = self.size.div_ceil(PAGE) as usize;
        self.host_dirty = Some(std::sync::Arc::new(
            crate::snapshot::memory::DirtyBits::new(pages),
        ));
    }

    /// The pages the host wrote since the last call, as a bitmap (bit i of
    /// word i / 64: page i); empty when writes are not tracked.
    pub(crate) fn take_host_dirty(&self) -> Vec<u64> {
        self.host_dirty
            .as_ref()
            .map(|d| d.take())
            .unwrap_or_default()
    }

    fn mark(&self, addr: u64, len: usize) {
        if let Some(d) = &self.host_dirty {
            if len > 0 {
                let first = (addr - self.base) / PAGE;
                let last = (addr - self.base + len as u64 - 1) / PAGE;
                d.mark(first as usize, last as usize);
            }
        }
    }

    /// Write `data` without recording it as a host write (a restore
    /// putting back a page's saved contents).
    pub(crate) fn write_untracked(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.check(addr, data.len() as u64)?;
        self.mem
            .write_slice(data, GuestAddress(addr))
            .map_err(access("write", addr))?;
        Ok(())
    }

    /// Give `[addr, addr+len)` (page aligned) back to the host: it reads
    /// as zeros afterwards and uses no memory until touched.
    pub(crate) fn discard(&self, addr: u64, len: u64) -> Result<()> {
        self.check(addr, len)?;
        let at = self.host_addr() + (addr - self.base);
        // SAFETY: the range lies inside this anonymous private mapping
        // (checked above); MADV_DONTNEED only replaces its contents with
        // zero pages, which KVM's MMU notifier sees.
        let r =
            unsafe { libc::madvise(at as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(MemoryError::Discard(std::io::Error::last_os_error()).into());
        }
        Ok(())
    }

    /// Which pages of RAM have memory behind them (mincore: one byte per
    /// page, bit 0 set when resident). Pages without are zero.
    pub(crate) fn resident(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.size.div_ceil(PAGE) as usize];
        // SAFETY: the mapping is `size` bytes at `host_addr`, page aligned;
        // `v` has one byte per page of it.
        let r = unsafe {
            libc::mincore(
                self.host_addr() as *mut libc::c_void,
                self.size as usize,
                v.as_mut_ptr(),
            )
        };
        if r != 0 {
            return Err(MemoryError::Discard(std::io::Error::last_os_error()).into());
        }
        Ok(v)
    }

    /// Guest-physical address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Guest-physical address one past the last byte.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Host address of the mapping (for KVM_SET_USER_MEMORY_REGION).
    pub fn host_addr(&self) -> u64 {
        self.mem
            .iter()
            .next()
            .map(|r| r.as_ptr() as u64)
            .unwrap_or(0)
    }

    /// True if `[addr, addr+len)` lies inside RAM (overflow-safe).
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        match addr.checked_add(len) {
            Some(end) => addr >= self.base && end <= self.end(),
            None => false,
        }
    }

    fn check(&self, addr: u64, len: u64) -> Result<(), MemoryError> {
        if self.contains(addr, len) {
            Ok(())
        } else {
            Err(MemoryError::OutOfRange { addr, len })
        }
    }

    /// Write `data` at guest-physical `addr` (checked to lie inside).
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.check(addr, data.len() as u64)?;
        self.mark(addr, data.len());
        self.mem
            .write_slice(data, GuestAddress(addr))
            .map_err(access("write", addr))?;
        Ok(())
    }

    /// Store an aligned u64 with release order: everything written before
    /// it is visible to a guest that loads it with acquire order.
    pub fn store_u64_release(&self, addr: u64, v: u64) -> Result<()> {
        self.check(addr, 8)?;
        if !addr.is_multiple_of(8) {
            return Err(MemoryError::Unaligned(addr).into());
        }
        self.mark(addr, 8);
        self.mem
            .store(v, GuestAddress(addr), std::sync::atomic::Ordering::Release)
            .map_err(access("store", addr))?;
        Ok(())
    }

    /// Read `buf.len()` bytes at guest-physical `addr` (checked to lie inside).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.check(addr, buf.len() as u64)?;
        self.mem
            .read_slice(buf, GuestAddress(addr))
            .map_err(access("read", addr))?;
        Ok(())
    }

    /// Read `len` bytes into a new buffer, refusing more than `max`.
    pub fn read_vec(&self, addr: u64, len: u64, max: u64) -> Result<Vec<u8>> {
        if len > max {
            return Err(MemoryError::TooLong { len, max }.into());
        }
        let mut v = vec![0u8; len as usize];
        self.read(addr, &mut v)?;
        Ok(v)
    }

    /// Read an ABI struct (any bytes are a valid `T`: `FromBytes`).
    pub fn read_pod<T: FromBytes + IntoBytes>(&self, addr: u64) -> Result<T> {
        let mut v = T::new_zeroed();
        self.read(addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Write an ABI struct (no padding: `IntoBytes`).
    pub fn write_pod<T: IntoBytes + Immutable>(&self, addr: u64, v: &T) -> Result<()> {
        self.write(addr, v.as_bytes())
    }

    /// Zero `[addr, addr+len)`.
    pub fn zero(&self, addr: u64, len: u64) -> Result<()> {
        self.check(addr, len)?;
        let zeros = [0u8; 4096];
        let mut at = addr;
        while at < addr + len {
            let n = (addr + len - at).min(4096);
            self.write(at, &zeros[..n as usize])?;
            at += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vessel_abi::GuestSlice;

    #[test]
    fn checked_access_refuses_out_of_range_and_overflow() {
        let ram = GuestRam::new(0x1000, 0x4000).unwrap();
        assert!(ram.contains(0x1000, 0x4000));
        assert!(!ram.contains(0x0fff, 2));
        assert!(!ram.contains(0x4fff, 2));
        assert!(!ram.contains(u64::MAX, 2));
        assert!(!ram.contains(0x2000, u64::MAX));
        assert!(ram.write(0x4ffc, &[1, 2, 3, 4, 5]).is_err());
        assert!(ram.read_vec(0x1000, 100, 10).is_err());
    }

    #[test]
    fn pod_round_trip() {
        let ram = GuestRam::new(0, 0x2000).unwrap();
        let s = GuestSlice {
            addr: 0x1234,
            len: 99,
        };
        ram.write_pod(0x100, &s).unwrap();
        assert_eq!(ram.read_pod::<GuestSlice>(0x100).unwrap(), s);
        ram.zero(0x100, 16).unwrap();
        assert_eq!(
            ram.read_pod::<GuestSlice>(0x100).unwrap(),
            GuestSlice::default()
        );
    }
}
