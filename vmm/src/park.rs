//! The launcher-served Wait (aarch64): a vCPU thread blocks here instead of
//! in KVM_RUN, because arm64 guests take no interrupts that could wake a
//! halted vCPU.
//!
//! One [`Parker`] per VM. A waiting vCPU checks its watch word under the
//! parker's lock and sleeps on the condition variable; everything that can
//! end a wait (a Wake hypercall from another vCPU, a "page ready" pushed by
//! a fetch thread) changes guest memory first and then calls
//! [`Parker::notify`], which takes the same lock: a change made after the
//! waiter's check cannot be missed.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::memory::GuestRam;

/// How often a waiter re-checks `stop` (a stop request does not notify).
const STOP_POLL: Duration = Duration::from_millis(20);

/// Where vCPU threads wait; see the module doc.
#[derive(Default)]
pub struct Parker {
    /// Notifications so far (only the lock matters; the count helps tests).
    lock: Mutex<u64>,
    cv: Condvar,
}

impl Parker {
    /// Wake every waiter: each re-checks its watch word.
    pub fn notify(&self) {
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        *g = g.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Block while the u64 at guest address `watch` (checked by the caller;
    /// 0: none) equals `expect`, until `timeout` passes (None: no limit),
    /// a [`notify`](Parker::notify) comes, or `stop` says so (polled every
    /// 20 ms).
    pub fn wait(
        &self,
        ram: &GuestRam,
        watch: u64,
        expect: u64,
        timeout: Option<Duration>,
        stop: &dyn Fn() -> bool,
    ) {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let seen = *g;
        loop {
            let mut b = [0u8; 8];
            if watch != 0 && (ram.read(watch, &mut b).is_err() || u64::from_le_bytes(b) != expect) {
                return;
            }
            if *g != seen || stop() {
                return;
            }
            let mut slice = STOP_POLL;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                slice = slice.min(left);
            }
            g = match self.cv.wait_timeout(g, slice) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_changed_word_or_a_notify_ends_the_wait_and_a_timeout_bounds_it() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        ram.write(0x100, &7u64.to_le_bytes()).unwrap();
        let p = Parker::default();
        let t = Instant::now();
        p.wait(&ram, 0x100, 6, None, &|| false);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "changed word: no wait"
        );
        let t = Instant::now();
        p.wait(&ram, 0x100, 7, Some(Duration::from_millis(50)), &|| false);
        assert!(t.elapsed() >= Duration::from_millis(50), "same word: waits");

        let p = Arc::new(Parker::default());
        let (p2, r2) = (p.clone(), ram.clone());
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            p2.wait(&r2, 0x100, 7, None, &|| false);
            t.elapsed()
        });
        std::thread::sleep(Duration::from_millis(100));
        ram.write(0x100, &8u64.to_le_bytes()).unwrap();
        p.notify();
        let waited = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn stop_ends_a_wait_without_a_limit() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        let p = Parker::default();
        let t = Instant::now();
        p.wait(&ram, 0, 0, None, &|| {
            t.elapsed() > Duration::from_millis(60)
        });
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
