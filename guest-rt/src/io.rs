//! I/O errors and traits shaped like `std::io`: [`Error`] with an
//! [`ErrorKind`], [`Result`], and [`Read`], [`Write`], [`Seek`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vessel_abi::Errno;

/// What went wrong, like `std::io::ErrorKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such file or directory.
    NotFound,
    /// The sandbox or the host refused it.
    PermissionDenied,
    /// The file exists.
    AlreadyExists,
    /// A bad argument (path, flag, buffer).
    InvalidInput,
    /// Data that is not what was expected (e.g. not UTF-8).
    InvalidData,
    /// A directory was needed.
    NotADirectory,
    /// A file was needed.
    IsADirectory,
    /// The directory is not empty.
    DirectoryNotEmpty,
    /// Too many open files (the launcher's per-VM handle cap).
    TooManyOpenFiles,
    /// A closed or never-issued handle.
    BadHandle,
    /// A buffer already used by a request in flight.
    ResourceBusy,
    /// A path too long.
    InvalidFilename,
    /// The launcher's `--max-output` cap.
    OutputLimit,
    /// The host file system is full.
    StorageFull,
    /// Not offered to this guest.
    Unsupported,
    /// The end came before the bytes wanted.
    UnexpectedEof,
    /// A write wrote nothing.
    WriteZero,
    /// Any other failure (details on the host).
    Other,
}

/// An I/O error: its kind and the launcher's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    errno: Option<Errno>,
}

/// `core::result::Result` with this module's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// An error of `kind` made by the runtime itself.
    pub const fn new(kind: ErrorKind) -> Error {
        Error { kind, errno: None }
    }
    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The launcher's error code, if it came from the launcher.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Error {
        let kind = match e {
            Errno::NotFound => ErrorKind::NotFound,
            Errno::PermissionDenied => ErrorKind::PermissionDenied,
            Errno::AlreadyExists => ErrorKind::AlreadyExists,
            Errno::Inval | Errno::Fault => ErrorKind::InvalidInput,
            Errno::NotADirectory => ErrorKind::NotADirectory,
            Errno::IsADirectory => ErrorKind::IsADirectory,
            Errno::NotEmpty => ErrorKind::DirectoryNotEmpty,
            Errno::TooManyHandles => ErrorKind::TooManyOpenFiles,
            Errno::BadHandle | Errno::BadFd => ErrorKind::BadHandle,
            Errno::Busy => ErrorKind::ResourceBusy,
            Errno::NameTooLong => ErrorKind::InvalidFilename,
            Errno::OutputLimit => ErrorKind::OutputLimit,
            Errno::NoSpace => ErrorKind::StorageFull,
            Errno::NotSupported => ErrorKind::Unsupported,
            Errno::Io => ErrorKind::Other,
        };
        Error {
            kind,
            errno: Some(e),
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(f, "{:?} ({e:?})", self.kind),
            None => write!(f, "{:?}", self.kind),
        }
    }
}

/// Where [`Seek::seek`] counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeekFrom {
    /// This many bytes from the start.
    Start(u64),
    /// This many bytes from the end (negative: before it).
    End(i64),
    /// This many bytes from the position.
    Current(i64),
}

/// Reading bytes, like `std::io::Read`.
pub trait Read {
    /// Read some bytes into `buf`; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;

    /// Read to the end, appending to `buf`; returns bytes read.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let start = buf.len();
        let mut chunk = 64 << 10;
        loop {
            let at = buf.len();
            buf.resize(at + chunk, 0);
            let n = self.read(&mut buf[at..]);
            match n {
                Ok(0) => {
                    buf.truncate(at);
                    return Ok(at - start);
                }
                Ok(n) => buf.truncate(at + n),
                Err(e) => {
                    buf.truncate(at);
                    return Err(e);
                }
            }
            chunk = (chunk * 2).min(1 << 20);
        }
    }

    /// Read to the end as UTF-8, appending to `buf`.
    fn read_to_string(&mut self, buf: &mut String) -> Result<usize> {
        let mut v = Vec::new();
        let n = self.read_to_end(&mut v)?;
        let s = core::str::from_utf8(&v).map_err(|_| Error::new(ErrorKind::InvalidData))?;
        buf.push_str(s);
        Ok(n)
    }

    /// Fill `buf` exactly, or fail with UnexpectedEof.
    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            match self.read(buf)? {
                0 => return Err(Error::new(ErrorKind::UnexpectedEof)),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }
}

/// Writing bytes, like `std::io::Write`.
pub trait Write {
    /// Write some of `buf`; returns how much.
    fn write(&mut self, buf: &[u8]) -> Result<usize>;
    /// Push buffered data out (files here are unbuffered).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// Write all of `buf`.
    fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            match self.write(buf)? {
                0 => return Err(Error::new(ErrorKind::WriteZero)),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

/// Moving a position, like `std::io::Seek`.
pub trait Seek {
    /// Move; returns the new position from the start.
    fn seek(&mut self, pos: SeekFrom) -> Result<u64>;
}

/// Standard input, read through the launcher.
pub struct Stdin;

/// Standard input.
pub fn stdin() -> Stdin {
    Stdin
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        crate::console::read_stdin(buf).map_err(Error::from)
    }
}
