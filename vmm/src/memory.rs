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
}

impl GuestRam {
    /// Map `size` bytes of anonymous memory for guest-physical `[base, base+size)`.
    pub fn new(base: u64, size: u64) -> Result<GuestRam> {
        let len = usize::try_from(size).map_err(|_| MemoryError::SizeTooLarge(size))?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(base), len)])
            .map_err(|source| MemoryError::Map { size, source })?;
        Ok(GuestRam { mem, base, size })
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
