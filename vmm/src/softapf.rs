//! Async page faults implemented by the launcher, for hosts whose KVM has
//! none (aarch64). The guest sees the protocol of `vessel_abi::apf`:
//!
//! - "not present": the vCPU loop got -EFAULT from KVM_RUN (the lazy regions
//!   are in userfaultfd SIGBUS mode), the arch layer injected a data abort
//!   and found the faulting address; [`SoftApf::fault`] picks a new token,
//!   writes it and `PAGE_NOT_PRESENT` into the registered area and asks a
//!   fetch thread for the page (once per page, however many tokens wait).
//! - "ready": the fetch thread fills the page, then appends every token
//!   waiting on it to the guest's ready ring (entries first, then `head`
//!   with release order) and wakes the vCPU if it is blocked in Wait.
//!
//! Each token is issued once and written to the ring once. Guest memory is
//! only written through checked accesses; a guest that registered an area
//! and then scribbles on it only confuses itself.

use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc, Mutex};

use std::mem::offset_of;

use vessel_abi::apf::{
    ApfArea, PAGE_NOT_PRESENT, READY_HEAD_OFFSET, READY_RING_ENTRIES, READY_RING_OFFSET, WAKE_ALL,
};

use crate::error::{Error, Result};
use crate::lazy::{Filler, LazyMemory};
use crate::memory::{GuestRam, PAGE};
use crate::park::Parker;

/// Launcher-served async page faults that cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApfError {
    /// The async-PF area the guest registered is outside guest RAM.
    #[error("async-PF area {area:#x}+{bytes:#x} (with its ready ring) is outside guest RAM")]
    AreaOutside {
        /// Guest address of the area.
        area: u64,
        /// Its size with the ring.
        bytes: u64,
    },
    /// A fetch thread panicked while holding the shared state.
    #[error("async-PF state poisoned")]
    Poisoned,
    /// The fetch threads ended while faults were outstanding.
    #[error("async-PF fetch threads are gone")]
    FetchThreadsGone,
    /// x86_64: KVM serves async page faults; the launcher never does.
    #[error("launcher-served page faults are not used on x86_64")]
    NotThisArch,
}

struct State {
    area: u64,
    next: u32,
    head: u64,
    /// Page -> tokens waiting for it (a fetch is queued or running).
    pending: HashMap<u64, Vec<u32>>,
    filled: HashSet<u64>,
    /// For `--stats`: tokens issued and written to the ready ring.
    issued: u64,
    readied: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Where the registering vCPU waits ([`crate::park`]).
    parker: Arc<Parker>,
    ram: GuestRam,
}

/// The launcher's async-PF engine for one vCPU.
pub struct SoftApf {
    shared: Arc<Shared>,
    filler: Filler,
    tx: Option<mpsc::Sender<u64>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Shared {
    /// Append `token` to the ready ring (caller holds the lock).
    fn push_ready(&self, s: &mut State, token: u32) {
        let slot = s.area + READY_RING_OFFSET + 4 * (s.head % READY_RING_ENTRIES);
        s.head += 1;
        s.readied += 1;
        // The area was checked at registration; a failure here cannot
        // happen for it, and would only cost the guest its wake-up.
        let _ = self.ram.write(slot, &token.to_le_bytes());
        let _ = self
            .ram
            .store_u64_release(s.area + READY_HEAD_OFFSET, s.head);
        self.parker.notify();
    }
}

impl SoftApf {
    /// Serve the area registered at `area` with `workers` fetch threads,
    /// which notify `parker` when a page is ready. The caller checked
    /// `area` against guest RAM.
    pub fn new(
        ram: GuestRam,
        filler: Filler,
        area: u64,
        workers: usize,
        parker: Arc<Parker>,
    ) -> Result<SoftApf> {
        let mut head = [0u8; 8];
        ram.read(area + READY_HEAD_OFFSET, &mut head)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                area,
                next: 1,
                // Continue from the guest's count so its ring stays consistent.
                head: u64::from_le_bytes(head),
                pending: HashMap::new(),
                filled: HashSet::new(),
                issued: 0,
                readied: 0,
            }),
            parker,
            ram,
        });
        let (tx, rx) = mpsc::channel::<u64>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        let _quiet = crate::stop::quiet();
        for i in 0..workers.max(1) {
            let (rx, shared, filler) = (rx.clone(), shared.clone(), filler.clone());
            let t = std::thread::Builder::new()
                .name(format!("vessel-apf-{i}"))
                .stack_size(64 << 10)
                .spawn(move || loop {
                    crate::seccomp::enter(crate::seccomp::Role::Fetch);
                    let page = match rx.lock() {
                        Ok(r) => match r.recv() {
                            Ok(p) => p,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    filler.fill(page);
                    let Ok(mut s) = shared.state.lock() else {
                        return;
                    };
                    s.filled.insert(page);
                    for t in s.pending.remove(&page).unwrap_or_default() {
                        shared.push_ready(&mut s, t);
                    }
                })
                .map_err(Error::thread("an async-PF fetch thread"))?;
            threads.push(t);
        }
        Ok(SoftApf {
            shared,
            filler,
            tx: Some(tx),
            threads,
        })
    }

    /// Move the registration to `area` (checked by the caller).
    pub fn set_area(&self, area: u64) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.area = area;
        }
    }

    /// Tokens issued and made ready so far, for `--stats`.
    pub fn counts(&self) -> crate::stats::SoftCounts {
        self.shared
            .state
            .lock()
            .map(|s| crate::stats::SoftCounts {
                not_present: s.issued,
                ready: s.readied,
            })
            .unwrap_or_default()
    }

    /// Whether guest-physical `gpa` lies in a lazy region.
    pub fn is_lazy(&self, gpa: u64) -> bool {
        self.filler.contains(gpa)
    }

    /// A "page not present" for guest-physical `gpa`: issue a token, write
    /// it into the area and make sure the page is on its way. Returns the
    /// token.
    pub fn fault(&self, gpa: u64) -> Result<u32> {
        let page = gpa & !(PAGE - 1);
        let mut s = self.shared.state.lock().map_err(|_| ApfError::Poisoned)?;
        let token = s.next;
        s.issued += 1;
        s.next = match s.next.wrapping_add(1) {
            0 | WAKE_ALL => 1,
            n => n,
        };
        let area = s.area;
        let at = |field: usize| area + field as u64;
        let ram = &self.shared.ram;
        ram.write(at(offset_of!(ApfArea, fault_token)), &token.to_le_bytes())?;
        ram.write(
            at(offset_of!(ApfArea, flags)),
            &PAGE_NOT_PRESENT.to_le_bytes(),
        )?;
        if s.filled.contains(&page) {
            // Filled between the guest's touch and now: ready at once.
            self.shared.push_ready(&mut s, token);
        } else if let Some(w) = s.pending.get_mut(&page) {
            w.push(token);
        } else {
            s.pending.insert(page, vec![token]);
            if let Some(tx) = &self.tx {
                tx.send(page).map_err(|_| ApfError::FetchThreadsGone)?;
            }
        }
        Ok(token)
    }
}

impl Drop for SoftApf {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Serve async page faults in the launcher once the guest registered
/// `area` (the lazy regions switch to SIGBUS mode on the first call; a
/// later call moves the registration).
pub fn enable(
    soft: &mut Option<SoftApf>,
    ram: &GuestRam,
    lazy: &LazyMemory,
    area: u64,
    parker: &Arc<Parker>,
) -> Result<()> {
    let bytes = vessel_abi::apf::READY_AREA_BYTES;
    if !ram.contains(area, bytes) {
        return Err(ApfError::AreaOutside { area, bytes }.into());
    }
    match soft {
        Some(s) => s.set_area(area),
        None => {
            let filler = lazy.switch_to_sigbus()?;
            *soft = Some(SoftApf::new(
                ram.clone(),
                filler,
                area,
                crate::lazy::FETCH_WORKERS,
                parker.clone(),
            )?);
        }
    }
    Ok(())
}
