//! One handler per file op of the ring ([`vessel_abi::ring::op`]). Every
//! guest value (paths, buffers, offsets, handles) is checked here.

use std::ffi::CStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use vessel_abi::fs::{self as afs, kind, open, seek, DirEnt, Stat};
use vessel_abi::ring::{op, Sqe, CURSOR};
use vessel_abi::zerocopy::IntoBytes;
use vessel_abi::{Errno, GuestSlice};

use super::handles::{Object, Open};
use super::resolve::{self, Beneath};
use super::sys::{self, errno, FileStat};
use super::Fs;
use crate::memory::GuestRam;

type R = Result<u64, Errno>;

fn io(e: std::io::Error) -> Errno {
    errno(&e)
}

fn guest_check(ram: &GuestRam, s: GuestSlice) -> Result<(), Errno> {
    if ram.contains(s.addr, s.len) {
        Ok(())
    } else {
        Err(Errno::Fault)
    }
}

/// Read a path named by the guest (length checked before reading).
fn read_path(ram: &GuestRam, s: GuestSlice) -> Result<Vec<u8>, Errno> {
    if s.len > afs::MAX_PATH {
        return Err(Errno::NameTooLong);
    }
    guest_check(ram, s)?;
    ram.read_vec(s.addr, s.len, afs::MAX_PATH)
        .map_err(|_| Errno::Fault)
}

impl Fs {
    /// Serve one file request: its completion value or its error.
    pub fn serve(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        match sqe.op {
            op::NOP => Ok(0),
            op::OPEN => self.open(ram, sqe),
            op::CLOSE => self.handles.remove(sqe.handle).map(|()| 0),
            op::READ => self.read(ram, sqe),
            op::WRITE => self.write(ram, sqe),
            op::SEEK => self.seek(sqe),
            op::FSTAT => self.fstat(ram, sqe),
            op::STAT => self.stat(ram, sqe),
            op::SET_LEN => self.set_len(sqe),
            op::SYNC => self.file(sqe.handle)?.sync_all().map(|()| 0).map_err(io),
            op::READ_DIR => self.read_dir(ram, sqe),
            op::MKDIR | op::UNLINK | op::RMDIR => self.change(ram, sqe),
            op::RENAME => self.rename(ram, sqe),
            _ => Err(Errno::Inval),
        }
    }

    fn beneath(&self, ram: &GuestRam, s: GuestSlice) -> Result<Beneath, Errno> {
        let path = read_path(ram, s)?;
        let dirs: Vec<&[String]> = self.dirs.iter().map(|d| d.parts.as_slice()).collect();
        resolve::resolve(&dirs, &path)
    }

    fn dir_fd(&self, b: &Beneath) -> i32 {
        self.dirs[b.dir].dir.as_raw_fd()
    }

    fn writable(&self, b: &Beneath) -> Result<(), Errno> {
        if self.dirs[b.dir].readonly {
            Err(Errno::PermissionDenied)
        } else {
            Ok(())
        }
    }

    fn open(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        let f = sqe.flags;
        if f & !open::ALL != 0
            || f & (open::READ | open::WRITE | open::APPEND | open::DIRECTORY) == 0
        {
            return Err(Errno::Inval);
        }
        let b = self.beneath(ram, sqe.a)?;
        let changes = open::WRITE | open::APPEND | open::CREATE | open::CREATE_NEW | open::TRUNCATE;
        if f & changes != 0 {
            self.writable(&b)?;
        }
        let dir = f & open::DIRECTORY != 0;
        if dir && f & changes != 0 {
            return Err(Errno::Inval);
        }
        // Probe without opening: a device or FIFO is refused before its
        // open could have side effects.
        let probe = match sys::openat2(self.dir_fd(&b), &b.rel, libc::O_PATH, 0) {
            Ok(fd) => Some(admissible(&fd, dir)?),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && f & open::CREATE != 0 => None,
            Err(e) => return Err(io(e)),
        };
        // openat2 refuses a mode without O_CREAT.
        let mode = if f & (open::CREATE | open::CREATE_NEW) != 0 {
            0o666
        } else {
            0
        };
        let fd = sys::openat2(self.dir_fd(&b), &b.rel, os_flags(f), mode).map_err(io)?;
        let st = admissible(&fd, dir)?;
        if probe.is_some_and(|p| !p.same(&st)) {
            return Err(Errno::PermissionDenied); // swapped between the two opens
        }
        let object = if dir {
            let entries = sys::list_dir(fd.as_raw_fd()).map_err(io)?;
            Object::Dir {
                entries: entries
                    .into_iter()
                    .map(|(n, t)| (n, dtype_kind(t)))
                    .collect(),
                fd,
            }
        } else {
            Object::File(std::fs::File::from(fd))
        };
        self.handles.insert(Open {
            object,
            writable: f & (open::WRITE | open::APPEND) != 0,
            readonly_dir: self.dirs[b.dir].readonly,
        })
    }

    fn open_handle(&self, h: u64) -> Result<Arc<Open>, Errno> {
        self.handles.get(h)
    }

    fn file(&self, h: u64) -> Result<FileRef, Errno> {
        let o = self.open_handle(h)?;
        match o.object {
            Object::File(_) => Ok(FileRef(o)),
            Object::Dir { .. } => Err(Errno::IsADirectory),
        }
    }

    fn read(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        guest_check(ram, sqe.a)?;
        let f = self.file(sqe.handle)?;
        let mut buf = vec![0u8; sqe.a.len.min(afs::MAX_IO) as usize];
        let n = if sqe.offset == CURSOR {
            (&*f).read(&mut buf)
        } else {
            f.read_at(&mut buf, sqe.offset)
        }
        .map_err(io)?;
        ram.write(sqe.a.addr, &buf[..n]).map_err(|_| Errno::Fault)?;
        Ok(n as u64)
    }

    fn write(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        guest_check(ram, sqe.a)?;
        let f = self.file(sqe.handle)?;
        if !f.0.writable {
            return Err(Errno::PermissionDenied);
        }
        let len = sqe.a.len.min(afs::MAX_IO);
        if !self.budget.take(len) {
            return Err(Errno::OutputLimit);
        }
        let data = ram
            .read_vec(sqe.a.addr, len, afs::MAX_IO)
            .map_err(|_| Errno::Fault)?;
        let n = if sqe.offset == CURSOR {
            (&*f).write(&data)
        } else {
            f.write_at(&data, sqe.offset)
        }
        .map_err(io)?;
        Ok(n as u64)
    }

    fn seek(&self, sqe: &Sqe) -> R {
        let f = self.file(sqe.handle)?;
        let off = sqe.offset.cast_signed();
        let to = match sqe.flags {
            seek::START => SeekFrom::Start(sqe.offset),
            seek::CURRENT => SeekFrom::Current(off),
            seek::END => SeekFrom::End(off),
            _ => return Err(Errno::Inval),
        };
        (&*f).seek(to).map_err(io)
    }

    fn fstat(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        let o = self.open_handle(sqe.handle)?;
        let fd = match &o.object {
            Object::File(f) => f.as_raw_fd(),
            Object::Dir { fd, .. } => fd.as_raw_fd(),
        };
        let st = sys::fstat(fd).map_err(io)?;
        put_stat(ram, sqe.b, &st, o.readonly_dir)
    }

    fn stat(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        let b = self.beneath(ram, sqe.a)?;
        let fd = sys::openat2(self.dir_fd(&b), &b.rel, libc::O_PATH, 0).map_err(io)?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(io)?;
        put_stat(ram, sqe.b, &st, self.dirs[b.dir].readonly)
    }

    fn set_len(&self, sqe: &Sqe) -> R {
        let f = self.file(sqe.handle)?;
        if !f.0.writable {
            return Err(Errno::PermissionDenied);
        }
        f.set_len(sqe.offset).map(|()| 0).map_err(io)
    }

    fn read_dir(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        guest_check(ram, sqe.b)?;
        let o = self.open_handle(sqe.handle)?;
        let Object::Dir { entries, .. } = &o.object else {
            return Err(Errno::NotADirectory);
        };
        let start = usize::try_from(sqe.offset).unwrap_or(usize::MAX);
        let (bytes, n) = pack_dirents(entries.get(start..).unwrap_or(&[]), sqe.b.len);
        if n == 0 && start < entries.len() {
            return Err(Errno::Inval); // the buffer cannot hold one record
        }
        ram.write(sqe.b.addr, &bytes).map_err(|_| Errno::Fault)?;
        Ok(n)
    }

    /// MKDIR, UNLINK, RMDIR: a change to one name in a directory.
    fn change(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        let b = self.beneath(ram, sqe.a)?;
        self.writable(&b)?;
        let (parent, name) = resolve::parent_and_name(&b)?;
        let p = self.parent_fd(&b, &parent)?;
        match sqe.op {
            op::MKDIR => sys::mkdirat(p.as_raw_fd(), &name),
            op::UNLINK => sys::unlinkat(p.as_raw_fd(), &name, false),
            _ => sys::unlinkat(p.as_raw_fd(), &name, true),
        }
        .map(|()| 0)
        .map_err(io)
    }

    fn parent_fd(&self, b: &Beneath, parent: &CStr) -> Result<OwnedFd, Errno> {
        sys::openat2(self.dir_fd(b), parent, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(io)
    }

    fn rename(&self, ram: &GuestRam, sqe: &Sqe) -> R {
        let from = self.beneath(ram, sqe.a)?;
        let to = self.beneath(ram, sqe.b)?;
        self.writable(&from)?;
        self.writable(&to)?;
        let (fp, fname) = resolve::parent_and_name(&from)?;
        let (tp, tname) = resolve::parent_and_name(&to)?;
        let fdir = self.parent_fd(&from, &fp)?;
        let tdir = self.parent_fd(&to, &tp)?;
        sys::renameat(fdir.as_raw_fd(), &fname, tdir.as_raw_fd(), &tname)
            .map(|()| 0)
            .map_err(io)
    }
}

/// A handle known to be a regular file.
struct FileRef(Arc<Open>);

impl std::ops::Deref for FileRef {
    type Target = std::fs::File;
    fn deref(&self) -> &std::fs::File {
        match &self.0.object {
            Object::File(f) => f,
            // FileRef is only built for files (Fs::file).
            Object::Dir { .. } => unreachable!("FileRef over a directory"),
        }
    }
}

fn os_flags(f: u32) -> i32 {
    let mut o = libc::O_NONBLOCK | libc::O_NOCTTY;
    let w = f & (open::WRITE | open::APPEND) != 0;
    o |= match (f & open::READ != 0, w) {
        (true, true) => libc::O_RDWR,
        (false, true) => libc::O_WRONLY,
        _ => libc::O_RDONLY,
    };
    if f & open::APPEND != 0 {
        o |= libc::O_APPEND;
    }
    if f & open::CREATE_NEW != 0 {
        o |= libc::O_CREAT | libc::O_EXCL;
    } else if f & open::CREATE != 0 {
        o |= libc::O_CREAT;
    }
    if f & open::TRUNCATE != 0 {
        o |= libc::O_TRUNC;
    }
    if f & open::DIRECTORY != 0 {
        o |= libc::O_DIRECTORY;
    }
    o
}

/// Only regular files with one link, and directories, are opened.
fn admissible(fd: &OwnedFd, want_dir: bool) -> Result<FileStat, Errno> {
    let st = sys::fstat(fd.as_raw_fd()).map_err(io)?;
    if st.is_dir() {
        return if want_dir {
            Ok(st)
        } else {
            Err(Errno::IsADirectory)
        };
    }
    if !st.is_file() {
        return Err(Errno::PermissionDenied); // device, FIFO, socket
    }
    if st.0.st_nlink > 1 {
        return Err(Errno::PermissionDenied); // its other names may lie outside
    }
    if want_dir {
        return Err(Errno::NotADirectory);
    }
    Ok(st)
}

fn dtype_kind(t: u8) -> u32 {
    match t {
        libc::DT_REG => kind::FILE,
        libc::DT_DIR => kind::DIR,
        libc::DT_LNK => kind::SYMLINK,
        _ => kind::OTHER,
    }
}

fn stat_kind(st: &FileStat) -> u32 {
    match st.file_type() {
        libc::S_IFREG => kind::FILE,
        libc::S_IFDIR => kind::DIR,
        libc::S_IFLNK => kind::SYMLINK,
        _ => kind::OTHER,
    }
}

fn put_stat(ram: &GuestRam, out: GuestSlice, st: &FileStat, readonly: bool) -> R {
    let size = std::mem::size_of::<Stat>() as u64;
    if out.len < size {
        return Err(Errno::Inval);
    }
    guest_check(
        ram,
        GuestSlice {
            addr: out.addr,
            len: size,
        },
    )?;
    let ns = u64::try_from(st.0.st_mtime)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|s| s.checked_add(u64::try_from(st.0.st_mtime_nsec).unwrap_or(0)))
        .unwrap_or(0);
    let s = Stat {
        size: u64::try_from(st.0.st_size).unwrap_or(0),
        kind: stat_kind(st),
        mode: st.0.st_mode & 0o7777,
        modified_ns: ns,
        readonly: u32::from(readonly),
        reserved: 0,
    };
    ram.write(out.addr, s.as_bytes())
        .map_err(|_| Errno::Fault)?;
    Ok(0)
}

/// As many records as fit in `room` bytes, and how many that is.
pub(crate) fn pack_dirents(entries: &[(Vec<u8>, u32)], room: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut n = 0;
    for (name, k) in entries {
        let size = afs::dirent_size(name.len() as u64);
        if out.len() as u64 + size > room {
            break;
        }
        let head = DirEnt {
            name_len: name.len() as u32,
            kind: *k,
        };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(name);
        out.resize(out.len() + (size as usize - 8 - name.len()), 0);
        n += 1;
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirents_are_padded_and_stop_when_full() {
        let e = vec![(b"abc".to_vec(), kind::FILE), (b"d".to_vec(), kind::DIR)];
        let (b, n) = pack_dirents(&e, 16);
        assert_eq!((b.len(), n), (16, 1));
        assert_eq!(&b[8..11], b"abc");
        let (b, n) = pack_dirents(&e, 64);
        assert_eq!((b.len(), n), (32, 2));
        assert_eq!(pack_dirents(&e, 7).1, 0);
    }
}
