//! Resource limits a VM runs under, besides guest memory (`--mem`), wall
//! clock (`--timeout`) and output (`--max-output`), which have their own
//! `VmConfig` fields: open host files, pending I/O requests, lazy fetch
//! threads, and the launcher process's CPU time.
//!
//! | limit | flag | default | past it |
//! | --- | --- | --- | --- |
//! | open host files | `--max-open-files N` | 1024 (`vessel_abi::fs::MAX_HANDLES`, also the most) | the guest's open fails with `TooManyHandles` |
//! | pending I/O requests per ring | `--max-pending-io N` | 256 | further requests wait in the ring until one completes |
//! | lazy fetch threads | `--fetch-threads N` | 64 (also the most) | faults queue for a free thread |
//! | CPU time (launcher process, guest included) | `--max-cpu SECS` | none | the VM ends, exit 152, one line naming the limit |

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The default and greatest `--max-open-files`.
pub const MAX_OPEN_FILES: u32 = vessel_abi::fs::MAX_HANDLES;
/// The default `--max-pending-io`.
pub const DEFAULT_PENDING_IO: u32 = 256;
/// The greatest `--max-pending-io`.
pub const MAX_PENDING_IO: u32 = 1 << 16;
/// The default and greatest `--fetch-threads`.
pub const MAX_FETCH_THREADS: u32 = crate::lazy::FETCH_WORKERS as u32;

/// Limits of one VM (`VmConfig::limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most host files (and directories) the guest has open at once.
    pub open_files: u32,
    /// Most I/O requests of one ring in flight on the launcher's threads.
    pub pending_io: u32,
    /// Threads that serve lazy-region faults.
    pub fetch_threads: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            open_files: MAX_OPEN_FILES,
            pending_io: DEFAULT_PENDING_IO,
            fetch_threads: MAX_FETCH_THREADS,
        }
    }
}

/// A limit outside its range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} {value}: outside 1..={max}")]
pub struct LimitError {
    /// The `VmConfig::limits` field.
    pub name: &'static str,
    /// The value asked for.
    pub value: u64,
    /// The greatest allowed.
    pub max: u64,
}

impl Limits {
    /// Check each limit against its range.
    pub fn check(&self) -> std::result::Result<(), LimitError> {
        let each = [
            ("open_files", self.open_files, MAX_OPEN_FILES),
            ("pending_io", self.pending_io, MAX_PENDING_IO),
            ("fetch_threads", self.fetch_threads, MAX_FETCH_THREADS),
        ];
        for (name, value, max) in each {
            if value == 0 || value > max {
                return Err(LimitError {
                    name,
                    value: u64::from(value),
                    max: u64::from(max),
                });
            }
        }
        Ok(())
    }
}

/// The `--max-cpu` in force (0: none), for the closing line.
static CPU_LIMIT_SECS: AtomicU64 = AtomicU64::new(0);

/// Grace after the soft CPU limit before the kernel kills the process
/// (if the launcher could not stop the guest by then).
const CPU_GRACE_SECS: u64 = 5;

/// Cap the process's CPU time at `secs` (RLIMIT_CPU): at the limit the
/// kernel sends SIGXCPU, which stops the guest like SIGTERM does (outcome
/// `Stopped(Signal(SIGXCPU))`, exit 152); the hard limit, a few seconds
/// later, kills a launcher that could not stop. For programs that own the
/// process, like the `vessel` command.
pub fn limit_cpu(secs: u64) -> Result<()> {
    crate::stop::install(libc::SIGXCPU)?;
    let lim = libc::rlimit {
        rlim_cur: secs,
        rlim_max: secs.saturating_add(CPU_GRACE_SECS),
    };
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_CPU, &raw const lim) } != 0 {
        return Err(Error::Limit {
            what: "--max-cpu (RLIMIT_CPU)",
            source: std::io::Error::last_os_error(),
        });
    }
    CPU_LIMIT_SECS.store(secs, Ordering::SeqCst);
    Ok(())
}

/// The CPU limit [`limit_cpu`] set, if any.
pub fn cpu_limit() -> Option<u64> {
    match CPU_LIMIT_SECS.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_in_range_and_zero_or_too_many_is_refused() {
        assert_eq!(Limits::default().check(), Ok(()));
        let bad = Limits {
            open_files: 0,
            ..Limits::default()
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "open_files 0: outside 1..=1024"
        );
        let bad = Limits {
            fetch_threads: 65,
            ..Limits::default()
        };
        assert_eq!(bad.check().unwrap_err().name, "fetch_threads");
    }
}
