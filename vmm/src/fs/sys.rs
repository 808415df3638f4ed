//! The few system calls the file server needs that std does not offer on a
//! directory descriptor, each behind a small safe function.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use vessel_abi::Errno;

/// `openat2`'s `resolve` for every guest lookup: stay beneath the
/// directory (no `..` out, no absolute symlinks, no symlink pointing out)
/// and never follow `/proc`-style magic links.
pub const RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// What the guest sees of a host error.
pub fn errno(e: &io::Error) -> Errno {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Errno::NotFound,
        Some(libc::EXDEV | libc::ELOOP | libc::EACCES | libc::EPERM | libc::EROFS) => {
            Errno::PermissionDenied
        }
        Some(libc::ENXIO | libc::ENODEV | libc::ETXTBSY) => Errno::PermissionDenied,
        Some(libc::EEXIST) => Errno::AlreadyExists,
        Some(libc::ENOTDIR) => Errno::NotADirectory,
        Some(libc::EISDIR) => Errno::IsADirectory,
        Some(libc::ENOTEMPTY) => Errno::NotEmpty,
        Some(libc::ENAMETOOLONG) => Errno::NameTooLong,
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Errno::NoSpace,
        Some(libc::EINVAL) => Errno::Inval,
        Some(libc::EBADF) => Errno::BadHandle,
        Some(libc::EMFILE | libc::ENFILE) => Errno::TooManyHandles,
        _ => Errno::Io,
    }
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dir, path, flags | O_CLOEXEC, mode, RESOLVE)`.
pub fn openat2(dir: RawFd, path: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC).cast_unsigned().into(),
        mode: u64::from(mode),
        resolve: RESOLVE,
    };
    loop {
        // SAFETY: `path` is NUL-terminated, `how` is a valid open_how of the
        // size passed; the kernel reads both and returns a new descriptor.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &raw const how,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            let fd = RawFd::try_from(r).map_err(|_| io::Error::from(io::ErrorKind::Other))?;
            // SAFETY: the kernel just returned this descriptor; nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What `fstat` says of a descriptor.
#[derive(Clone, Copy, Debug)]
pub struct FileStat(pub libc::stat);

impl FileStat {
    /// `st_mode & S_IFMT`.
    pub fn file_type(&self) -> u32 {
        self.0.st_mode & libc::S_IFMT
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    /// Same file (device and inode).
    pub fn same(&self, o: &FileStat) -> bool {
        self.0.st_dev == o.0.st_dev && self.0.st_ino == o.0.st_ino
    }
}

/// `fstat(fd)` (works on `O_PATH` descriptors too).
pub fn fstat(fd: RawFd) -> io::Result<FileStat> {
    // SAFETY: all-zero is a valid `stat`; fstat only writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    check(unsafe { libc::fstat(fd, &raw mut st) })?;
    Ok(FileStat(st))
}

/// `mkdirat(dir, name, 0777)` (less the umask).
pub fn mkdirat(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), 0o777) }).map(drop)
}

/// `unlinkat`; `dir_too` removes an empty directory instead of a file.
pub fn unlinkat(dir: RawFd, name: &CStr, dir_too: bool) -> io::Result<()> {
    let flags = if dir_too { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

/// `renameat(from_dir, from, to_dir, to)`.
pub fn renameat(from_dir: RawFd, from: &CStr, to_dir: RawFd, to: &CStr) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    check(unsafe { libc::renameat(from_dir, from.as_ptr(), to_dir, to.as_ptr()) }).map(drop)
}

/// The names in directory `fd` (without `.` and `..`) and their `d_type`.
pub fn list_dir(fd: RawFd) -> io::Result<Vec<(Vec<u8>, u8)>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(out);
        }
        parse_dirents(&buf[..n.unsigned_abs() as usize], &mut out);
    }
}

/// Parse `linux_dirent64` records (d_ino u64, d_off i64, d_reclen u16,
/// d_type u8, name NUL-terminated), stopping at anything malformed.
fn parse_dirents(mut b: &[u8], out: &mut Vec<(Vec<u8>, u8)>) {
    while b.len() >= 19 {
        let reclen = usize::from(u16::from_ne_bytes([b[16], b[17]]));
        if reclen < 19 || reclen > b.len() {
            return;
        }
        let name = &b[19..reclen];
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            out.push((name.to_vec(), b[18]));
        }
        b = &b[reclen..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirent_parser_stops_at_garbage() {
        let mut rec = vec![0u8; 24];
        rec[16] = 24;
        rec[18] = libc::DT_REG;
        rec[19..22].copy_from_slice(b"abc");
        let mut bad = rec.clone();
        bad[16] = 200;
        let mut out = Vec::new();
        parse_dirents(&[rec.clone(), bad].concat(), &mut out);
        assert_eq!(out, vec![(b"abc".to_vec(), libc::DT_REG)]);
    }

    #[test]
    fn errors_map_to_guest_kinds() {
        let e = |n| errno(&io::Error::from_raw_os_error(n));
        assert_eq!(e(libc::EXDEV), Errno::PermissionDenied);
        assert_eq!(e(libc::ELOOP), Errno::PermissionDenied);
        assert_eq!(e(libc::ENOENT), Errno::NotFound);
        assert_eq!(e(libc::EEXIST), Errno::AlreadyExists);
        assert_eq!(e(libc::EIO), Errno::Io);
    }
}
