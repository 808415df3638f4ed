//! A sandbox's console: stdout to a writer of the host program's choice,
//! stderr kept (the last [`STDERR_KEPT`] bytes) for panic messages.

use std::io::Write;

use crate::console::HostIo;

/// How much of the guest's stderr a sandbox keeps per call.
pub const STDERR_KEPT: usize = 8 << 10;

/// The console of a sandboxed guest.
pub(crate) struct SandboxIo {
    pub(crate) stdout: Box<dyn Write + Send>,
    pub(crate) stderr: Vec<u8>,
}

impl SandboxIo {
    /// The stderr kept since the last call began, as text.
    pub(crate) fn take_stderr(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.stderr).trim_end().to_string();
        self.stderr.clear();
        crate::outcome::escape(&s)
    }
}

impl HostIo for SandboxIo {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        if fd == 1 {
            self.stdout.write_all(data)?;
            return self.stdout.flush();
        }
        self.stderr.extend_from_slice(data);
        if self.stderr.len() > STDERR_KEPT {
            let cut = self.stderr.len() - STDERR_KEPT;
            self.stderr.drain(..cut);
        }
        Ok(())
    }

    /// A sandboxed guest has no stdin.
    fn read_stdin(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}
