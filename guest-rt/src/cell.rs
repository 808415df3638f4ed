//! [`Global`]: runtime state in a `static`, made on first use and lent to
//! one closure at a time.
//!
//! guest-rt keeps its executor and async-PF bookkeeping in statics that
//! only CPL3/EL1 runtime code on vCPU 0 touches (other vCPUs are refused). A plain `UnsafeCell`
//! would make a nested borrow (a closure that reaches the same state again,
//! e.g. through a waker or a fault upcall) undefined behaviour; here a
//! borrow flag turns it into an abort that names the state.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// State of type `T` behind a borrow flag; see the module doc.
pub(crate) struct Global<T> {
    /// The abort message for a nested borrow.
    reentered: &'static str,
    init: fn() -> T,
    borrowed: AtomicBool,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: `value` is reached only through `with`, which refuses every vCPU
// but vCPU 0 and then takes the borrow flag with an atomic swap, so there is
// never more than one `&mut T` at a time, and `T` (which may hold `Rc`s)
// is only ever touched by vCPU 0.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// State made by `init` on first use; `reentered` is the abort
    /// message for a nested borrow.
    pub(crate) const fn new(reentered: &'static str, init: fn() -> T) -> Global<T> {
        Global {
            reentered,
            init,
            borrowed: AtomicBool::new(false),
            value: UnsafeCell::new(None),
        }
    }

    /// Run `f` on the state. Calling `with` on the same `Global` again
    /// before `f` returns aborts the app with the `reentered` message.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        if crate::arch::vcpu_id() != 0 {
            crate::process::abort(
                "guest-rt: the task executor and async-PF state belong to vCPU 0; use guest_rt::thread on other vCPUs",
            );
        }
        if self.borrowed.swap(true, Ordering::Acquire) {
            crate::process::abort(self.reentered);
        }
        // SAFETY: the flag was clear and is now set, so no other reference
        // to the value exists until it is cleared below.
        let v = unsafe { &mut *self.value.get() };
        let r = f(v.get_or_insert_with(self.init));
        self.borrowed.store(false, Ordering::Release);
        r
    }
}
