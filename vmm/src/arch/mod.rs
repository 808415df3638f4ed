//! Architecture-specific host code, one folder each. The rest of the VMM
//! calls the same names on both: `create_vm`, `setup_memory`, `setup_vcpu`,
//! `fault_report`, `crash_report`, `CAPS`, the layout and doorbell constants.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use self::x86_64::*;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use self::aarch64::*;
