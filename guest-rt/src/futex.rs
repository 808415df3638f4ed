//! Futex-like waiting across vCPUs: a vCPU that finds nothing to do halts
//! in the Wait hypercall, watching one word; whoever changes that word
//! wakes the vCPUs that may be waiting (the Wake hypercall: an IPI on
//! x86_64, the launcher's wake-up on aarch64).
//!
//! No wake-up is lost: a waiter marks itself in `SLEEPING` (a mask of vCPUs) before it
//! checks the word (and the launcher checks it once more before halting),
//! and a waker changes the word before it reads `SLEEPING`, all with
//! sequentially consistent ordering, so at least one of them sees the
//! other. Wake-ups may be spurious: callers re-check their condition.

use core::sync::atomic::{AtomicU64, Ordering};

use vessel_abi::Call;

/// Bit `i` set: vCPU `i` may be halted in [`wait`].
static SLEEPING: AtomicU64 = AtomicU64::new(0);

fn me() -> u64 {
    1u64 << (crate::arch::vcpu_id() % 64)
}

/// Halt this vCPU while `word` holds `expect`, for at most `timeout_ns`
/// (`u64::MAX`: no limit). Returns early on any wake-up.
pub fn wait(word: &AtomicU64, expect: u64, timeout_ns: u64) {
    wait_either(word, expect, word, expect, timeout_ns)
}

/// Like [`wait`], but also return at once if `other` no longer holds
/// `other_expect` (checked after this vCPU is marked as waiting; a change
/// of `other` made later comes with a [`wake_all`]).
pub fn wait_either(
    word: &AtomicU64,
    expect: u64,
    other: &AtomicU64,
    other_expect: u64,
    timeout_ns: u64,
) {
    let me = me();
    SLEEPING.fetch_or(me, Ordering::SeqCst);
    if word.load(Ordering::SeqCst) == expect && other.load(Ordering::SeqCst) == other_expect {
        let _ = crate::hypercall::call(Call::Wait {
            timeout_ns,
            watch: word.as_ptr() as u64,
            expect,
        });
    }
    SLEEPING.fetch_and(!me, Ordering::SeqCst);
}

/// Wake every other vCPU that may be waiting (call after changing the
/// word it watches). Costs nothing when none waits.
pub fn wake_all() {
    let others = SLEEPING.load(Ordering::SeqCst) & !me();
    if others != 0 {
        let _ = crate::hypercall::call(Call::Wake { vcpus: others });
    }
}
