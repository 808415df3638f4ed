//! Pre-opened host directories and the file requests of the I/O ring.
//!
//! Two walls stand between the guest and the host's files:
//! 1. every path is resolved beneath its pre-opened directory by `openat2`
//!    with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS ([`resolve`], [`sys`]);
//!    devices, FIFOs, sockets and files with more than one hard link are
//!    refused after opening, and `:ro` directories refuse every change;
//! 2. the I/O threads that do all of this restrict themselves with
//!    Landlock ([`sandbox`]) to the pre-opened directories, where the
//!    kernel has it.
//!
//! [`Fs::serve`] runs one request and returns its completion value.

pub mod handles;
pub mod resolve;
pub mod sandbox;
pub mod spec;
pub mod sys;

mod ops;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use spec::{DirError, DirSpec, Preopen};

use handles::Handles;

/// A budget of bytes the guest may write to stdout, stderr and files
/// together (`--max-output`).
#[derive(Debug)]
pub struct OutputBudget {
    used: AtomicU64,
    max: u64,
    hit: AtomicBool,
}

impl OutputBudget {
    /// A budget of `max` bytes.
    pub fn new(max: u64) -> OutputBudget {
        OutputBudget {
            used: AtomicU64::new(0),
            max,
            hit: AtomicBool::new(false),
        }
    }

    /// Take `n` bytes from the budget; false (and remembered) if it would
    /// go past the cap.
    pub fn take(&self, n: u64) -> bool {
        let ok = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .is_ok();
        if !ok {
            self.hit.store(true, Ordering::Release);
        }
        ok
    }

    /// Whether the cap was reached.
    pub fn exceeded(&self) -> bool {
        self.hit.load(Ordering::Acquire)
    }

    /// The cap in bytes.
    pub fn max(&self) -> u64 {
        self.max
    }
}

/// The file server of one VM: its pre-opened directories and handles.
pub struct Fs {
    dirs: Vec<Preopen>,
    handles: Handles,
    budget: std::sync::Arc<OutputBudget>,
}

impl Fs {
    /// A server for already opened directories.
    pub fn new(dirs: Vec<Preopen>, budget: std::sync::Arc<OutputBudget>) -> Fs {
        Fs {
            dirs,
            handles: Handles::new(vessel_abi::fs::MAX_HANDLES),
            budget,
        }
    }

    /// At most `cap` handles open at once (`--max-open-files`).
    pub fn with_max_handles(mut self, cap: u32) -> Fs {
        self.handles = Handles::new(cap.min(vessel_abi::fs::MAX_HANDLES));
        self
    }

    /// The pre-opened directories.
    pub fn dirs(&self) -> &[Preopen] {
        &self.dirs
    }

    /// Handles open now.
    pub fn open_handles(&self) -> u32 {
        self.handles.count()
    }
}
