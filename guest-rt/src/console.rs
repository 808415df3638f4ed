//! `print!`, `println!`, `eprint!`, `eprintln!`: buffered writes to the
//! host's stdout and stderr.
//!
//! stderr is line-buffered (one hypercall per line). stdout is buffered in
//! a [`vessel_abi::ConsoleBuffer`] and written when it fills, before the app
//! idles or reads stdin, and with the exit hypercall itself; per line only
//! when the launcher says stdout is a terminal. So `hello` costs one exit,
//! not one per line. Nothing is lost when the guest cannot flush: the
//! buffer is the one the launcher reserved in the boot area
//! (`BootInfo::stdout_buffer`), and after a crash or a timeout the launcher
//! prints what is left in it.

use core::fmt::{self, Write};

use spin::Mutex;
use vessel_abi::console::{BUFFER, STDOUT_LINE_BUFFERED};
use vessel_abi::{Call, ConsoleBuffer, GuestSlice};

/// Guards the stdout buffer (`BootInfo::stdout_buffer`).
static STDOUT: Mutex<()> = Mutex::new(());

/// stderr's line buffer.
static STDERR: Mutex<ConsoleBuffer> = Mutex::new(ConsoleBuffer {
    len: 0,
    data: [0; BUFFER],
});

/// Write out `b` to host fd `fd` and empty it.
fn flush_buffer(fd: u32, b: &mut ConsoleBuffer) {
    let len = (b.len as usize).min(BUFFER);
    let mut done = 0;
    while done < len {
        let chunk = &b.data[done..len];
        match crate::hypercall::call(Call::Write {
            fd,
            buf: crate::hypercall::slice(chunk),
        }) {
            Ok((n, _)) if n > 0 => done += n as usize,
            _ => break, // host refused: drop the rest rather than spin
        }
    }
    b.len = 0;
}

/// Append `s`, flushing when full or, with `line`, at each newline.
fn push(fd: u32, b: &mut ConsoleBuffer, mut s: &[u8], line: bool) {
    while !s.is_empty() {
        let at = b.len as usize;
        let n = s.len().min(BUFFER - at);
        b.data[at..at + n].copy_from_slice(&s[..n]);
        let newline = line && s[..n].contains(&b'\n');
        b.len += n as u64;
        s = &s[n..];
        if newline || b.len as usize == BUFFER {
            flush_buffer(fd, b);
        }
    }
}

/// Run `f` on the stdout buffer with its lock held; None if it is taken
/// (a panic while printing must not deadlock on its own lock).
fn with_stdout<R>(wait: bool, f: impl FnOnce(&mut ConsoleBuffer) -> R) -> Option<R> {
    let _guard = if wait {
        Some(STDOUT.lock())
    } else {
        STDOUT.try_lock()
    }?;
    let at = crate::boot::info().stdout_buffer as *mut ConsoleBuffer;
    // SAFETY: the launcher reserved a ConsoleBuffer at `stdout_buffer` for
    // the guest alone (boot checked it is non-zero and aligned); STDOUT is
    // held, so this is the only reference to it.
    let b = unsafe { &mut *at };
    Some(f(b))
}

fn stdout_line_buffered() -> bool {
    crate::boot::info().console_flags & STDOUT_LINE_BUFFERED != 0
}

/// Standard output.
pub struct Stdout;
/// Standard error.
pub struct Stderr;

impl Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_stdout(s.as_bytes());
        Ok(())
    }
}

impl Write for Stderr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push(2, &mut STDERR.lock(), s.as_bytes(), true);
        Ok(())
    }
}

/// Write raw bytes to stdout (buffered like `print!`).
pub fn write_stdout(bytes: &[u8]) {
    let line = stdout_line_buffered();
    with_stdout(true, |b| push(1, b, bytes, line));
}

/// Write raw bytes to stderr (line-buffered like `eprint!`).
pub fn write_stderr(bytes: &[u8]) {
    push(2, &mut STDERR.lock(), bytes, true);
}

/// Write out buffered stdout now (done before idling and reading stdin).
pub fn flush_stdout() {
    with_stdout(false, |b| flush_buffer(1, b));
}

/// Flush both streams (done at panic and abort).
pub fn flush_all() {
    flush_stdout();
    if let Some(mut e) = STDERR.try_lock() {
        flush_buffer(2, &mut e);
    }
}

/// End the VM with `code`, handing the launcher the buffered stdout in the
/// exit hypercall itself. Never returns.
pub(crate) fn exit_with_stdout(code: i32) -> ! {
    if let Some(mut e) = STDERR.try_lock() {
        flush_buffer(2, &mut e);
    }
    let stdout = with_stdout(false, |b| GuestSlice {
        addr: b.data.as_ptr() as u64,
        len: b.len.min(BUFFER as u64),
    })
    .unwrap_or_default();
    let _ = crate::hypercall::call(Call::Exit { code, stdout });
    crate::arch::trap()
}

/// Read from the host's stdin into `buf`; returns bytes read (0 at EOF).
pub fn read_stdin(buf: &mut [u8]) -> Result<usize, vessel_abi::Errno> {
    flush_stdout(); // a prompt shows before the read blocks
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

/// Print to the guest's stdout (buffered; see [`console`](crate::console)).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Print a line to the guest's stdout.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Print to the guest's stderr (line-buffered).
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::console::_eprint(format_args!($($arg)*)) };
}

/// Print a line to the guest's stderr.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::eprint!("\n") };
    ($($arg:tt)*) => { $crate::console::_eprint(format_args!("{}\n", format_args!($($arg)*))) };
}
