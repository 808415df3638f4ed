//! Files in the launcher's pre-opened directories (`--dir HOST[:GUEST][:ro]`),
//! shaped like `std::fs`.
//!
//! Paths are absolute guest paths (`/GUEST/...`). Every call goes through
//! the I/O ring ([`crate::ring`]): the blocking calls here submit one
//! request and wait for it; the `*_async` forms park only the calling task
//! while the launcher serves the request on its own threads, so tasks
//! overlap their I/O.

use alloc::string::String;
use alloc::vec::Vec;

use vessel_abi::fs::{kind, open, seek, DirEnt, Stat};
use vessel_abi::ring::{op, Sqe, CURSOR};
use vessel_abi::zerocopy::FromBytes;
use vessel_abi::GuestSlice;

use crate::io::{self, Error, ErrorKind, Read, Seek, SeekFrom, Write};
use crate::ring;

fn slice(b: &[u8]) -> GuestSlice {
    crate::hypercall::slice(b)
}

/// A buffer the launcher writes into.
fn slice_mut(b: &mut [u8]) -> GuestSlice {
    GuestSlice {
        addr: b.as_mut_ptr() as u64,
        len: b.len() as u64,
    }
}

fn call(sqe: Sqe) -> io::Result<u64> {
    ring::call(sqe).map_err(Error::from)
}

fn path_call(op: u32, path: &str) -> io::Result<u64> {
    call(Sqe {
        op,
        a: slice(path.as_bytes()),
        ..Sqe::default()
    })
}

/// How to open a file, like `std::fs::OpenOptions`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    flags: u32,
}

impl OpenOptions {
    /// No access yet: say `read`, `write` or `append`.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }
    fn set(&mut self, flag: u32, on: bool) -> &mut OpenOptions {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
        self
    }
    /// Allow reading.
    pub fn read(&mut self, on: bool) -> &mut OpenOptions {
        self.set(open::READ, on)
    }
    /// Allow writing.
    pub fn write(&mut self, on: bool) -> &mut OpenOptions {
        self.set(open::WRITE, on)
    }
    /// Write at the end of the file.
    pub fn append(&mut self, on: bool) -> &mut OpenOptions {
        self.set(open::APPEND, on)
    }
    /// Cut the file to 0 bytes when opening.
    pub fn truncate(&mut self, on: bool) -> &mut OpenOptions {
        self.set(open::TRUNCATE, on)
    }
    /// Create the file if it does not exist.
    pub fn create(&mut self, on: bool) -> &mut OpenOptions {
        self.set(open::CREATE, on)
    }
    /// Create the file, failing with AlreadyExists if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut OpenOptions {
        self.set(open::CREATE_NEW, on)
    }
    /// Open `path` with these options.
    pub fn open(&self, path: impl AsRef<str>) -> io::Result<File> {
        open_raw(path.as_ref(), self.flags).map(|handle| File { handle })
    }

    /// Open `path`, parking only this task while the launcher opens it.
    pub async fn open_async(&self, path: impl AsRef<str>) -> io::Result<File> {
        let owned = Vec::from(path.as_ref().as_bytes());
        let sqe = Sqe {
            op: op::OPEN,
            flags: self.flags,
            a: slice(&owned),
            ..Sqe::default()
        };
        let (r, _) = ring::submit_owned(sqe, owned).await;
        r.map(|handle| File { handle }).map_err(Error::from)
    }
}

fn open_raw(path: &str, flags: u32) -> io::Result<u64> {
    call(Sqe {
        op: op::OPEN,
        flags,
        a: slice(path.as_bytes()),
        ..Sqe::default()
    })
}

/// An open file; closed when dropped.
#[derive(Debug)]
pub struct File {
    handle: u64,
}

impl File {
    /// Open `path` for reading.
    pub fn open(path: impl AsRef<str>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }
    /// Create (or truncate) `path` for writing.
    pub fn create(path: impl AsRef<str>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }
    /// Create `path`, failing if it exists.
    pub fn create_new(path: impl AsRef<str>) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }
    /// Open `path` for reading; parks only this task meanwhile.
    pub async fn open_async(path: impl AsRef<str>) -> io::Result<File> {
        OpenOptions::new().read(true).open_async(path).await
    }
    /// Options for [`OpenOptions::open`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// The launcher's handle (for tests of the launcher's checks).
    pub fn handle(&self) -> u64 {
        self.handle
    }

    fn rw(&self, op: u32, addr: GuestSlice, offset: u64) -> io::Result<usize> {
        call(Sqe {
            op,
            handle: self.handle,
            offset,
            a: addr,
            ..Sqe::default()
        })
        .map(|n| n as usize)
    }

    /// Read at `offset` without moving the position (like `FileExt::read_at`).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset == CURSOR {
            return Err(ErrorKind::InvalidInput.into());
        }
        self.rw(op::READ, slice_mut(buf), offset)
    }
    /// Write at `offset` without moving the position.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if offset == CURSOR {
            return Err(ErrorKind::InvalidInput.into());
        }
        self.rw(op::WRITE, slice(buf), offset)
    }

    /// Read up to `len` bytes at `offset`; parks only this task meanwhile.
    pub async fn read_at_async(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
        let mut buf = alloc::vec![0u8; len];
        let sqe = Sqe {
            op: op::READ,
            handle: self.handle,
            offset,
            a: slice_mut(&mut buf),
            ..Sqe::default()
        };
        let (r, mut buf) = ring::submit_owned(sqe, buf).await;
        let n = r.map_err(Error::from)? as usize;
        buf.truncate(n);
        Ok(buf)
    }

    /// Write `data` at `offset`; parks only this task meanwhile.
    pub async fn write_at_async(&self, data: Vec<u8>, offset: u64) -> io::Result<usize> {
        let sqe = Sqe {
            op: op::WRITE,
            handle: self.handle,
            offset,
            a: slice(&data),
            ..Sqe::default()
        };
        let (r, _) = ring::submit_owned(sqe, data).await;
        r.map(|n| n as usize).map_err(Error::from)
    }

    /// Size, kind and times.
    pub fn metadata(&self) -> io::Result<Metadata> {
        let mut st = [0u8; core::mem::size_of::<Stat>()];
        call(Sqe {
            op: op::FSTAT,
            handle: self.handle,
            b: slice_mut(&mut st),
            ..Sqe::default()
        })?;
        Ok(stat_from(&st))
    }
    /// Truncate or extend to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.handle_call(op::SET_LEN, len)
    }
    /// Flush to stable storage.
    pub fn sync_all(&self) -> io::Result<()> {
        self.handle_call(op::SYNC, 0)
    }
    fn handle_call(&self, op: u32, offset: u64) -> io::Result<()> {
        call(Sqe {
            op,
            handle: self.handle,
            offset,
            ..Sqe::default()
        })
        .map(drop)
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rw(op::READ, slice_mut(buf), CURSOR)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rw(op::WRITE, slice(buf), CURSOR)
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let (flags, offset) = match pos {
            SeekFrom::Start(o) => (seek::START, o),
            SeekFrom::Current(o) => (seek::CURRENT, o.cast_unsigned()),
            SeekFrom::End(o) => (seek::END, o.cast_unsigned()),
        };
        call(Sqe {
            op: op::SEEK,
            flags,
            handle: self.handle,
            offset,
            ..Sqe::default()
        })
    }
}

impl Drop for File {
    /// Closes without waiting (the close rides on the next doorbell).
    fn drop(&mut self) {
        ring::detach(Sqe {
            op: op::CLOSE,
            handle: self.handle,
            ..Sqe::default()
        });
    }
}

/// What kind of file, like `std::fs::FileType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileType(u32);

impl FileType {
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.0 == kind::FILE
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.0 == kind::DIR
    }
    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.0 == kind::SYMLINK
    }
}

/// Size, kind, permissions and modification time.
#[derive(Clone, Copy, Debug)]
pub struct Metadata(Stat);

impl Metadata {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.0.size
    }
    /// Size 0.
    pub fn is_empty(&self) -> bool {
        self.0.size == 0
    }
    /// What kind of file.
    pub fn file_type(&self) -> FileType {
        FileType(self.0.kind)
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }
    /// Permission bits (`st_mode & 0o7777`).
    pub fn mode(&self) -> u32 {
        self.0.mode
    }
    /// True beneath a `:ro` directory.
    pub fn readonly(&self) -> bool {
        self.0.readonly != 0
    }
    /// Nanoseconds since the Unix epoch.
    pub fn modified_ns(&self) -> u64 {
        self.0.modified_ns
    }
}

/// Metadata of `path` (symlinks beneath the directory followed).
pub fn metadata(path: impl AsRef<str>) -> io::Result<Metadata> {
    let mut st = [0u8; core::mem::size_of::<Stat>()];
    call(Sqe {
        op: op::STAT,
        a: slice(path.as_ref().as_bytes()),
        b: slice_mut(&mut st),
        ..Sqe::default()
    })?;
    Ok(stat_from(&st))
}

/// The launcher wrote `st` behind the compiler's back: read it volatile.
fn stat_from(st: &[u8; core::mem::size_of::<Stat>()]) -> Metadata {
    // SAFETY: `st` is a live, aligned-enough byte array; read_volatile of
    // an array of bytes has no alignment needs beyond u8's.
    let bytes = unsafe { core::ptr::read_volatile(st) };
    Metadata(Stat::read_from_bytes(&bytes).unwrap_or_default())
}

/// The whole file.
pub fn read(path: impl AsRef<str>) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// The whole file as UTF-8.
pub fn read_to_string(path: impl AsRef<str>) -> io::Result<String> {
    let mut s = String::new();
    File::open(path)?.read_to_string(&mut s)?;
    Ok(s)
}

/// Create or replace `path` with `data`.
pub fn write(path: impl AsRef<str>, data: impl AsRef<[u8]>) -> io::Result<()> {
    File::create(path)?.write_all(data.as_ref())
}

/// The whole file; parks only this task while the launcher reads it.
pub async fn read_async(path: impl AsRef<str>) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len() as usize;
    f.read_at_async(len, 0).await
}

/// Remove the file `path`.
pub fn remove_file(path: impl AsRef<str>) -> io::Result<()> {
    path_call(op::UNLINK, path.as_ref()).map(drop)
}

/// Remove the empty directory `path`.
pub fn remove_dir(path: impl AsRef<str>) -> io::Result<()> {
    path_call(op::RMDIR, path.as_ref()).map(drop)
}

/// Create the directory `path` (its parent must exist).
pub fn create_dir(path: impl AsRef<str>) -> io::Result<()> {
    path_call(op::MKDIR, path.as_ref()).map(drop)
}

/// Create `path` and every missing parent. Parents above a pre-opened
/// directory cannot be made and are passed over; only `path` itself decides.
pub fn create_dir_all(path: impl AsRef<str>) -> io::Result<()> {
    let parts: Vec<&str> = path.as_ref().split('/').filter(|c| !c.is_empty()).collect();
    let mut at = String::new();
    for (i, part) in parts.iter().enumerate() {
        at.push('/');
        at.push_str(part);
        match create_dir(&at) {
            Err(e) if i + 1 == parts.len() => {
                if e.kind() == ErrorKind::AlreadyExists && metadata(&at)?.is_dir() {
                    return Ok(());
                }
                return Err(e);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Rename `from` to `to` (replacing `to`).
pub fn rename(from: impl AsRef<str>, to: impl AsRef<str>) -> io::Result<()> {
    call(Sqe {
        op: op::RENAME,
        a: slice(from.as_ref().as_bytes()),
        b: slice(to.as_ref().as_bytes()),
        ..Sqe::default()
    })
    .map(drop)
}

/// The entries of directory `path` (without `.` and `..`).
pub fn read_dir(path: impl AsRef<str>) -> io::Result<ReadDir> {
    let handle = open_raw(path.as_ref(), open::DIRECTORY)?;
    Ok(ReadDir {
        dir: File { handle },
        base: String::from(path.as_ref().trim_end_matches('/')),
        next: 0,
        batch: Vec::new(),
        done: false,
    })
}

/// An iterator over a directory's entries.
pub struct ReadDir {
    dir: File,
    base: String,
    next: u64,
    batch: Vec<DirEntry>,
    done: bool,
}

/// One directory entry.
#[derive(Clone, Debug)]
pub struct DirEntry {
    name: String,
    path: String,
    kind: FileType,
}

impl DirEntry {
    /// The name (not UTF-8 bytes shown as U+FFFD).
    pub fn file_name(&self) -> &str {
        &self.name
    }
    /// The directory's path joined with the name.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// What kind of file.
    pub fn file_type(&self) -> FileType {
        self.kind
    }
}

impl ReadDir {
    fn fill(&mut self) -> io::Result<()> {
        let mut buf = alloc::vec![0u8; 16 << 10];
        let n = call(Sqe {
            op: op::READ_DIR,
            handle: self.dir.handle,
            offset: self.next,
            b: slice_mut(&mut buf),
            ..Sqe::default()
        })?;
        if n == 0 {
            self.done = true;
        }
        self.next += n;
        let mut at = 0usize;
        for _ in 0..n {
            let Ok((head, _)) = DirEnt::read_from_prefix(&buf[at..]) else {
                break;
            };
            let start = at + core::mem::size_of::<DirEnt>();
            let Some(name) = buf.get(start..start + head.name_len as usize) else {
                break;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let path = alloc::format!("{}/{}", self.base, name);
            self.batch.push(DirEntry {
                name,
                path,
                kind: FileType(head.kind),
            });
            at += vessel_abi::fs::dirent_size(u64::from(head.name_len)) as usize;
        }
        self.batch.reverse();
        Ok(())
    }
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;
    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        if self.batch.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.batch.pop().map(Ok)
    }
}
