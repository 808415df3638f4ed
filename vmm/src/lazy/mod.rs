//! Lazy regions: host files that appear in guest memory and are read on
//! first touch.
//!
//! Each region is anonymous memory (a vm-memory `MmapRegion`) registered
//! with userfaultfd in MISSING mode and given to KVM as its own memslot. A
//! guest touch of a missing page makes the kernel (the vCPU thread, or
//! KVM's async-PF worker) wait on the userfaultfd; a pool of fetch threads
//! reads the event, sleeps the emulated storage latency, `pread`s that page
//! of the file and fills it with UFFDIO_COPY, which wakes whoever waited.
//! Several fetches run at once, so faults that KVM turned into async page
//! faults overlap. Teardown wakes every thread at once through an eventfd,
//! sleeping ones included.
//!
//! The launcher never reads or writes lazy pages itself.

mod fetch;
mod spec;
mod uffd;

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use vm_memory::MmapRegion;
use vmm_sys_util::eventfd::EventFd;

pub use spec::{
    open_nonblocking, plan, round_up, LazySpec, LazySpecError, PlannedRegion, MAX_REGIONS,
};
use uffd::{Uffd, UFFD_FEATURE_SIGBUS};

use crate::error::{Error, Result};

/// Lazy-region memory or userfaultfd set-up that failed ("guest memory: ...").
#[derive(Debug, thiserror::Error)]
pub enum LazyError {
    /// The region does not fit in the host's address space.
    #[error("lazy region {name} too large")]
    TooLarge {
        /// The region.
        name: String,
        /// Bytes it maps.
        mapped: u64,
    },
    /// The host mapping behind a region could not be made.
    #[error("cannot map {mapped} bytes for lazy region {name}: {source}")]
    Map {
        /// The region.
        name: String,
        /// Bytes it maps.
        mapped: u64,
        /// Why.
        source: vm_memory::mmap::MmapRegionError,
    },
    /// The eventfd that wakes the fetch threads could not be made.
    #[error("eventfd for lazy regions: {0}")]
    EventFd(std::io::Error),
    /// userfaultfd(2) failed (MISSING mode).
    #[error("userfaultfd for lazy regions: {0}")]
    Userfaultfd(std::io::Error),
    /// userfaultfd(2) failed (SIGBUS mode).
    #[error("userfaultfd (SIGBUS mode): {0}")]
    UserfaultfdSigbus(std::io::Error),
    /// A UFFDIO_REGISTER or UFFDIO_UNREGISTER (`op`, with its mode) of a region.
    #[error("{op} for lazy region {name}: {source}")]
    Register {
        /// Which ioctl.
        op: &'static str,
        /// The region.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// Launcher-served async page faults were asked for with no regions.
    #[error("no lazy regions to serve")]
    NoRegions,
}
use crate::memory::PAGE;

/// Fetch threads per VM with lazy regions: how many page fetches overlap.
pub const FETCH_WORKERS: usize = 64;

/// One region's host mapping and the file behind it.
pub struct Backing {
    /// The region's name (`--lazy NAME=...`).
    pub name: String,
    /// Guest-physical start.
    pub gpa: u64,
    /// Bytes mapped (the region rounded up to pages).
    pub mapped: u64,
    map: MmapRegion,
    file: Arc<File>,
    file_len: u64,
}

impl Backing {
    /// The error for a failed userfaultfd `op` on this region.
    fn register_error(&self, op: &'static str) -> impl FnOnce(std::io::Error) -> LazyError + '_ {
        move |source| LazyError::Register {
            op,
            name: self.name.clone(),
            source,
        }
    }

    /// Host address of the mapping (for KVM_SET_USER_MEMORY_REGION).
    pub fn host_addr(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    fn holds_host(&self, addr: u64) -> bool {
        addr.checked_sub(self.host_addr())
            .is_some_and(|off| off < self.mapped)
    }

    fn holds_gpa(&self, gpa: u64) -> bool {
        gpa.checked_sub(self.gpa)
            .is_some_and(|off| off < self.mapped)
    }
}

/// What the fetch threads and fillers share.
pub struct Shared {
    regions: Vec<Backing>,
    /// First fetch error; the vCPU loop turns it into a guest fault.
    error: Mutex<Option<String>>,
    /// Readable once teardown starts: wakes threads blocked in poll (only
    /// made when there are regions, so a VM without pays nothing).
    stop: Option<EventFd>,
    /// True once teardown starts: wakes threads sleeping the latency.
    stopping: Mutex<bool>,
    stopped: Condvar,
    latency: Duration,
    /// For `--stats`: pages copied in, and faults by who waited.
    pages: AtomicU64,
    sync_faults: AtomicU64,
    async_faults: AtomicU64,
    async_filled: AtomicU64,
    /// Set once the guest enabled async page faults (x86_64: KVM then
    /// delivers faults on these regions as "page not present").
    async_on: AtomicBool,
}

impl Shared {
    /// Count a fault the fetchers serve; true when it is asynchronous (the
    /// guest had enabled async page faults). The faulting thread does not
    /// tell: on this project's KVM a kernel worker takes the fault either way.
    fn count_fault(&self) -> bool {
        let on = self.async_on.load(Ordering::Relaxed);
        let c = if on {
            &self.async_faults
        } else {
            &self.sync_faults
        };
        c.fetch_add(1, Ordering::Relaxed);
        on
    }

    fn fail(&self, m: String) {
        if let Ok(mut e) = self.error.lock() {
            e.get_or_insert(m);
        }
    }

    fn stop_pollfd(&self) -> libc::pollfd {
        libc::pollfd {
            // poll ignores a negative fd.
            fd: self
                .stop
                .as_ref()
                .map_or(-1, std::os::fd::AsRawFd::as_raw_fd),
            events: libc::POLLIN,
            revents: 0,
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.lock().map_or(true, |s| *s)
    }

    /// Sleep the emulated latency; false if teardown started.
    fn sleep_latency(&self) -> bool {
        let Ok(g) = self.stopping.lock() else {
            return false;
        };
        if self.latency.is_zero() {
            return !*g;
        }
        match self.stopped.wait_timeout_while(g, self.latency, |s| !*s) {
            Ok((g, _)) => !*g,
            Err(_) => false,
        }
    }

    fn region_at(&self, gpa: u64) -> Option<&Backing> {
        self.regions.iter().find(|r| r.holds_gpa(gpa))
    }
}

/// Anonymous memory for all lazy regions plus the fetch threads serving it.
pub struct LazyMemory {
    shared: Arc<Shared>,
    uffd: Option<Arc<Uffd>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn map_region(p: &PlannedRegion) -> Result<Backing> {
    let len = usize::try_from(p.mapped).map_err(|_| LazyError::TooLarge {
        name: p.name.clone(),
        mapped: p.mapped,
    })?;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let map = MmapRegion::build(None, len, libc::PROT_READ | libc::PROT_WRITE, flags).map_err(
        |source| LazyError::Map {
            name: p.name.clone(),
            mapped: p.mapped,
            source,
        },
    )?;
    Ok(Backing {
        name: p.name.clone(),
        gpa: p.gpa,
        mapped: p.mapped,
        map,
        file: p.file.clone(),
        file_len: p.file_len,
    })
}

impl LazyMemory {
    /// Map and register every region, and start `threads` fetch threads
    /// (at least one, at most [`FETCH_WORKERS`]), which sleep `latency` per
    /// page.
    pub fn new(planned: &[PlannedRegion], latency: Duration, threads: u32) -> Result<LazyMemory> {
        let regions = planned.iter().map(map_region).collect::<Result<Vec<_>>>()?;
        let stop = if planned.is_empty() {
            None
        } else {
            let fd =
                EventFd::new(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK).map_err(LazyError::EventFd)?;
            Some(fd)
        };
        let shared = Arc::new(Shared {
            regions,
            error: Mutex::new(None),
            stop,
            stopping: Mutex::new(false),
            stopped: Condvar::new(),
            latency,
            pages: AtomicU64::new(0),
            sync_faults: AtomicU64::new(0),
            async_faults: AtomicU64::new(0),
            async_filled: AtomicU64::new(0),
            async_on: AtomicBool::new(false),
        });
        let mut lazy = LazyMemory {
            shared,
            uffd: None,
            threads: vec![],
        };
        if planned.is_empty() {
            return Ok(lazy);
        }
        let uffd = Arc::new(Uffd::new(0).map_err(LazyError::Userfaultfd)?);
        for r in &lazy.shared.regions {
            uffd.register(&r.map)
                .map_err(r.register_error("UFFDIO_REGISTER"))?;
        }
        let _quiet = crate::stop::quiet();
        for i in 0..(threads as usize).clamp(1, FETCH_WORKERS) {
            let (uffd, shared) = (uffd.clone(), lazy.shared.clone());
            let t = std::thread::Builder::new()
                .name(format!("vessel-fetch-{i}"))
                .stack_size(64 << 10)
                .spawn(move || {
                    crate::seccomp::enter(crate::seccomp::Role::Fetch);
                    fetch::fetch_loop(&uffd, &shared)
                })
                .map_err(Error::thread("a fetch thread"))?;
            lazy.threads.push(t);
        }
        lazy.uffd = Some(uffd);
        Ok(lazy)
    }

    /// Every region, in guest-physical order.
    pub fn regions(&self) -> &[Backing] {
        &self.shared.regions
    }

    /// Move every region to a new userfaultfd in SIGBUS mode: from now on a
    /// touch of a missing page fails (KVM_RUN: -EFAULT) instead of waiting,
    /// and pages are filled only through the returned [`Filler`]. Pages
    /// already filled stay. Used by a launcher that serves page faults
    /// itself (aarch64 async page faults).
    pub fn switch_to_sigbus(&self) -> Result<Filler> {
        let old = self.uffd.as_ref().ok_or(LazyError::NoRegions)?;
        let uffd = Uffd::new(UFFD_FEATURE_SIGBUS).map_err(LazyError::UserfaultfdSigbus)?;
        for r in &self.shared.regions {
            old.unregister(&r.map)
                .map_err(r.register_error("UFFDIO_UNREGISTER"))?;
            uffd.register(&r.map)
                .map_err(r.register_error("UFFDIO_REGISTER (SIGBUS mode)"))?;
        }
        Ok(Filler {
            uffd: Arc::new(uffd),
            shared: self.shared.clone(),
        })
    }

    /// The guest enabled async page faults: later faults count as
    /// asynchronous (`--stats`).
    pub fn async_enabled(&self) {
        self.shared.async_on.store(true, Ordering::Relaxed);
    }

    /// What the fetchers counted so far, for `--stats`.
    pub fn counts(&self) -> crate::stats::LazyCounts {
        let s = &self.shared;
        crate::stats::LazyCounts {
            pages: s.pages.load(Ordering::Relaxed),
            sync: s.sync_faults.load(Ordering::Relaxed),
            async_faults: s.async_faults.load(Ordering::Relaxed),
            async_filled: s.async_filled.load(Ordering::Relaxed),
        }
    }

    /// The first fetch error, if any.
    pub fn failed(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// Wake every fetch thread and filler, sleeping ones included, and make
    /// them return: the VM is going away.
    pub fn shutdown(&self) {
        if let Ok(mut s) = self.shared.stopping.lock() {
            *s = true;
        }
        self.shared.stopped.notify_all();
        if let Some(fd) = &self.shared.stop {
            let _ = fd.write(1);
        }
    }
}

impl LazyMemory {
    /// Stop the fetch threads, wait for them, and close the userfaultfd.
    /// Closing it releases every fault still waiting for a page (KVM's
    /// async-PF workers included), which then read zeros: a VM can be
    /// destroyed without waiting for fetches that never come. The mappings
    /// stay until `self` is dropped.
    pub fn release(&mut self) {
        self.shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.uffd = None;
    }
}

impl Drop for LazyMemory {
    fn drop(&mut self) {
        self.release();
    }
}

/// Fills pages of SIGBUS-mode regions on request (any thread).
#[derive(Clone)]
pub struct Filler {
    uffd: Arc<Uffd>,
    shared: Arc<Shared>,
}

impl Filler {
    /// Whether guest-physical `gpa` lies in a lazy region.
    pub fn contains(&self, gpa: u64) -> bool {
        self.shared.region_at(gpa).is_some()
    }

    /// Fetch and fill the page at guest-physical `gpa` after the emulated
    /// latency (cut short at teardown). A page someone already filled is
    /// fine. Errors are recorded like the fetch threads' (the page reads as
    /// zeros where the file could not be read).
    pub fn fill(&self, gpa: u64) {
        let Some(r) = self.shared.region_at(gpa) else {
            return;
        };
        if !self.shared.sleep_latency() {
            return;
        }
        let offset = (gpa - r.gpa) & !(PAGE - 1);
        let mut page = vec![0u8; PAGE as usize];
        fetch::serve_page(&self.uffd, &self.shared, r, offset, &mut page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Teardown wakes the fetch threads itself: they wait for events with no
    /// timeout and sleep an hour of emulated latency here, so only the stop
    /// eventfd and condvar can end them (the bound only turns a hang into a
    /// failure; without the wake-up each drop would never return).
    #[test]
    fn teardown_does_not_wait_for_sleeping_or_polling_fetch_threads() {
        let dir = std::env::temp_dir().join(format!("vessel-teardown-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, vec![1u8; 8192]).unwrap();
        let spec = LazySpec {
            name: "d".into(),
            path: f,
            size: None,
        };
        let planned = plan(&[spec], 1 << 32, 1 << 21, 1 << 40).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..20 {
            let lazy = LazyMemory::new(&planned, Duration::from_secs(3600), 64).unwrap();
            assert_eq!(lazy.threads.len(), FETCH_WORKERS);
            drop(lazy);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "20 teardowns took {:?}",
            start.elapsed()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
