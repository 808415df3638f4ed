//! File descriptors: 0, 1 and 2 are the console (stdin from the host,
//! stdout buffered, stderr per line); 3 and up are files opened in `--dir`
//! directories (guest-rt `fs::File`, whose position the launcher keeps).
//! `dup` shares one open file between descriptors, as in POSIX.

use core::ffi::{c_char, c_int, c_void};

use guest_rt::fs::{File, Metadata, OpenOptions};
use guest_rt::io::{Read, Seek, SeekFrom, Write};
use rust_alloc::sync::Arc;
use rust_alloc::vec::Vec;
use spin::Mutex;

use crate::errno::{fail, fail_long, from_io};

/// An open file, shared by the descriptors `dup` made of it.
type Shared = Arc<Mutex<File>>;

/// Descriptors 3.. (index 0 is fd 3).
static FILES: Mutex<Vec<Option<Shared>>> = Mutex::new(Vec::new());

/// The most descriptors open at once (the launcher caps handles anyway).
const MAX_FDS: usize = 1024;
/// The first descriptor of a file.
const FIRST: c_int = 3;

/// The open file of `fd`, or EBADF.
fn file(fd: c_int) -> Result<Shared, c_int> {
    let i = usize::try_from(fd - FIRST).map_err(|_| libc::EBADF)?;
    FILES.lock().get(i).cloned().flatten().ok_or(libc::EBADF)
}

/// Give `f` the lowest free descriptor >= `min`.
fn install(f: Shared, min: c_int) -> c_int {
    let mut t = FILES.lock();
    let from = usize::try_from(min.max(FIRST) - FIRST).unwrap_or(0);
    let slot = (from..t.len()).find(|&i| t[i].is_none());
    let i = match slot {
        Some(i) => i,
        None if t.len().max(from) < MAX_FDS => {
            let len = t.len().max(from);
            t.resize(len, None);
            t.push(None);
            t.len() - 1
        }
        None => return fail(libc::EMFILE),
    };
    t[i] = Some(f);
    c_int::try_from(i).map_or(-1, |i| i + FIRST)
}

/// guest-rt's open options for C `flags`.
fn options(flags: c_int) -> OpenOptions {
    let mut o = OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_WRONLY => o.write(true),
        libc::O_RDWR => o.read(true).write(true),
        _ => o.read(true),
    };
    o.append(flags & libc::O_APPEND != 0)
        .truncate(flags & libc::O_TRUNC != 0);
    if flags & libc::O_CREAT != 0 {
        if flags & libc::O_EXCL != 0 {
            o.create_new(true);
        } else {
            o.create(true);
        }
    }
    o
}

/// Open `p` (beneath a `--dir` directory); the mode is the launcher's.
/// Directories cannot be opened as files (EISDIR from the launcher),
/// only with `O_DIRECTORY` (a directory descriptor, see [`crate::dir`]).
#[no_mangle]
pub unsafe extern "C" fn open(p: *const c_char, flags: c_int, _mode: libc::mode_t) -> c_int {
    // SAFETY: C's contract: `p` is a string.
    let path = match unsafe { crate::path::absolute(p) } {
        Ok(path) => path,
        Err(e) => return fail(e),
    };
    if flags & libc::O_DIRECTORY != 0 {
        return crate::dir::open_dir_fd(path);
    }
    match options(flags).open(&path) {
        Ok(f) => install(Arc::new(Mutex::new(f)), FIRST),
        Err(e) => fail(from_io(e)),
    }
}

/// The same as [`open`] (no 32-bit offsets to widen here).
#[no_mangle]
pub unsafe extern "C" fn open64(p: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: passed on.
    unsafe { open(p, flags, mode) }
}

/// Close `fd` (the console's descriptors stay usable).
#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    if (0..FIRST).contains(&fd) {
        return 0;
    }
    if crate::dir::is_dir_fd(fd) {
        return crate::dir::close_dir_fd(fd);
    }
    let Ok(i) = usize::try_from(fd - FIRST) else {
        return fail(libc::EBADF);
    };
    match FILES.lock().get_mut(i).and_then(Option::take) {
        Some(_) => 0,
        None => fail(libc::EBADF),
    }
}

/// The byte slice C passed.
///
/// # Safety
/// `buf` has `n` readable bytes (or `n` is 0).
unsafe fn bytes<'a>(buf: *const c_void, n: usize) -> &'a [u8] {
    if n == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), n) }
}

/// Read up to `n` bytes into `buf`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize {
    if n == 0 {
        return 0;
    }
    // SAFETY: C's contract: `buf` has `n` writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
    let r = match fd {
        0 => guest_rt::console::read_stdin(out).map_err(|e| from_io(e.into())),
        1 | 2 => Err(libc::EBADF),
        _ => file(fd).and_then(|f| f.lock().read(out).map_err(from_io)),
    };
    match r {
        Ok(n) => n.cast_signed(),
        Err(e) => fail_long(e),
    }
}

/// Write `n` bytes from `buf`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: usize) -> isize {
    // SAFETY: C's contract: `buf` has `n` readable bytes.
    let data = unsafe { bytes(buf, n) };
    let r = match fd {
        1 => {
            guest_rt::console::write_stdout(data);
            Ok(n)
        }
        2 => {
            guest_rt::console::write_stderr(data);
            Ok(n)
        }
        0 => Err(libc::EBADF),
        _ => file(fd).and_then(|f| f.lock().write(data).map_err(from_io)),
    };
    match r {
        Ok(n) => n.cast_signed(),
        Err(e) => fail_long(e),
    }
}

/// Write the `n` buffers of `iov` in order (stops at a short write).
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize {
    let Ok(count) = usize::try_from(n) else {
        return fail_long(libc::EINVAL);
    };
    let mut total = 0isize;
    for i in 0..count {
        // SAFETY: C's contract: `iov` has `n` entries.
        let v = unsafe { iov.add(i).read() };
        // SAFETY: each entry names `iov_len` readable bytes.
        let w = unsafe { write(fd, v.iov_base, v.iov_len) };
        if w < 0 {
            return if total > 0 { total } else { w };
        }
        total += w;
        if w.cast_unsigned() != v.iov_len {
            break;
        }
    }
    total
}

/// Read into the `n` buffers of `iov` in order.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize {
    let Ok(count) = usize::try_from(n) else {
        return fail_long(libc::EINVAL);
    };
    let mut total = 0isize;
    for i in 0..count {
        // SAFETY: C's contract: `iov` has `n` entries, each writable.
        let v = unsafe { iov.add(i).read() };
        // SAFETY: as above.
        let r = unsafe { read(fd, v.iov_base, v.iov_len) };
        if r < 0 {
            return if total > 0 { total } else { r };
        }
        total += r;
        if r.cast_unsigned() != v.iov_len {
            break;
        }
    }
    total
}

/// Move the position of `fd`; ESPIPE on the console.
#[no_mangle]
pub extern "C" fn lseek(fd: c_int, off: i64, whence: c_int) -> i64 {
    let pos = match whence {
        libc::SEEK_SET => match u64::try_from(off) {
            Ok(o) => SeekFrom::Start(o),
            Err(_) => return fail_long(libc::EINVAL) as i64,
        },
        libc::SEEK_CUR => SeekFrom::Current(off),
        libc::SEEK_END => SeekFrom::End(off),
        _ => return fail_long(libc::EINVAL) as i64,
    };
    if (0..FIRST).contains(&fd) {
        return fail_long(libc::ESPIPE) as i64;
    }
    match file(fd).and_then(|f| f.lock().seek(pos).map_err(from_io)) {
        Ok(p) => p.cast_signed(),
        Err(e) => fail_long(e) as i64,
    }
}

/// Fill C's `struct stat` from guest-rt metadata.
///
/// # Safety
/// `st` is writable.
pub unsafe fn fill_stat(st: *mut libc::stat, m: &Metadata) {
    let kind = if m.is_dir() {
        libc::S_IFDIR
    } else if m.file_type().is_symlink() {
        libc::S_IFLNK
    } else {
        libc::S_IFREG
    };
    // SAFETY: `struct stat` is plain integers: all-zero is a valid value.
    let mut s: libc::stat = unsafe { core::mem::zeroed() };
    s.st_mode = kind | (m.mode() & 0o7777);
    s.st_nlink = 1;
    s.st_size = m.len().cast_signed();
    s.st_blksize = 4096;
    s.st_blocks = m.len().div_ceil(512).cast_signed();
    let ns = m.modified_ns();
    s.st_mtime = (ns / 1_000_000_000).cast_signed();
    s.st_mtime_nsec = (ns % 1_000_000_000).cast_signed();
    s.st_atime = s.st_mtime;
    s.st_atime_nsec = s.st_mtime_nsec;
    s.st_ctime = s.st_mtime;
    s.st_ctime_nsec = s.st_mtime_nsec;
    // SAFETY: the caller's contract.
    unsafe { st.write(s) }
}

/// Metadata of `fd` (the console is a character device).
#[no_mangle]
pub unsafe extern "C" fn fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    if (0..FIRST).contains(&fd) {
        // SAFETY: plain integers, see fill_stat; `st` is writable.
        unsafe {
            let mut s: libc::stat = core::mem::zeroed();
            s.st_mode = libc::S_IFCHR | 0o620;
            s.st_nlink = 1;
            s.st_blksize = 4096;
            st.write(s);
        }
        return 0;
    }
    let meta = if crate::dir::is_dir_fd(fd) {
        crate::dir::dir_path(fd).and_then(|p| guest_rt::fs::metadata(&p).map_err(from_io))
    } else {
        file(fd).and_then(|f| f.lock().metadata().map_err(from_io))
    };
    match meta {
        Ok(m) => {
            // SAFETY: C's contract: `st` is writable.
            unsafe { fill_stat(st, &m) };
            0
        }
        Err(e) => fail(e),
    }
}

/// A second descriptor for the open file of `fd`.
#[no_mangle]
pub extern "C" fn dup(fd: c_int) -> c_int {
    match file(fd) {
        Ok(f) => install(f, FIRST),
        Err(e) => fail(e),
    }
}

/// F_GETFD/F_SETFD (close-on-exec means nothing without exec),
/// F_GETFL, F_SETFL (accepted), F_DUPFD(_CLOEXEC); else EINVAL.
#[no_mangle]
pub extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    let open = (0..FIRST).contains(&fd) || file(fd).is_ok();
    if !open {
        return fail(libc::EBADF);
    }
    match cmd {
        libc::F_GETFD => libc::FD_CLOEXEC,
        libc::F_SETFD | libc::F_SETFL => 0,
        libc::F_GETFL => libc::O_RDWR,
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => match file(fd) {
            Ok(f) => install(f, arg),
            Err(e) => fail(e),
        },
        _ => fail(libc::EINVAL),
    }
}

/// Every open descriptor is always ready for what it was asked; a closed
/// one reports POLLNVAL (std polls 0, 1 and 2 at start to see they exist).
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, _timeout: c_int) -> c_int {
    let mut ready = 0;
    for i in 0..n as usize {
        // SAFETY: C's contract: `fds` has `n` entries.
        let p = unsafe { &mut *fds.add(i) };
        let open = (0..FIRST).contains(&p.fd) || file(p.fd).is_ok();
        p.revents = if open {
            p.events & (libc::POLLIN | libc::POLLOUT)
        } else {
            libc::POLLNVAL
        };
        if p.revents != 0 {
            ready += 1;
        }
    }
    ready
}

/// Truncate or extend `fd`'s file.
#[no_mangle]
pub extern "C" fn ftruncate(fd: c_int, len: i64) -> c_int {
    let Ok(len) = u64::try_from(len) else {
        return fail(libc::EINVAL);
    };
    match file(fd).and_then(|f| f.lock().set_len(len).map_err(from_io)) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Flush `fd`'s file to stable storage (the console: nothing to do).
#[no_mangle]
pub extern "C" fn fsync(fd: c_int) -> c_int {
    if (0..FIRST).contains(&fd) {
        return 0;
    }
    match file(fd).and_then(|f| f.lock().sync_all().map_err(from_io)) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// As [`fsync`].
#[no_mangle]
pub extern "C" fn fdatasync(fd: c_int) -> c_int {
    fsync(fd)
}

/// Whether `fd` is a terminal: stdout when the launcher says so (it then
/// line-buffers it), nothing else.
#[no_mangle]
pub extern "C" fn isatty(fd: c_int) -> c_int {
    let flags = guest_rt::env::boot_info().console_flags;
    if fd == 1 && flags & vessel_abi::console::STDOUT_LINE_BUFFERED != 0 {
        1
    } else {
        fail(libc::ENOTTY).max(0)
    }
}
