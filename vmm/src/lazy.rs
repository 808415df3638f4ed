//! Lazy regions: host files that appear in guest memory and are read on
//! first touch.
//!
//! Each region is anonymous memory registered with userfaultfd in MISSING
//! mode and given to KVM as its own memslot. A guest touch of a missing page
//! makes the kernel (the vCPU thread, or KVM's async-PF worker) wait on the
//! userfaultfd; a pool of fetch threads reads the event, sleeps the emulated
//! storage latency, `pread`s that page of the file and fills it with
//! UFFDIO_COPY, which wakes whoever waited. Several fetches run at once, so
//! faults that KVM turned into async page faults overlap.
//!
//! The launcher never reads or writes lazy pages itself.
//!
//! userfaultfd is used through three raw ioctls (API, REGISTER, COPY) rather
//! than the `userfaultfd` crate: that crate builds its bindings with bindgen
//! and pulls in nix; the three structs below are stable kernel ABI and their
//! ioctl numbers are unit tested against the uapi header values.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};

pub const PAGE: u64 = 4096;

/// `--lazy NAME=FILE[:SIZE]` as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LazySpec {
    pub name: String,
    pub path: PathBuf,
    /// Region size in bytes; None: the file's size.
    pub size: Option<u64>,
}

impl LazySpec {
    /// Parse `NAME=FILE` or `NAME=FILE:SIZE` (SIZE in bytes or K/M/G).
    pub fn parse(
        s: &str,
        parse_size: impl Fn(&str) -> std::result::Result<u64, String>,
    ) -> std::result::Result<LazySpec, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("--lazy `{s}`: want NAME=FILE or NAME=FILE:SIZE"))?;
        if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
            return Err(format!(
                "--lazy `{s}`: the region name must be non-empty without spaces"
            ));
        }
        let (path, size) = match rest.rsplit_once(':') {
            Some((p, sz)) if !p.is_empty() && parse_size(sz).is_ok() => (p, Some(parse_size(sz)?)),
            _ => (rest, None),
        };
        if path.is_empty() {
            return Err(format!("--lazy `{s}`: no file given"));
        }
        Ok(LazySpec {
            name: name.to_string(),
            path: PathBuf::from(path),
            size,
        })
    }
}

/// A region planned, file opened, before any memory exists.
pub struct PlannedRegion {
    pub name: String,
    pub file: Arc<File>,
    pub path: PathBuf,
    pub file_len: u64,
    /// Bytes the guest sees (BootInfo `len`).
    pub len: u64,
    /// Guest-physical start.
    pub gpa: u64,
    /// Mapped bytes: `len` rounded up to pages.
    pub mapped: u64,
}

/// Round up to a multiple of `align` (a power of two), None on overflow.
pub fn round_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

/// Open each file and place the regions from `base` on, `align` apart, below `limit`.
pub fn plan(specs: &[LazySpec], base: u64, align: u64, limit: u64) -> Result<Vec<PlannedRegion>> {
    let mut out: Vec<PlannedRegion> = Vec::new();
    let mut at = base;
    for s in specs {
        if out.iter().any(|r| r.name == s.name) {
            return Err(Error::Config(format!(
                "--lazy {}: region name given twice",
                s.name
            )));
        }
        let file = File::open(&s.path).map_err(|e| {
            Error::Config(format!(
                "--lazy {}: cannot open {}: {e}",
                s.name,
                s.path.display()
            ))
        })?;
        let meta = file.metadata().map_err(|e| {
            Error::Config(format!(
                "--lazy {}: cannot stat {}: {e}",
                s.name,
                s.path.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(Error::Config(format!(
                "--lazy {}: {} is not a regular file",
                s.name,
                s.path.display()
            )));
        }
        let file_len = meta.len();
        // Reading one byte now turns "exists but unreadable" (a directory
        // handle, EIO, permissions on some filesystems) into an error before boot.
        if file_len > 0 {
            let mut b = [0u8; 1];
            file.read_at(&mut b, 0).map_err(|e| {
                Error::Config(format!(
                    "--lazy {}: cannot read {}: {e}",
                    s.name,
                    s.path.display()
                ))
            })?;
        }
        let len = match s.size {
            Some(sz) if sz < file_len => {
                return Err(Error::Config(format!(
                    "--lazy {}: size {sz} is smaller than {} ({file_len} bytes)",
                    s.name,
                    s.path.display()
                )))
            }
            Some(sz) => sz,
            None => file_len,
        };
        if len == 0 {
            return Err(Error::Config(format!(
                "--lazy {}: {} is empty (give a size with NAME=FILE:SIZE for a zero-filled region)",
                s.name,
                s.path.display()
            )));
        }
        let mapped = round_up(len, PAGE)
            .ok_or_else(|| Error::Config(format!("--lazy {}: size {len} too large", s.name)))?;
        let end = at
            .checked_add(mapped)
            .filter(|e| *e <= limit)
            .ok_or_else(|| {
                Error::Config(format!(
                    "--lazy {}: {len} bytes do not fit in the guest address space for lazy regions",
                    s.name
                ))
            })?;
        out.push(PlannedRegion {
            name: s.name.clone(),
            file: Arc::new(file),
            path: s.path.clone(),
            file_len,
            len,
            gpa: at,
            mapped,
        });
        at = round_up(end, align).unwrap_or(u64::MAX);
    }
    Ok(out)
}

/// Fill `page` (one page of the region at byte `offset`) from the file:
/// bytes past the end of the file read as zero.
pub fn fill_page(file: &File, file_len: u64, offset: u64, page: &mut [u8]) -> std::io::Result<()> {
    page.fill(0);
    if offset >= file_len {
        return Ok(());
    }
    let want = ((file_len - offset) as usize).min(page.len());
    let mut done = 0;
    while done < want {
        match file.read_at(&mut page[done..want], offset + done as u64) {
            Ok(0) => break, // file shrank: the rest reads as zero
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// --- userfaultfd ABI (include/uapi/linux/userfaultfd.h) ---

const UFFD_API: u64 = 0xaa;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// A missing page raises SIGBUS (KVM_RUN: -EFAULT) instead of waiting.
const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

const fn iowr(ty: u64, nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (ty << 8) | nr
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

const UFFDIO_API: u64 = iowr(0xaa, 0x3f, std::mem::size_of::<UffdioApi>() as u64);
const UFFDIO_REGISTER: u64 = iowr(0xaa, 0x00, std::mem::size_of::<UffdioRegister>() as u64);
const UFFDIO_COPY: u64 = iowr(0xaa, 0x03, std::mem::size_of::<UffdioCopy>() as u64);
/// `_IOR(0xaa, 0x01, struct uffdio_range)`.
const UFFDIO_UNREGISTER: u64 =
    (2 << 30) | ((std::mem::size_of::<UffdioRange>() as u64) << 16) | (0xaa << 8) | 0x01;

const _: () = assert!(std::mem::size_of::<UffdMsg>() == 32);

/// Anonymous memory for all lazy regions plus the fetch threads serving it.
pub struct LazyMemory {
    regions: Arc<Vec<Backing>>,
    uffd: Option<Arc<OwnedFd>>,
    latency: Duration,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// First fetch error; the vCPU loop turns it into a guest fault.
    pub error: Arc<Mutex<Option<String>>>,
    /// Pages filled so far.
    pub fetched: Arc<AtomicU64>,
}

/// One region's host mapping.
pub struct Backing {
    pub name: String,
    pub gpa: u64,
    pub host: u64,
    pub mapped: u64,
    file: Arc<File>,
    file_len: u64,
}

// SAFETY (Send/Sync): Backing holds the mapping's address as an integer and
// an Arc<File>; the mapping is only touched through UFFDIO_COPY ioctls.

impl LazyMemory {
    /// Map and register every region, and start `workers` fetch threads that
    /// sleep `latency` per page.
    pub fn new(planned: &[PlannedRegion], latency: Duration, workers: usize) -> Result<LazyMemory> {
        let stop = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let fetched = Arc::new(AtomicU64::new(0));
        if planned.is_empty() {
            return Ok(LazyMemory {
                regions: Arc::new(vec![]),
                uffd: None,
                latency,
                stop,
                threads: vec![],
                error,
                fetched,
            });
        }
        let uffd = Arc::new(new_uffd(0)?);
        let mut regions = Vec::new();
        for p in planned {
            let len = usize::try_from(p.mapped)
                .map_err(|_| Error::Memory(format!("lazy region {} too large", p.name)))?;
            // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
            let host = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if host == libc::MAP_FAILED {
                return Err(Error::Memory(format!(
                    "cannot map {} bytes for lazy region {}: {}",
                    p.mapped,
                    p.name,
                    std::io::Error::last_os_error()
                )));
            }
            let backing = Backing {
                name: p.name.clone(),
                gpa: p.gpa,
                host: host as u64,
                mapped: p.mapped,
                file: p.file.clone(),
                file_len: p.file_len,
            };
            let mut reg = UffdioRegister {
                range: UffdioRange {
                    start: backing.host,
                    len: p.mapped,
                },
                mode: UFFDIO_REGISTER_MODE_MISSING,
                ioctls: 0,
            };
            regions.push(backing);
            // SAFETY: UFFDIO_REGISTER reads and writes one UffdioRegister;
            // the range is the mapping made above.
            if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER as _, &mut reg) } < 0 {
                let e = std::io::Error::last_os_error();
                drop(Backings(regions));
                return Err(Error::Memory(format!(
                    "UFFDIO_REGISTER for lazy region {}: {e}",
                    p.name
                )));
            }
        }
        let regions = Arc::new(regions);
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let (uffd, regions, stop, error, fetched) = (
                uffd.clone(),
                regions.clone(),
                stop.clone(),
                error.clone(),
                fetched.clone(),
            );
            let t = std::thread::Builder::new()
                .name(format!("vessel-fetch-{i}"))
                .stack_size(64 << 10)
                .spawn(move || fetch_loop(&uffd, &regions, &stop, &error, &fetched, latency))
                .map_err(|e| Error::Other(format!("cannot start a fetch thread: {e}")))?;
            threads.push(t);
        }
        Ok(LazyMemory {
            regions,
            uffd: Some(uffd),
            latency,
            stop,
            threads,
            error,
            fetched,
        })
    }

    pub fn regions(&self) -> &[Backing] {
        &self.regions
    }

    /// Move every region to a new userfaultfd in SIGBUS mode: from now on a
    /// touch of a missing page fails (KVM_RUN: -EFAULT) instead of waiting,
    /// and pages are filled only through the returned [`Filler`]. Pages
    /// already filled stay. Used by a launcher that serves page faults
    /// itself (aarch64 async page faults).
    pub fn switch_to_sigbus(&self) -> Result<Filler> {
        let old = self
            .uffd
            .as_ref()
            .ok_or_else(|| Error::Memory("no lazy regions to serve".into()))?;
        let uffd = Arc::new(new_uffd(UFFD_FEATURE_SIGBUS)?);
        for r in self.regions.iter() {
            let mut range = UffdioRange {
                start: r.host,
                len: r.mapped,
            };
            // SAFETY: UFFDIO_UNREGISTER reads one UffdioRange: a range this
            // module registered on `old`.
            if unsafe { libc::ioctl(old.as_raw_fd(), UFFDIO_UNREGISTER as _, &mut range) } < 0 {
                return Err(Error::Memory(format!(
                    "UFFDIO_UNREGISTER for lazy region {}: {}",
                    r.name,
                    std::io::Error::last_os_error()
                )));
            }
            let mut reg = UffdioRegister {
                range: UffdioRange {
                    start: r.host,
                    len: r.mapped,
                },
                mode: UFFDIO_REGISTER_MODE_MISSING,
                ioctls: 0,
            };
            // SAFETY: UFFDIO_REGISTER reads and writes one UffdioRegister
            // for the region's own mapping.
            if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER as _, &mut reg) } < 0 {
                return Err(Error::Memory(format!(
                    "UFFDIO_REGISTER (SIGBUS mode) for lazy region {}: {}",
                    r.name,
                    std::io::Error::last_os_error()
                )));
            }
        }
        Ok(Filler {
            uffd,
            regions: self.regions.clone(),
            error: self.error.clone(),
            fetched: self.fetched.clone(),
            latency: self.latency,
        })
    }

    /// The first fetch error, if any.
    pub fn failed(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// Fills pages of SIGBUS-mode regions on request (any thread).
#[derive(Clone)]
pub struct Filler {
    uffd: Arc<OwnedFd>,
    regions: Arc<Vec<Backing>>,
    error: Arc<Mutex<Option<String>>>,
    fetched: Arc<AtomicU64>,
    latency: Duration,
}

impl Filler {
    /// The region holding guest-physical `gpa`, if any.
    pub fn contains(&self, gpa: u64) -> bool {
        self.regions
            .iter()
            .any(|r| gpa >= r.gpa && gpa - r.gpa < r.mapped)
    }

    /// Fetch and fill the page at guest-physical `gpa` (page aligned), after
    /// the emulated latency. A page someone already filled is fine. Errors
    /// are recorded like the fetch threads' (the page reads as zeros where
    /// the file could not be read).
    pub fn fill(&self, gpa: u64) {
        let Some(r) = self
            .regions
            .iter()
            .find(|r| gpa >= r.gpa && gpa - r.gpa < r.mapped)
        else {
            return;
        };
        let fail = |m: String| {
            if let Ok(mut e) = self.error.lock() {
                e.get_or_insert(m);
            }
        };
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        let offset = (gpa - r.gpa) & !(PAGE - 1);
        let mut page = vec![0u8; PAGE as usize];
        serve_page(&self.uffd, r, offset, &mut page, &self.fetched, fail);
    }
}

/// A new non-blocking userfaultfd after UFFDIO_API with `features`.
fn new_uffd(features: u64) -> Result<OwnedFd> {
    // SAFETY: the userfaultfd syscall takes flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if raw < 0 {
        return Err(Error::Memory(format!(
            "userfaultfd for lazy regions: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: raw is a new fd that nothing else owns.
    let uffd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let mut api = UffdioApi {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes exactly one UffdioApi.
    if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API as _, &mut api) } < 0 {
        return Err(Error::Memory(format!(
            "UFFDIO_API (features {features:#x}): {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(uffd)
}

struct Backings(Vec<Backing>);
impl Drop for Backings {
    fn drop(&mut self) {
        for b in &self.0 {
            // SAFETY: host/mapped describe a mapping this module made.
            unsafe { libc::munmap(b.host as *mut libc::c_void, b.mapped as usize) };
        }
    }
}

impl Drop for LazyMemory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(r) = Arc::get_mut(&mut self.regions) {
            drop(Backings(std::mem::take(r)));
        }
    }
}

fn fetch_loop(
    uffd: &OwnedFd,
    regions: &[Backing],
    stop: &AtomicBool,
    error: &Mutex<Option<String>>,
    fetched: &AtomicU64,
    latency: Duration,
) {
    let mut page = vec![0u8; PAGE as usize];
    let fail = |m: String| {
        if let Ok(mut e) = error.lock() {
            e.get_or_insert(m);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: uffd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        let mut msg = UffdMsg::default();
        // SAFETY: reads at most one uffd_msg into msg.
        let n = unsafe {
            libc::read(
                uffd.as_raw_fd(),
                &mut msg as *mut UffdMsg as *mut libc::c_void,
                std::mem::size_of::<UffdMsg>(),
            )
        };
        if n != std::mem::size_of::<UffdMsg>() as isize || msg.event != UFFD_EVENT_PAGEFAULT {
            continue; // another worker took it (EAGAIN), or not a fault
        }
        let addr = msg.address & !(PAGE - 1);
        let Some(r) = regions
            .iter()
            .find(|r| addr >= r.host && addr < r.host + r.mapped)
        else {
            fail(format!(
                "userfaultfd event at unknown host address {addr:#x}"
            ));
            continue;
        };
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        serve_page(uffd, r, addr - r.host, &mut page, fetched, fail);
    }
}

/// Read the page at `offset` of region `r` into `page` (zeros past the end
/// of the file, or where it cannot be read) and UFFDIO_COPY it into place;
/// count it in `fetched`. A page someone else filled first (EEXIST: a
/// duplicate event, or another filler) is fine. Errors go to `fail`.
fn serve_page(
    uffd: &OwnedFd,
    r: &Backing,
    offset: u64,
    page: &mut [u8],
    fetched: &AtomicU64,
    fail: impl Fn(String),
) {
    if page.len() < PAGE as usize {
        return fail(format!("lazy region {}: page buffer too small", r.name));
    }
    if let Err(e) = fill_page(&r.file, r.file_len, offset, page) {
        fail(format!(
            "lazy region {}: reading offset {offset:#x} failed: {e} (page filled with zeros)",
            r.name
        ));
        page.fill(0);
    }
    let mut copy = UffdioCopy {
        dst: r.host + offset,
        src: page.as_ptr() as u64,
        len: PAGE,
        mode: 0,
        copy: 0,
    };
    // SAFETY: UFFDIO_COPY copies one page from `page` (live, at least PAGE
    // bytes, checked above) into the registered mapping of region r at
    // `offset` < r.mapped.
    let rc = unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_COPY as _, &mut copy) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            fail(format!(
                "lazy region {}: UFFDIO_COPY at offset {offset:#x}: {e}",
                r.name
            ));
        }
    } else {
        fetched.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> std::result::Result<u64, String> {
        s.parse::<u64>().map_err(|e| e.to_string())
    }

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        assert_eq!(UFFDIO_API, 0xc018_aa3f);
        assert_eq!(UFFDIO_REGISTER, 0xc020_aa00);
        assert_eq!(UFFDIO_COPY, 0xc028_aa03);
        assert_eq!(UFFDIO_UNREGISTER, 0x8010_aa01);
    }

    #[test]
    fn specs_parse_with_and_without_size() {
        let s = LazySpec::parse("data=/tmp/x", size).unwrap();
        assert_eq!((s.name.as_str(), s.size), ("data", None));
        let s = LazySpec::parse("data=/tmp/x:8192", size).unwrap();
        assert_eq!((s.path, s.size), (PathBuf::from("/tmp/x"), Some(8192)));
        let s = LazySpec::parse("d=C:weird", size).unwrap();
        assert_eq!((s.path, s.size), (PathBuf::from("C:weird"), None));
        assert!(LazySpec::parse("nofile", size).is_err());
        assert!(LazySpec::parse("=x", size).is_err());
        assert!(LazySpec::parse("a=", size).is_err());
    }

    #[test]
    fn plan_rounds_places_and_rejects() {
        let dir = std::env::temp_dir().join(format!("vessel-lazy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, vec![7u8; 5000]).unwrap();
        let e = dir.join("empty");
        std::fs::write(&e, b"").unwrap();
        let spec = |name: &str, p: &PathBuf, size| LazySpec {
            name: name.into(),
            path: p.clone(),
            size,
        };
        let r = plan(
            &[spec("a", &f, None), spec("b", &f, Some(9000))],
            1 << 32,
            1 << 21,
            1 << 40,
        )
        .unwrap();
        assert_eq!((r[0].gpa, r[0].len, r[0].mapped), (1 << 32, 5000, 8192));
        assert_eq!(
            (r[1].gpa, r[1].len, r[1].mapped),
            ((1 << 32) + (1 << 21), 9000, 12288)
        );
        let err = |specs: &[LazySpec]| {
            plan(specs, 1 << 32, 1 << 21, 1 << 40)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err(&[spec("e", &e, None)]).contains("empty"));
        assert!(plan(&[spec("e", &e, Some(100))], 1 << 32, 1 << 21, 1 << 40).is_ok());
        assert!(err(&[spec("m", &dir.join("missing"), None)]).contains("cannot open"));
        assert!(err(&[spec("s", &f, Some(10))]).contains("smaller"));
        assert!(err(&[spec("a", &f, None), spec("a", &f, None)]).contains("twice"));
        assert!(err(&[spec("d", &dir, None)]).contains("not a regular file"));
        let mut page = vec![1u8; 4096];
        let file = File::open(&f).unwrap();
        fill_page(&file, 5000, 4096, &mut page).unwrap();
        assert!(page[..904].iter().all(|&b| b == 7) && page[904..].iter().all(|&b| b == 0));
        fill_page(&file, 5000, 8192, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
