//! Debugging a guest: `--gdb ADDR` serves the GDB remote protocol (the
//! gdbstub crate) on a loopback TCP port or a Unix socket, with the guest
//! stopped at its entry until the debugger resumes it.
//!
//! - `hub`: where the vCPU threads park while the debugger holds the VM.
//! - `target`: the VM as gdbstub's target (threads, registers, memory,
//!   breakpoints and watchpoints in the debug registers).
//! - `server`: the listening socket, the debugger's thread, its event loop.
//! - The architecture's registers, target description, debug registers and
//!   page-table walk are in `arch::<arch>::debug`.
//!
//! Without `--gdb` none of this runs: the vCPU loop's hook is a `None`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[cfg(target_arch = "x86_64")]
pub mod coredump;
#[cfg(target_arch = "x86_64")]
pub mod hub;
#[cfg(target_arch = "x86_64")]
pub mod server;
mod session;
#[cfg(target_arch = "x86_64")]
pub mod target;

#[cfg(target_arch = "x86_64")]
pub use session::on_exit;
pub use session::{Hook, Server, Session};

/// Where the debugger connects (`--gdb ADDR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GdbAddr {
    /// A TCP port on a loopback address.
    Tcp(SocketAddr),
    /// A Unix socket created at this path (it must not exist yet).
    Unix(PathBuf),
}

/// A `--gdb` address, or the debugger's socket, refused.
#[derive(Debug, thiserror::Error)]
pub enum DebugError {
    /// Not a port, a loopback `HOST:PORT` or a socket path.
    #[error("--gdb `{0}`: give a port (1234), a loopback address (127.0.0.1:1234) or a Unix socket path (containing `/`)")]
    BadAddress(String),
    /// A TCP address that is not loopback: the stub has no authentication.
    #[error("--gdb {0}: only loopback addresses are served (the debugger can read and write all guest memory)")]
    NotLoopback(SocketAddr),
    /// The socket could not be created.
    #[error("--gdb {what}: cannot listen: {source}")]
    Listen {
        /// The address as given.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--core-dump DIR` is not a directory.
    #[error("--core-dump {}: not a directory", .0.display())]
    CoreDir(PathBuf),
    /// This architecture has no debugger yet.
    #[error("--gdb/--core-dump are not available on {0} yet (x86_64 only)")]
    Unsupported(&'static str),
}

/// `--core-dump DIR` must name a directory (x86_64 only).
pub fn check_core_dir(dir: Option<&std::path::Path>) -> Result<(), DebugError> {
    let Some(dir) = dir else {
        return Ok(());
    };
    if !cfg!(target_arch = "x86_64") {
        return Err(DebugError::Unsupported("arm64 (--core-dump)"));
    }
    if !dir.is_dir() {
        return Err(DebugError::CoreDir(dir.to_path_buf()));
    }
    Ok(())
}

/// Write the crashed guest's core file into `dir` and say where (or why
/// not) on stderr.
#[cfg(target_arch = "x86_64")]
pub fn write_core(
    dir: &std::path::Path,
    args: &[String],
    vcpus: &[crate::vcpu::Vcpu],
    ram: &crate::memory::GuestRam,
) {
    use crate::arch::debug as ad;
    let app = args.first().map_or("guest", String::as_str);
    let mut notes = vec![coredump::prpsinfo(app, &args.join(" "))];
    for v in vcpus {
        match ad::core_notes(&v.fd, v.id, libc::SIGSEGV as u32) {
            Ok(n) => notes.extend(n),
            Err(e) => eprintln!("vessel: core dump: vCPU {}: {e}", v.id),
        }
    }
    match coredump::write(dir, app, ad::CORE_MACHINE, &notes, ram) {
        Ok(p) => eprintln!("vessel: core dump: {}", p.display()),
        Err(e) => eprintln!("vessel: {e}"),
    }
}

impl GdbAddr {
    /// Parse `PORT`, `HOST:PORT` (loopback only) or a path with a `/`.
    pub fn parse(s: &str) -> Result<GdbAddr, DebugError> {
        if s.contains('/') {
            return Ok(GdbAddr::Unix(PathBuf::from(s)));
        }
        if let Ok(port) = s.parse::<u16>() {
            return Ok(GdbAddr::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        }
        let addr = match s.strip_prefix("localhost:") {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))),
            None => s.parse::<SocketAddr>().ok(),
        };
        match addr {
            Some(a) if a.ip().is_loopback() => Ok(GdbAddr::Tcp(a)),
            Some(a) => Err(DebugError::NotLoopback(a)),
            None => Err(DebugError::BadAddress(s.to_string())),
        }
    }
}

impl std::fmt::Display for GdbAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GdbAddr::Tcp(a) => write!(f, "{a}"),
            GdbAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_ports_loopback_pairs_or_paths() {
        let tcp = |s: &str| match GdbAddr::parse(s) {
            Ok(GdbAddr::Tcp(a)) => a.to_string(),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(tcp("1234"), "127.0.0.1:1234");
        assert_eq!(tcp("localhost:99"), "127.0.0.1:99");
        assert_eq!(tcp("[::1]:7"), "[::1]:7");
        assert_eq!(
            GdbAddr::parse("/tmp/g.sock").ok(),
            Some(GdbAddr::Unix("/tmp/g.sock".into()))
        );
        assert!(matches!(
            GdbAddr::parse("0.0.0.0:1234"),
            Err(DebugError::NotLoopback(_))
        ));
        for bad in ["", "port", "99999", "host:1", "localhost:x"] {
            assert!(
                matches!(GdbAddr::parse(bad), Err(DebugError::BadAddress(_))),
                "{bad}"
            );
        }
    }
}
