//! The host side of the I/O ring ([`vessel_abi::ring`]): registering a
//! vCPU's ring, taking its submissions, and completing them from the I/O
//! threads.
//!
//! RingEnter reads the guest's `sq_tail` and `cq_head` once, checks them
//! against the launcher's own `sq_head` / `cq_tail` (a guest index more
//! than `entries` away, or going backwards, is Inval), takes as many SQEs
//! as the completion queue has room for, checks each one, and hands file
//! requests to the I/O threads ([`workers`]); console writes are served
//! right there, in ring order. Then it waits for `min_complete`
//! completions. The I/O threads write each CQE and then `cq_tail` with
//! release order, so a guest that sees `cq_tail` sees the entry.

mod post;
pub mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vessel_abi::ring::{self, op, RingHeader, Sqe};
use vessel_abi::zerocopy::FromZeros;
use vessel_abi::{Errno, GuestSlice};

use crate::console::HostIo;
use crate::fs::{Fs, OutputBudget};
use crate::memory::GuestRam;

pub use post::RingShared;
use workers::Pool;

/// What RingEnter did: SQEs taken and completions waiting for the guest.
pub type Entered = (u64, u64);

/// The I/O server of one VM: the file server, its threads, each vCPU's ring.
pub struct IoServer {
    ram: GuestRam,
    fs: Arc<Fs>,
    budget: Arc<OutputBudget>,
    /// Guest memory no request buffer may overlap (boot area, frames).
    protected: Vec<(u64, u64)>,
    rings: std::sync::Mutex<Vec<Option<Arc<RingShared>>>>,
    pool: Pool,
    /// Most requests of one ring in flight (`--max-pending-io`).
    max_pending: u32,
}

impl IoServer {
    /// A server for `vcpus` vCPUs. `latency` is slept per request
    /// (emulated remote storage, for benchmarks).
    pub fn new(
        ram: GuestRam,
        fs: Fs,
        budget: Arc<OutputBudget>,
        protected: Vec<(u64, u64)>,
        vcpus: usize,
        latency: Duration,
    ) -> IoServer {
        let fs = Arc::new(fs);
        IoServer {
            pool: Pool::new(ram.clone(), fs.clone(), latency),
            ram,
            fs,
            budget,
            protected,
            rings: std::sync::Mutex::new(vec![None; vcpus]),
            max_pending: crate::limits::DEFAULT_PENDING_IO,
        }
    }

    /// At most `n` requests of one ring in flight at once; more wait in
    /// the submission queue (taken as earlier ones complete).
    pub fn with_max_pending(mut self, n: u32) -> IoServer {
        self.max_pending = n.max(1);
        self
    }

    /// The output budget (`--max-output`) console writes also draw on.
    pub fn budget(&self) -> &OutputBudget {
        &self.budget
    }

    /// The file server.
    pub fn fs(&self) -> &Fs {
        &self.fs
    }

    /// Register `vcpu`'s ring of `entries` at `base`.
    pub fn setup(&self, vcpu: usize, base: u64, entries: u32) -> Result<(), Errno> {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let slot = rings.get_mut(vcpu).ok_or(Errno::Inval)?;
        if slot.is_some() {
            return Err(Errno::Busy);
        }
        if !ring::entries_ok(entries) || !base.is_multiple_of(64) {
            return Err(Errno::Inval);
        }
        let len = ring::ring_bytes(entries);
        if !self.ram.contains(base, len) || overlaps_any(&self.protected, base, len) {
            return Err(Errno::Fault);
        }
        self.ram.zero(base, len).map_err(|_| Errno::Fault)?;
        *slot = Some(Arc::new(RingShared::new(base, entries)));
        Ok(())
    }

    /// Serve RingEnter for `vcpu`. `stopped` says the VM is being stopped.
    pub fn enter(
        &self,
        vcpu: usize,
        io: &mut dyn HostIo,
        min_complete: u32,
        timeout_ns: u64,
        stopped: &dyn Fn() -> bool,
    ) -> Result<Entered, Errno> {
        let r = self
            .rings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(vcpu)
            .and_then(|r| r.clone())
            .ok_or(Errno::Inval)?;
        let head: RingHeader = self.ram.read_pod(r.base).map_err(|_| Errno::Fault)?;
        let taken = self.take(&r, &head, io)?;
        let deadline = (timeout_ns != u64::MAX)
            .then(|| Instant::now().checked_add(Duration::from_nanos(timeout_ns)))
            .flatten();
        let waiting = r.wait(head.cq_head, min_complete, deadline, stopped);
        Ok((taken, u64::from(waiting)))
    }

    /// Take every new SQE there is completion room for. Every request of
    /// the batch is checked and claims its buffers before any is queued,
    /// so two requests of one batch on one buffer meet deterministically.
    fn take(
        &self,
        r: &Arc<RingShared>,
        head: &RingHeader,
        io: &mut dyn HostIo,
    ) -> Result<u64, Errno> {
        let sq_head = r.sq_head();
        let pending = head.sq_tail.wrapping_sub(sq_head);
        if pending > r.entries {
            return Err(Errno::Inval);
        }
        let cap = self.max_pending.saturating_sub(r.in_flight());
        let n = pending.min(r.room(head.cq_head)?).min(cap);
        let mut queue = Vec::new();
        for i in 0..n {
            let at = sq_head.wrapping_add(i);
            let sqe: Sqe = self
                .ram
                .read_pod(r.sqe_addr(at))
                .unwrap_or_else(|_| Sqe::new_zeroed());
            match self.admit(r, &sqe, io) {
                Ok(Some(claim)) => queue.push((sqe, claim)),
                Ok(None) => {}
                Err(e) => r.post_now(&self.ram, sqe.user_data, Err(e)),
            }
        }
        r.advance_sq(&self.ram, n);
        for (sqe, claim) in queue {
            self.pool.send(r.clone(), sqe, claim);
        }
        Ok(u64::from(n))
    }

    /// Check one request in the documented order (each buffer inside RAM:
    /// Fault, a path over MAX_PATH: NameTooLong; then no overlap with the
    /// ring, boot area or frames, nor with a buffer in flight: Busy). A
    /// console write is served here (None); a file request claims its
    /// buffers (Some(claim)).
    fn admit(&self, r: &RingShared, sqe: &Sqe, io: &mut dyn HostIo) -> Result<Option<u64>, Errno> {
        let named = buffers(sqe);
        for &(s, path) in &named {
            if path && s.len > vessel_abi::fs::MAX_PATH {
                return Err(Errno::NameTooLong);
            }
            if !self.ram.contains(s.addr, s.len) {
                return Err(Errno::Fault);
            }
        }
        for &(s, _) in &named {
            if overlaps(r.base, r.bytes(), s.addr, s.len)
                || overlaps_any(&self.protected, s.addr, s.len)
            {
                return Err(Errno::Busy);
            }
        }
        if sqe.op == op::CONSOLE {
            let res = self.console(io, sqe);
            r.post_now(&self.ram, sqe.user_data, res);
            return Ok(None);
        }
        let data: Vec<GuestSlice> = named.iter().filter(|(_, p)| !p).map(|(s, _)| *s).collect();
        r.claim(&self.ram, &data).map(Some)
    }

    fn console(&self, io: &mut dyn HostIo, sqe: &Sqe) -> Result<u64, Errno> {
        let fd = match sqe.handle {
            1 => 1,
            2 => 2,
            _ => return Err(Errno::BadFd),
        };
        let len = sqe.a.len.min(crate::hypercall::MAX_IO);
        if !self.budget.take(len) {
            return Err(Errno::OutputLimit);
        }
        let data = self
            .ram
            .read_vec(sqe.a.addr, len, crate::hypercall::MAX_IO)
            .map_err(|_| Errno::Fault)?;
        io.write(fd, &data).map(|()| len).map_err(|_| Errno::Io)
    }
}

/// The guest memory a request names: (slice, is a path). Empty slices
/// name nothing.
fn buffers(sqe: &Sqe) -> Vec<(GuestSlice, bool)> {
    let (a, b) = (sqe.a, sqe.b);
    let v = match sqe.op {
        op::OPEN | op::MKDIR | op::UNLINK | op::RMDIR => vec![(a, true)],
        op::RENAME => vec![(a, true), (b, true)],
        op::STAT => vec![(a, true), (b, false)],
        op::READ | op::WRITE | op::CONSOLE => vec![(a, false)],
        op::FSTAT | op::READ_DIR => vec![(b, false)],
        _ => vec![],
    };
    v.into_iter().filter(|(s, _)| s.len > 0).collect()
}

/// Whether `[a, a+alen)` and `[b, b+blen)` overlap (overflow-safe: both
/// ranges were checked to lie in guest RAM).
pub fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

fn overlaps_any(ranges: &[(u64, u64)], addr: u64, len: u64) -> bool {
    ranges.iter().any(|&(a, l)| overlaps(a, l, addr, len))
}

#[cfg(test)]
mod tests;
