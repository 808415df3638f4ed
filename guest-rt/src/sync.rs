//! Blocking synchronisation between threads on different vCPUs: [`Mutex`]
//! and [`Condvar`]. A contended lock spins briefly, then halts the vCPU
//! ([`crate::futex`]) until the holder releases it, so waiting costs no
//! CPU time; the release wakes the waiting vCPUs.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::futex;

/// Spins before a contended lock halts its vCPU.
const SPINS: u32 = 200;

const UNLOCKED: u64 = 0;
const LOCKED: u64 = 1;
/// Locked, and some vCPU may be waiting for it.
const CONTENDED: u64 = 2;

/// A mutual-exclusion lock for data shared between threads.
pub struct Mutex<T: ?Sized> {
    state: AtomicU64,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out at most one `&mut T` at a time (the state word
// goes UNLOCKED -> LOCKED/CONTENDED by one atomic exchange, and only the
// guard's drop releases it), so sharing the Mutex shares T only as Send.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the Mutex moves the T.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// Access to a [`Mutex`]'s data; dropping it unlocks.
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU64::new(UNLOCKED),
            value: UnsafeCell::new(value),
        }
    }

    /// The data, once no guard exists any more.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Wait until the lock is free, then hold it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self.try_acquire() {
            return MutexGuard { lock: self };
        }
        for _ in 0..SPINS {
            core::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == UNLOCKED && self.try_acquire() {
                return MutexGuard { lock: self };
            }
        }
        // Mark it contended; whoever held it wakes us when it unlocks.
        while self.state.swap(CONTENDED, Ordering::SeqCst) != UNLOCKED {
            futex::wait(&self.state, CONTENDED, u64::MAX);
        }
        MutexGuard { lock: self }
    }

    /// Hold the lock if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_acquire().then_some(MutexGuard { lock: self })
    }

    fn try_acquire(&self) -> bool {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::SeqCst) == CONTENDED {
            futex::wake_all();
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock: no `&mut T` exists elsewhere.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this the
        // only reference through it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

/// Wait for a condition guarded by a [`Mutex`], on any vCPU.
pub struct Condvar {
    /// Bumped by every notify: the word waiters watch.
    seq: AtomicU64,
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl Condvar {
    /// A condition variable nobody waits on yet.
    pub const fn new() -> Condvar {
        Condvar {
            seq: AtomicU64::new(0),
        }
    }

    /// Unlock `guard`'s mutex, halt until notified (or woken spuriously:
    /// re-check the condition), then lock it again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let seen = self.seq.load(Ordering::SeqCst);
        let lock = guard.lock;
        drop(guard);
        futex::wait(&self.seq, seen, u64::MAX);
        lock.lock()
    }

    /// Wait as long as `waiting` says so for the guarded data.
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut waiting: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while waiting(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all();
    }

    /// Wake a waiter (this implementation wakes them all; each re-checks).
    pub fn notify_one(&self) {
        self.notify_all();
    }
}
