//! Directories: `opendir`/`readdir`/`closedir`, `dirfd`, `fdopendir`,
//! `open(O_DIRECTORY)` and `fstatat`, as std's `fs::read_dir`,
//! `DirEntry::metadata` and `remove_dir_all` call them, over guest-rt's
//! `fs::read_dir` (the launcher lists a `--dir` directory, `.` and `..`
//! left out, in batches).
//!
//! A directory descriptor is a number from [`DIR_FIRST`] up, apart from
//! file descriptors, that names the directory's absolute path: the
//! launcher needs no handle for it (each listing or `fstatat` names the
//! path again).

use core::ffi::{c_char, c_int};

use guest_rt::fs::ReadDir;
use rust_alloc::boxed::Box;
use rust_alloc::string::String;
use rust_alloc::vec::Vec;
use spin::Mutex;

use crate::errno::{fail, from_io, set_errno};

/// The first directory descriptor (file descriptors stay below 1024).
pub const DIR_FIRST: c_int = 1 << 20;
/// The most directory descriptors open at once.
const MAX_DIRS: usize = 1024;

/// The path of each open directory descriptor (index 0 is DIR_FIRST).
static DIRS: Mutex<Vec<Option<String>>> = Mutex::new(Vec::new());

/// A C `DIR`: the listing, the descriptor and the entry `readdir` returns.
pub struct Dir {
    fd: c_int,
    list: ReadDir,
    next_ino: u64,
    ent: libc::dirent,
}

/// Whether `fd` is a directory descriptor's number.
pub fn is_dir_fd(fd: c_int) -> bool {
    fd >= DIR_FIRST
}

/// The path of directory descriptor `fd`, or EBADF.
pub fn dir_path(fd: c_int) -> Result<String, c_int> {
    let i = usize::try_from(fd - DIR_FIRST).map_err(|_| libc::EBADF)?;
    DIRS.lock().get(i).cloned().flatten().ok_or(libc::EBADF)
}

/// A new directory descriptor for `path` (checked to be a directory).
pub fn open_dir_fd(path: String) -> c_int {
    match guest_rt::fs::metadata(&path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return fail(libc::ENOTDIR),
        Err(e) => return fail(from_io(e)),
    }
    let mut t = DIRS.lock();
    let i = match t.iter().position(Option::is_none) {
        Some(i) => i,
        None if t.len() < MAX_DIRS => {
            t.push(None);
            t.len() - 1
        }
        None => return fail(libc::EMFILE),
    };
    t[i] = Some(path);
    c_int::try_from(i).map_or(-1, |i| i + DIR_FIRST)
}

/// Release directory descriptor `fd`.
pub fn close_dir_fd(fd: c_int) -> c_int {
    let Ok(i) = usize::try_from(fd - DIR_FIRST) else {
        return fail(libc::EBADF);
    };
    match DIRS.lock().get_mut(i).and_then(Option::take) {
        Some(_) => 0,
        None => fail(libc::EBADF),
    }
}

/// A `DIR` listing the directory of descriptor `fd` (which it owns).
fn dir_of(fd: c_int) -> *mut Dir {
    let listing = dir_path(fd).and_then(|p| guest_rt::fs::read_dir(&p).map_err(from_io));
    match listing {
        Ok(list) => Box::into_raw(Box::new(Dir {
            fd,
            list,
            next_ino: 1,
            // SAFETY: `struct dirent` is integers and bytes: all-zero is valid.
            ent: unsafe { core::mem::zeroed() },
        })),
        Err(e) => {
            close_dir_fd(fd);
            set_errno(e);
            core::ptr::null_mut()
        }
    }
}

/// Open directory `p` for listing.
#[no_mangle]
pub unsafe extern "C" fn opendir(p: *const c_char) -> *mut Dir {
    // SAFETY: C's contract: `p` is a string.
    let path = match unsafe { crate::path::absolute(p) } {
        Ok(path) => path,
        Err(e) => {
            set_errno(e);
            return core::ptr::null_mut();
        }
    };
    match open_dir_fd(path) {
        -1 => core::ptr::null_mut(),
        fd => dir_of(fd),
    }
}

/// A `DIR` over directory descriptor `fd` (from `open(O_DIRECTORY)`).
#[no_mangle]
pub extern "C" fn fdopendir(fd: c_int) -> *mut Dir {
    if !is_dir_fd(fd) || dir_path(fd).is_err() {
        set_errno(if (0..DIR_FIRST).contains(&fd) {
            libc::ENOTDIR
        } else {
            libc::EBADF
        });
        return core::ptr::null_mut();
    }
    dir_of(fd)
}

/// The descriptor of `d`.
#[no_mangle]
pub unsafe extern "C" fn dirfd(d: *mut Dir) -> c_int {
    // SAFETY: C's contract: `d` came from opendir/fdopendir, not closed.
    unsafe { (*d).fd }
}

/// Close `d` and its descriptor.
#[no_mangle]
pub unsafe extern "C" fn closedir(d: *mut Dir) -> c_int {
    if d.is_null() {
        return fail(libc::EBADF);
    }
    // SAFETY: C's contract: `d` came from opendir/fdopendir, closed once.
    let d = unsafe { Box::from_raw(d) };
    close_dir_fd(d.fd)
}

/// The `d_type` of a guest-rt entry.
fn d_type(t: guest_rt::fs::FileType) -> u8 {
    if t.is_dir() {
        libc::DT_DIR
    } else if t.is_symlink() {
        libc::DT_LNK
    } else if t.is_file() {
        libc::DT_REG
    } else {
        libc::DT_UNKNOWN
    }
}

/// The next entry of `d`, or null at the end (errno unchanged) or on an
/// error (errno set). Names longer than `d_name` holds fail ENAMETOOLONG.
#[no_mangle]
pub unsafe extern "C" fn readdir(d: *mut Dir) -> *mut libc::dirent {
    // SAFETY: C's contract: `d` came from opendir/fdopendir, not closed.
    let d = unsafe { &mut *d };
    let e = match d.list.next() {
        None => return core::ptr::null_mut(),
        Some(Err(e)) => {
            set_errno(from_io(e));
            return core::ptr::null_mut();
        }
        Some(Ok(e)) => e,
    };
    let name = e.file_name().as_bytes();
    if name.len() >= d.ent.d_name.len() {
        set_errno(libc::ENAMETOOLONG);
        return core::ptr::null_mut();
    }
    d.ent.d_ino = d.next_ino;
    d.ent.d_off = d.next_ino.cast_signed();
    d.next_ino += 1;
    d.ent.d_reclen = u16::try_from(core::mem::size_of::<libc::dirent>()).unwrap_or(u16::MAX);
    d.ent.d_type = d_type(e.file_type());
    for (slot, &b) in d.ent.d_name.iter_mut().zip(name) {
        *slot = c_char::from_ne_bytes([b]);
    }
    d.ent.d_name[name.len()] = 0;
    &raw mut d.ent
}

/// The same as [`readdir`] (one `dirent` layout here).
#[no_mangle]
pub unsafe extern "C" fn readdir64(d: *mut Dir) -> *mut libc::dirent {
    // SAFETY: passed on.
    unsafe { readdir(d) }
}

/// The absolute path of `p` seen from directory descriptor `at`
/// (`AT_FDCWD`: from `/`, the working directory).
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub unsafe fn at_path(at: c_int, p: *const c_char) -> Result<String, c_int> {
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { crate::string::c_bytes(p) };
    let text = core::str::from_utf8(bytes).map_err(|_| libc::EILSEQ)?;
    if text.starts_with('/') || at == libc::AT_FDCWD {
        // SAFETY: the caller's contract.
        return unsafe { crate::path::absolute(p) };
    }
    if !is_dir_fd(at) {
        return Err(if at >= 0 { libc::ENOTDIR } else { libc::EBADF });
    }
    let mut full = dir_path(at)?;
    full.push('/');
    full.push_str(text);
    Ok(crate::path::normalise(&full))
}

/// Metadata of `p` seen from directory descriptor `at` (links followed,
/// as [`crate::path::lstat`] does).
#[no_mangle]
pub unsafe extern "C" fn fstatat(
    at: c_int,
    p: *const c_char,
    st: *mut libc::stat,
    _flags: c_int,
) -> c_int {
    // SAFETY: C's contract: `p` a string.
    let path = match unsafe { at_path(at, p) } {
        Ok(path) => path,
        Err(e) => return fail(e),
    };
    match guest_rt::fs::metadata(&path) {
        Ok(m) => {
            // SAFETY: C's contract: `st` is writable.
            unsafe { crate::fd::fill_stat(st, &m) };
            0
        }
        Err(e) => fail(from_io(e)),
    }
}

/// The same as [`fstatat`].
#[no_mangle]
pub unsafe extern "C" fn fstatat64(
    at: c_int,
    p: *const c_char,
    st: *mut libc::stat,
    flags: c_int,
) -> c_int {
    // SAFETY: passed on.
    unsafe { fstatat(at, p, st, flags) }
}
