//! The I/O threads: up to [`THREADS`], each started on first use and
//! restricted with Landlock before it serves anything. Requests on one
//! handle go to one thread, so they run in order; path requests are spread
//! round-robin, so independent requests overlap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vessel_abi::ring::{op, Sqe};
use vessel_abi::Errno;

use super::RingShared;
use crate::fs::{handles, sandbox, Fs};
use crate::memory::GuestRam;

/// Most I/O threads per VM.
pub const THREADS: usize = 16;

struct Job {
    ring: Arc<RingShared>,
    sqe: Sqe,
    claim: u64,
}

/// The threads of one VM (they end when the pool is dropped).
pub struct Pool {
    ram: GuestRam,
    fs: Arc<Fs>,
    latency: Duration,
    senders: Mutex<Vec<Option<Sender<Job>>>>,
    next: AtomicUsize,
}

impl Pool {
    /// A pool with no thread started yet.
    pub fn new(ram: GuestRam, fs: Arc<Fs>, latency: Duration) -> Pool {
        Pool {
            ram,
            fs,
            latency,
            senders: Mutex::new((0..THREADS).map(|_| None).collect()),
            next: AtomicUsize::new(0),
        }
    }

    fn route(&self, sqe: &Sqe) -> usize {
        let by_handle = !matches!(
            sqe.op,
            op::NOP | op::OPEN | op::STAT | op::MKDIR | op::UNLINK | op::RMDIR | op::RENAME
        );
        if by_handle {
            handles::route_key(sqe.handle) % THREADS
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % THREADS
        }
    }

    /// Queue a checked, claimed request; if no thread can take it, it
    /// completes at once with Io.
    pub fn send(&self, ring: Arc<RingShared>, sqe: Sqe, claim: u64) {
        let i = self.route(&sqe);
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        if senders[i].is_none() {
            senders[i] = self.start(i);
        }
        let job = Job { ring, sqe, claim };
        let failed = match &senders[i] {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(j) = failed {
            senders[i] = None;
            j.ring
                .complete(&self.ram, j.claim, j.sqe.user_data, Err(Errno::Io));
        }
    }

    fn start(&self, i: usize) -> Option<Sender<Job>> {
        let (tx, rx) = channel::<Job>();
        let (ram, fs, latency) = (self.ram.clone(), self.fs.clone(), self.latency);
        let _quiet = crate::stop::quiet();
        let spawned = std::thread::Builder::new()
            .name(format!("vessel-io-{i}"))
            .spawn(move || {
                let walled = match sandbox::restrict_thread(fs.dirs()) {
                    Ok(_) => true,
                    Err(e) => {
                        eprintln!("vessel: I/O thread {i} refuses file requests: {e}");
                        false
                    }
                };
                crate::seccomp::enter(crate::seccomp::Role::Io);
                while let Ok(j) = rx.recv() {
                    if !latency.is_zero() {
                        std::thread::sleep(latency);
                    }
                    let res = if walled {
                        fs.serve(&ram, &j.sqe)
                    } else {
                        Err(Errno::PermissionDenied)
                    };
                    j.ring.complete(&ram, j.claim, j.sqe.user_data, res);
                }
            });
        match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                eprintln!("vessel: cannot start I/O thread {i}: {e}");
                None
            }
        }
    }
}
