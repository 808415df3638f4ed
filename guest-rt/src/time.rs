//! Clocks: a cheap monotonic counter read in the guest, and the host's clocks.

use core::time::Duration;

use vessel_abi::{clock, Call};

/// A point on the guest's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

impl Instant {
    /// Now, read from the guest's cycle counter without leaving the guest.
    pub fn now() -> Instant {
        Instant(crate::arch::cycles())
    }
    /// Time since `earlier`.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        let khz = crate::boot::info().counter_khz.max(1);
        let cycles = u128::from(self.0.saturating_sub(earlier.0));
        Duration::from_nanos((cycles * 1_000_000 / u128::from(khz)) as u64)
    }
    /// Time since this instant.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }
}

/// The host's monotonic clock in nanoseconds (one hypercall).
pub fn host_monotonic_ns() -> u64 {
    crate::hypercall::call(Call::Clock {
        clock: clock::MONOTONIC,
    })
    .map(|r| r.0)
    .unwrap_or(0)
}

/// Wall-clock time: nanoseconds since the Unix epoch (one hypercall).
pub fn realtime_ns() -> u64 {
    crate::hypercall::call(Call::Clock {
        clock: clock::REALTIME,
    })
    .map(|r| r.0)
    .unwrap_or(0)
}
