//! A small safe userfaultfd: create, register a mapping, unregister it,
//! fill one page, read one fault event.
//!
//! Four raw ioctls (API, REGISTER, UNREGISTER, COPY) rather than the
//! `userfaultfd` crate, which builds its bindings with bindgen and pulls in
//! nix; the structs below are stable kernel ABI
//! (include/uapi/linux/userfaultfd.h) and the ioctl numbers are unit tested
//! against the header's values. Every method takes the mapping it acts on,
//! so no call can touch memory the caller does not own.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use vm_memory::MmapRegion;

use crate::memory::PAGE;

const UFFD_API: u64 = 0xaa;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// A missing page raises SIGBUS (KVM_RUN: -EFAULT) instead of waiting.
pub const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (0xaa << 8) | nr
}
const fn iowr(nr: u64, size: usize) -> u64 {
    ioc(3, nr, size)
}

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioRange {
    start: u64,
    len: u64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}
/// `struct uffd_msg` with the pagefault member of its union.
#[repr(C)]
#[derive(Default)]
struct UffdMsg {
    event: u8,
    reserved1: u8,
    reserved2: u16,
    reserved3: u32,
    flags: u64,
    address: u64,
    ptid: u32,
    pad: u32,
}

const UFFDIO_API: u64 = iowr(0x3f, std::mem::size_of::<UffdioApi>());
const UFFDIO_REGISTER: u64 = iowr(0x00, std::mem::size_of::<UffdioRegister>());
const UFFDIO_COPY: u64 = iowr(0x03, std::mem::size_of::<UffdioCopy>());
/// `_IOR(0xaa, 0x01, struct uffdio_range)`.
const UFFDIO_UNREGISTER: u64 = ioc(2, 0x01, std::mem::size_of::<UffdioRange>());

const _: () = {
    assert!(std::mem::size_of::<UffdMsg>() == 32);
    assert!(UFFDIO_API == 0xc018_aa3f);
    assert!(UFFDIO_REGISTER == 0xc020_aa00);
    assert!(UFFDIO_COPY == 0xc028_aa03);
    assert!(UFFDIO_UNREGISTER == 0x8010_aa01);
};

/// A non-blocking userfaultfd.
pub struct Uffd(OwnedFd);

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

impl Uffd {
    /// A new userfaultfd after UFFDIO_API with `features`.
    pub fn new(features: u64) -> std::io::Result<Uffd> {
        // SAFETY: the userfaultfd syscall takes flags and returns a new fd or -1.
        let raw =
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if raw < 0 {
            return Err(last_err());
        }
        let raw = RawFd::try_from(raw).map_err(|_| std::io::Error::other("fd out of range"))?;
        // SAFETY: raw is a new fd that nothing else owns.
        let uffd = Uffd(unsafe { OwnedFd::from_raw_fd(raw) });
        let mut api = UffdioApi {
            api: UFFD_API,
            features,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes exactly one UffdioApi.
        if unsafe { libc::ioctl(uffd.fd(), UFFDIO_API as _, &mut api) } < 0 {
            return Err(last_err());
        }
        Ok(uffd)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    fn range(m: &MmapRegion) -> UffdioRange {
        UffdioRange {
            start: m.as_ptr() as u64,
            len: m.size() as u64,
        }
    }

    /// Report missing pages of `m` on this fd.
    pub fn register(&self, m: &MmapRegion) -> std::io::Result<()> {
        let mut reg = UffdioRegister {
            range: Self::range(m),
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes one UffdioRegister; the
        // range is exactly the live mapping `m`.
        if unsafe { libc::ioctl(self.fd(), UFFDIO_REGISTER as _, &mut reg) } < 0 {
            return Err(last_err());
        }
        Ok(())
    }

    /// Stop reporting `m`'s missing pages here.
    pub fn unregister(&self, m: &MmapRegion) -> std::io::Result<()> {
        let mut range = Self::range(m);
        // SAFETY: UFFDIO_UNREGISTER reads one UffdioRange: the live mapping `m`.
        if unsafe { libc::ioctl(self.fd(), UFFDIO_UNREGISTER as _, &mut range) } < 0 {
            return Err(last_err());
        }
        Ok(())
    }

    /// Fill the missing page at `offset` of `m` with `page` (one page).
    /// Ok(false): someone filled it first (EEXIST), which is fine.
    pub fn copy(&self, m: &MmapRegion, offset: u64, page: &[u8]) -> std::io::Result<bool> {
        let fits = offset
            .checked_add(PAGE)
            .is_some_and(|end| end <= m.size() as u64);
        if page.len() != PAGE as usize || !offset.is_multiple_of(PAGE) || !fits {
            return Err(std::io::Error::other(format!(
                "page copy at offset {offset:#x} of a {:#x}-byte mapping",
                m.size()
            )));
        }
        let mut copy = UffdioCopy {
            dst: m.as_ptr() as u64 + offset,
            src: page.as_ptr() as u64,
            len: PAGE,
            mode: 0,
            copy: 0,
        };
        // SAFETY: UFFDIO_COPY copies PAGE bytes from `page` (live, exactly
        // PAGE long) into the mapping `m` at `offset` (page aligned, inside
        // it: checked above); it reads and writes one UffdioCopy.
        if unsafe { libc::ioctl(self.fd(), UFFDIO_COPY as _, &mut copy) } < 0 {
            let e = last_err();
            return match e.raw_os_error() {
                Some(libc::EEXIST) => Ok(false),
                _ => Err(e),
            };
        }
        Ok(true)
    }

    /// The host address of one pending page fault, if an event is ready
    /// (None: no event, another reader took it, or not a page fault).
    pub fn read_fault(&self) -> Option<u64> {
        let mut msg = UffdMsg::default();
        let size = std::mem::size_of::<UffdMsg>();
        // SAFETY: reads at most one uffd_msg into `msg`, which is that big.
        let n = unsafe { libc::read(self.fd(), std::ptr::addr_of_mut!(msg).cast(), size) };
        (usize::try_from(n) == Ok(size) && msg.event == UFFD_EVENT_PAGEFAULT).then_some(msg.address)
    }
}
