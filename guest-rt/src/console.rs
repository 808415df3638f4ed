//! `print!`, `println!`, `eprint!`, `eprintln!`: line-buffered writes to the
//! host's stdout and stderr (one hypercall per line, or per 4 KiB).

use core::fmt::{self, Write};

use spin::Mutex;
use vessel_abi::Call;

const BUF: usize = 4096;

struct LineBuf {
    fd: u32,
    len: usize,
    buf: [u8; BUF],
}

impl LineBuf {
    const fn new(fd: u32) -> Self {
        LineBuf {
            fd,
            len: 0,
            buf: [0; BUF],
        }
    }

    fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            let chunk = &self.buf[done..self.len];
            match crate::hypercall::call(Call::Write {
                fd: self.fd,
                buf: crate::hypercall::slice(chunk),
            }) {
                Ok((n, _)) if n > 0 => done += n as usize,
                _ => break, // host refused: drop the rest rather than spin
            }
        }
        self.len = 0;
    }

    fn push(&mut self, mut s: &[u8]) {
        while !s.is_empty() {
            let n = s.len().min(BUF - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
            let newline = s[..n].contains(&b'\n');
            self.len += n;
            s = &s[n..];
            if newline || self.len == BUF {
                self.flush();
            }
        }
    }
}

static STDOUT: Mutex<LineBuf> = Mutex::new(LineBuf::new(1));
static STDERR: Mutex<LineBuf> = Mutex::new(LineBuf::new(2));

/// Standard output.
pub struct Stdout;
/// Standard error.
pub struct Stderr;

impl Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        STDOUT.lock().push(s.as_bytes());
        Ok(())
    }
}

impl Write for Stderr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        STDERR.lock().push(s.as_bytes());
        Ok(())
    }
}

/// Write raw bytes to stdout (buffered like `print!`).
pub fn write_stdout(bytes: &[u8]) {
    STDOUT.lock().push(bytes);
}

/// Flush both streams (done at exit and panic).
pub fn flush_all() {
    // try_lock: a panic while printing must not deadlock on its own lock.
    if let Some(mut o) = STDOUT.try_lock() {
        o.flush();
    }
    if let Some(mut e) = STDERR.try_lock() {
        e.flush();
    }
}

/// Read from the host's stdin into `buf`; returns bytes read (0 at EOF).
pub fn read_stdin(buf: &mut [u8]) -> Result<usize, vessel_abi::Errno> {
    let b = vessel_abi::GuestSlice {
        addr: buf.as_mut_ptr() as u64,
        len: buf.len() as u64,
    };
    crate::hypercall::call(Call::Read { fd: 0, buf: b }).map(|r| r.0 as usize)
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _ = Stdout.write_fmt(args);
}

#[doc(hidden)]
pub fn _eprint(args: fmt::Arguments) {
    let _ = Stderr.write_fmt(args);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::console::_eprint(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! eprintln {
    () => { $crate::eprint!("\n") };
    ($($arg:tt)*) => { $crate::console::_eprint(format_args!("{}\n", format_args!($($arg)*))) };
}
