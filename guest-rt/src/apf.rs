//! Async page faults, guest side: registration, "not present" -> park the
//! task, "page ready" -> wake it, and the counters that check the pairing.
//!
//! The arch layer delivers two events here (see `arch::x86_64` and
//! `arch::aarch64` for how): `vessel_apf_park` is called at CPL3/EL1 on
//! the faulting task's stack with the token; ready tokens land in
//! [`ApfShared::ring`] (written by the interrupt stub on x86_64, by the
//! launcher on aarch64; drained by `drain` in the scheduler). Parking goes
//! through the executor when a task is running; otherwise (sync `main`,
//! boot code) the vCPU waits in place with the futex-like Wait hypercall.

use alloc::collections::BTreeSet;

use vessel_abi::apf::{ApfArea, WAKE_ALL};
use vessel_abi::Call;

use crate::cell::Global;

/// Ready-token ring entries (a power of two).
pub const RING: usize = 1024;
/// The vector guest-rt registers for "page ready".
pub const VECTOR: u32 = 0x40;

/// The area KVM (x86_64) or the launcher (aarch64) writes, plus the ready
/// ring the interrupt stub (x86_64) or the launcher (aarch64) fills.
#[repr(C, align(64))]
pub struct ApfShared {
    /// The notification area registered with `Call::ApfEnable`.
    pub area: ApfArea,
    /// Count of tokens ever pushed: written only by the interrupt stub
    /// (x86_64) or the launcher (aarch64), read by the runtime.
    pub head: u64,
    /// The ready ring: `head` counts the tokens written here, mod `RING`.
    pub ring: [u32; RING],
}

const _: () = {
    assert!(core::mem::offset_of!(ApfShared, head) == 64);
    assert!(core::mem::offset_of!(ApfShared, ring) == 72);
    assert!(RING.is_power_of_two());
    assert!(core::mem::offset_of!(ApfShared, head) as u64 == vessel_abi::apf::READY_HEAD_OFFSET);
    assert!(core::mem::offset_of!(ApfShared, ring) as u64 == vessel_abi::apf::READY_RING_OFFSET);
    assert!(RING as u64 == vessel_abi::apf::READY_RING_ENTRIES);
};

/// This vCPU's async-PF area and ready ring (the interrupt stub finds it by this symbol).
#[no_mangle]
pub static mut VESSEL_APF_SHARED: ApfShared = ApfShared {
    area: ApfArea {
        flags: 0,
        token: 0,
        fault_token: 0,
        reserved: [0; 13],
    },
    head: 0,
    ring: [0; RING],
};

/// Counters of the async-PF protocol as this vCPU saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Registration succeeded.
    pub enabled: bool,
    /// "Page not present" notifications.
    pub not_present: u64,
    /// "Page ready" notifications for an outstanding token.
    pub ready: u64,
    /// "Wake all" notifications.
    pub wake_all: u64,
    /// Ready tokens that matched no outstanding "not present" (must be 0).
    pub unmatched: u64,
    /// "Not present" for a token already outstanding (must be 0).
    pub duplicate: u64,
    /// Faults parked outside any task (the vCPU waited in place).
    pub waited_in_place: u64,
    /// Largest number of tokens outstanding at once.
    pub max_outstanding: u64,
}

struct State {
    stats: Stats,
    outstanding: BTreeSet<u32>,
    tail: u64,
}

impl State {
    fn new() -> State {
        State {
            stats: Stats::default(),
            outstanding: BTreeSet::new(),
            tail: 0,
        }
    }
}

/// Touched only by runtime code at CPL3/EL1; the interrupt stub (x86_64)
/// and the launcher (aarch64) write only `VESSEL_APF_SHARED`.
static STATE: Global<State> = Global::new(
    "guest-rt: async-PF state re-entered while in use (a fault inside its bookkeeping?)",
    State::new,
);

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(f)
}

fn shared() -> *mut ApfShared {
    core::ptr::addr_of_mut!(VESSEL_APF_SHARED)
}

/// Register for async page faults if the launcher offers them.
pub(crate) fn init() {
    if crate::env::features() & vessel_abi::features::ASYNC_PF == 0 {
        return;
    }
    crate::arch::init_apf_state();
    let area = shared() as u64;
    let ok = crate::hypercall::call(Call::ApfEnable {
        area,
        vector: VECTOR,
    })
    .is_ok();
    with(|s| s.stats.enabled = ok);
}

/// The counters so far.
pub fn stats() -> Stats {
    with(|s| s.stats)
}

/// Guest address of the ready counter, for a futex-like Wait.
pub(crate) fn head_addr() -> u64 {
    // SAFETY: taking the address of a field; no access.
    unsafe { core::ptr::addr_of!((*shared()).head) as u64 }
}

/// The ready counter now.
pub(crate) fn head() -> u64 {
    // SAFETY: an aligned u64 in a static, written by the interrupt stub
    // (x86_64) or the launcher (aarch64). Acquire: the ring entries below
    // it were written first.
    unsafe {
        (*core::ptr::addr_of!((*shared()).head).cast::<core::sync::atomic::AtomicU64>())
            .load(core::sync::atomic::Ordering::Acquire)
    }
}

/// Take every ready token recorded so far, calling `f` for each one that
/// matched an outstanding token (or WAKE_ALL).
pub(crate) fn drain(mut f: impl FnMut(u32)) {
    let head = head();
    let tokens: alloc::vec::Vec<u32> = with(|s| {
        if head - s.tail > RING as u64 {
            crate::process::abort("async PF: ready ring overflowed, tokens lost");
        }
        let mut v = alloc::vec::Vec::new();
        while s.tail < head {
            // SAFETY: entries below head were written by the stub before it
            // advanced head; volatile because it writes asynchronously.
            let t = unsafe {
                core::ptr::addr_of!((*shared()).ring[(s.tail as usize) & (RING - 1)])
                    .read_volatile()
            };
            s.tail += 1;
            if t == WAKE_ALL {
                s.stats.wake_all += 1;
                v.push(t);
            } else if s.outstanding.remove(&t) {
                s.stats.ready += 1;
                v.push(t);
            } else {
                s.stats.unmatched += 1;
            }
        }
        v
    });
    for t in tokens {
        f(t);
    }
}

/// aarch64: the injected external data abort is a "not present" when the
/// launcher flagged it; take (and clear) its token.
#[allow(dead_code)]
pub(crate) fn take_not_present() -> Option<u32> {
    // SAFETY: aligned u32 fields of the static area; the launcher writes
    // them only while this vCPU is stopped, before injecting the abort.
    unsafe {
        let a = core::ptr::addr_of_mut!((*shared()).area);
        if core::ptr::addr_of!((*a).flags).read_volatile() != vessel_abi::apf::PAGE_NOT_PRESENT {
            return None;
        }
        core::ptr::addr_of_mut!((*a).flags).write_volatile(0);
        Some(core::ptr::addr_of!((*a).fault_token).read_volatile())
    }
}

/// Called by the arch upcall at CPL3, on the faulting context's stack, for
/// a "page not present" with `token`. Returns when the page is ready.
pub(crate) extern "C" fn vessel_apf_park(token: u32) {
    with(|s| {
        s.stats.not_present += 1;
        if !s.outstanding.insert(token) {
            s.stats.duplicate += 1;
        }
        s.stats.max_outstanding = s.stats.max_outstanding.max(s.outstanding.len() as u64);
    });
    if crate::task::park(token) {
        return;
    }
    // No task to switch from: wait in place until our token is ready,
    // handing other tokens to the executor.
    with(|s| s.stats.waited_in_place += 1);
    loop {
        let seen = head();
        let mut mine = false;
        drain(|t| {
            if t == token || t == WAKE_ALL {
                mine = true;
            }
            crate::task::on_ready(t);
        });
        if mine {
            return;
        }
        let _ = crate::hypercall::call(Call::Wait {
            timeout_ns: u64::MAX,
            watch: head_addr(),
            expect: seen,
        });
    }
}
