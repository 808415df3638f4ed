//! Where a guest's console goes: the launcher's own stdio, or whatever a
//! host program embedding Vessel supplies.

use std::io::Read;
use std::os::fd::RawFd;

/// Where a guest's console goes. The default is the process's stdio; a
/// host program embedding Vessel can capture it instead.
pub trait HostIo: Send {
    /// Write all of `data` to guest fd 1 (stdout) or 2 (stderr).
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()>;
    /// Read up to `buf.len()` bytes of guest stdin (fd 0); 0 at its end.
    fn read_stdin(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Write what a crashed or stopped guest left in its stdout buffer:
    /// like `write`, but it must not block for long (the deadline passed).
    fn write_final(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        self.write(fd, data)
    }
}

/// The launcher process's own stdin/stdout/stderr.
///
/// Writes go straight to the file descriptors (no std buffering), and give
/// up with `Interrupted` when the vCPU thread was kicked (timeout, signal)
/// while blocked on a full pipe, so the deadline holds.
pub struct StdIo;

/// Write all of `data` to `fd`; a write interrupted by a stop request
/// returns `Interrupted`, any other EINTR is retried.
pub fn write_fd(fd: RawFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        if crate::stop::kicked() {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        // SAFETY: the pointer and length describe the live slice `data`.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n.cast_unsigned()..];
    }
    Ok(())
}

impl HostIo for StdIo {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        write_fd(if fd == 1 { 1 } else { 2 }, data)
    }
    fn read_stdin(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::stdin().lock().read(buf)
    }
    fn write_final(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        let fd = if fd == 1 { 1 } else { 2 };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd. A pipe that stays full for FINAL_WAIT_MS
        // loses this output instead of holding the process past its end.
        if unsafe { libc::poll(&raw mut p, 1, FINAL_WAIT_MS) } != 1 {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        // One write of at most a pipe buffer's worth after POLLOUT does not block.
        write_fd(fd, &data[..data.len().min(PIPE_BUF)])
    }
}

/// How long the output of a stopped guest may wait for a full pipe.
const FINAL_WAIT_MS: libc::c_int = 1000;
/// Bytes a pipe accepts without blocking once poll says POLLOUT.
const PIPE_BUF: usize = 4096;

/// Whether the launcher's stdout is a terminal (the guest then flushes
/// stdout per line).
pub fn stdout_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}
