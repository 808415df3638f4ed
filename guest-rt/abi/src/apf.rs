//! Async page faults: the per-vCPU notification area and its protocol.
//!
//! 1. The guest registers a 64-byte aligned [`ApfArea`] and an interrupt
//!    vector with [`Call::ApfEnable`](crate::Call::ApfEnable).
//! 2. "Page not present": the faulting access raises a page fault with
//!    `flags == PAGE_NOT_PRESENT`; the token is in the fault address register
//!    (x86_64: CR2). The guest clears `flags`, parks the faulting task and runs
//!    another one.
//! 3. "Page ready": the registered vector fires with `token` set. The guest
//!    reads it, writes 0 to `token`, acknowledges (x86_64: MSR_KVM_ASYNC_PF_ACK
//!    plus EOI) and wakes the task parked on that token, which retries.
//!    [`WAKE_ALL`] means "wake every parked task" (sent once after enabling).
//!
//! Every token is reported ready exactly once. Faults taken with interrupts
//! masked, or on a vCPU that did not register, are served synchronously.
//! On x86_64 KVM implements this protocol (`struct kvm_vcpu_pv_apf_data`).
//!
//! On aarch64 the launcher implements it (KVM has no async page faults):
//! "not present" is an external data abort (ESR EC 0x25, DFSC 0x10) the
//! launcher injects with `flags == PAGE_NOT_PRESENT` and the token in
//! [`ApfArea::fault_token`] (FAR holds the faulting address). "Page ready"
//! tokens are written by the launcher straight into the ready ring that
//! follows the area ([`READY_HEAD_OFFSET`], [`READY_RING_OFFSET`]): each
//! entry first, then the count at `head` (release order). The guest drains
//! the ring at its own pace; a vCPU blocked in the Wait hypercall watching
//! `head` is woken when it changes. No interrupt is needed.

/// `ApfArea::flags`: the current page fault is "page not present".
pub const PAGE_NOT_PRESENT: u32 = 1;
/// A "page ready" token that wakes every parked task.
pub const WAKE_ALL: u32 = 0xffff_ffff;
/// Lowest vector a guest may register (below are exceptions).
pub const MIN_VECTOR: u32 = 32;
/// Highest vector.
pub const MAX_VECTOR: u32 = 255;

/// The per-vCPU notification area (KVM's `kvm_vcpu_pv_apf_data`).
#[repr(C, align(64))]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
)]
pub struct ApfArea {
    /// [`PAGE_NOT_PRESENT`] while a "not present" fault is being delivered.
    pub flags: u32,
    /// Token of the page that became ready; the guest writes 0 when done.
    pub token: u32,
    /// aarch64: token of the "not present" fault being delivered.
    pub fault_token: u32,
    /// Unused by this ABI version (KVM keeps its own fields here).
    pub reserved: [u32; 13],
}

const _: () = {
    assert!(core::mem::size_of::<ApfArea>() == 64);
    assert!(core::mem::align_of::<ApfArea>() == 64);
    assert!(core::mem::offset_of!(ApfArea, flags) == 0);
    assert!(core::mem::offset_of!(ApfArea, token) == 4);
    assert!(core::mem::offset_of!(ApfArea, fault_token) == 8);
};

/// aarch64: offset from the area of the u64 count of ready tokens written.
pub const READY_HEAD_OFFSET: u64 = 64;
/// aarch64: offset from the area of the `u32` ready ring.
pub const READY_RING_OFFSET: u64 = 72;
/// aarch64: ready ring entries (a power of two); entry `n % RING` holds the
/// n-th token.
pub const READY_RING_ENTRIES: u64 = 1024;
/// aarch64: bytes of guest memory the registration covers.
pub const READY_AREA_BYTES: u64 = READY_RING_OFFSET + 4 * READY_RING_ENTRIES;

/// True if `vector` may be registered for "page ready".
pub fn vector_ok(vector: u32) -> bool {
    (MIN_VECTOR..=MAX_VECTOR).contains(&vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_exclude_exceptions() {
        assert!(!vector_ok(14));
        assert!(vector_ok(32) && vector_ok(0x40) && vector_ok(255));
        assert!(!vector_ok(256));
    }
}
