//! One ring's launcher-side state, shared by the vCPU thread (taking
//! submissions, waiting) and the I/O threads (posting completions).

use std::mem::{offset_of, size_of};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vessel_abi::ring::{self, Cqe, RingHeader};
use vessel_abi::{Errno, GuestSlice};

use crate::memory::GuestRam;

/// The launcher's own copy of a ring's indices: never read back from the guest.
struct State {
    sq_head: u32,
    cq_tail: u32,
    in_flight: u32,
    next_claim: u64,
    /// Buffers of requests in flight: (claim id, addr, len).
    busy: Vec<(u64, u64, u64)>,
}

/// A registered ring.
pub struct RingShared {
    /// Guest address of the [`RingHeader`].
    pub base: u64,
    /// Entries per queue (a power of two, checked at setup).
    pub entries: u32,
    state: Mutex<State>,
    posted: Condvar,
}

/// How long a waiting RingEnter sleeps between checks for a stop.
const STOP_POLL: Duration = Duration::from_millis(20);

impl RingShared {
    /// A ring at `base` with `entries` (checked by the caller).
    pub fn new(base: u64, entries: u32) -> RingShared {
        RingShared {
            base,
            entries,
            state: Mutex::new(State {
                sq_head: 0,
                cq_tail: 0,
                in_flight: 0,
                next_claim: 0,
                busy: Vec::new(),
            }),
            posted: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below is a few assignments that cannot panic midway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes the ring takes in guest memory.
    pub fn bytes(&self) -> u64 {
        ring::ring_bytes(self.entries)
    }

    /// Guest address of the SQE with free-running index `i`.
    pub fn sqe_addr(&self, i: u32) -> u64 {
        let slot = u64::from(i & (self.entries - 1));
        self.base + ring::SQ_OFFSET + slot * size_of::<ring::Sqe>() as u64
    }

    fn cqe_addr(&self, i: u32) -> u64 {
        let slot = u64::from(i & (self.entries - 1));
        self.base + ring::cq_offset(self.entries) + slot * size_of::<Cqe>() as u64
    }

    /// SQEs taken so far.
    pub fn sq_head(&self) -> u32 {
        self.lock().sq_head
    }

    /// Completions that fit: entries less unconsumed and in-flight ones.
    /// A guest `cq_head` ahead of `cq_tail`, or more than `entries`
    /// behind, is Inval.
    pub fn room(&self, cq_head: u32) -> Result<u32, Errno> {
        let s = self.lock();
        let unconsumed = s.cq_tail.wrapping_sub(cq_head);
        if unconsumed > self.entries {
            return Err(Errno::Inval);
        }
        Ok(self
            .entries
            .saturating_sub(unconsumed)
            .saturating_sub(s.in_flight))
    }

    /// Requests taken and not yet completed.
    pub fn in_flight(&self) -> u32 {
        self.lock().in_flight
    }

    /// `n` more SQEs were taken: publish the new `sq_head`.
    pub fn advance_sq(&self, ram: &GuestRam, n: u32) {
        let mut s = self.lock();
        s.sq_head = s.sq_head.wrapping_add(n);
        let at = self.base + offset_of!(RingHeader, sq_head) as u64;
        let _ = ram.store_u32_release(at, s.sq_head);
    }

    /// Mark `bufs` in use by a new request; Busy if one overlaps a buffer
    /// of a request in flight. Returns the claim to release on completion.
    pub fn claim(&self, ram: &GuestRam, bufs: &[GuestSlice]) -> Result<u64, Errno> {
        let mut s = self.lock();
        let clash = bufs.iter().any(|b| {
            s.busy
                .iter()
                .any(|&(_, a, l)| super::overlaps(a, l, b.addr, b.len))
        });
        if clash {
            return Err(Errno::Busy);
        }
        let id = s.next_claim;
        s.next_claim += 1;
        s.busy.extend(bufs.iter().map(|b| (id, b.addr, b.len)));
        s.in_flight += 1;
        self.publish_in_flight(ram, &s);
        Ok(id)
    }

    fn publish_in_flight(&self, ram: &GuestRam, s: &State) {
        let at = self.base + offset_of!(RingHeader, in_flight) as u64;
        let _ = ram.store_u32_release(at, s.in_flight);
    }

    /// Post the completion of a request that never went to an I/O thread.
    pub fn post_now(&self, ram: &GuestRam, user_data: u64, res: Result<u64, Errno>) {
        let mut s = self.lock();
        self.write_cqe(ram, &mut s, user_data, res);
    }

    /// Post the completion of claimed request `claim` (an I/O thread).
    pub fn complete(&self, ram: &GuestRam, claim: u64, user_data: u64, res: Result<u64, Errno>) {
        let mut s = self.lock();
        s.busy.retain(|&(id, _, _)| id != claim);
        s.in_flight = s.in_flight.saturating_sub(1);
        self.publish_in_flight(ram, &s);
        self.write_cqe(ram, &mut s, user_data, res);
    }

    /// The entry first, then `cq_tail` with release order.
    fn write_cqe(&self, ram: &GuestRam, s: &mut State, user_data: u64, res: Result<u64, Errno>) {
        let result = match res {
            Ok(v) => i64::try_from(v).unwrap_or(i64::MAX),
            Err(e) => i64::from(e as i32),
        };
        let _ = ram.write_pod(self.cqe_addr(s.cq_tail), &Cqe { user_data, result });
        s.cq_tail = s.cq_tail.wrapping_add(1);
        let at = self.base + offset_of!(RingHeader, cq_tail) as u64;
        let _ = ram.store_u32_release(at, s.cq_tail);
        self.posted.notify_all();
    }

    /// Wait until `min` completions are unconsumed (the guest consumed up
    /// to `cq_head`), nothing is in flight, `deadline` passed or
    /// `stopped()`. Returns the completions unconsumed.
    pub fn wait(
        &self,
        cq_head: u32,
        min: u32,
        deadline: Option<Instant>,
        stopped: &dyn Fn() -> bool,
    ) -> u32 {
        let mut s = self.lock();
        loop {
            let unconsumed = s.cq_tail.wrapping_sub(cq_head);
            if unconsumed >= min || s.in_flight == 0 || stopped() {
                return unconsumed;
            }
            let mut nap = STOP_POLL;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return unconsumed;
                }
                nap = nap.min(left);
            }
            s = match self.posted.wait_timeout(s, nap) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}
