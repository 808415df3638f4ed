//! What differs per architecture in the C library: where the thread
//! pointer sits in a thread's TLS block, and the hardware capabilities
//! `getauxval` reports.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use self::x86_64::*;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use self::aarch64::*;
