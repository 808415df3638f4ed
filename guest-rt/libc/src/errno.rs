//! `errno`, per thread (in the thread's TLS control block, see
//! [`crate::tls`]), and `strerror_r`.

use core::ffi::{c_char, c_int};
use core::sync::atomic::AtomicI32;

use vessel_abi::MAX_VCPUS;

/// errno of code that runs before a thread pointer is set (an idle vCPU's
/// runtime code): one per vCPU.
static EARLY: [AtomicI32; MAX_VCPUS as usize] = [const { AtomicI32::new(0) }; MAX_VCPUS as usize];

/// Where this thread's errno lives.
#[no_mangle]
pub extern "C" fn __errno_location() -> *mut c_int {
    match crate::tls::current() {
        Some(tcb) => tcb.errno.as_ptr(),
        None => EARLY[guest_rt::thread::current_vcpu() as usize % EARLY.len()].as_ptr(),
    }
}

/// Set this thread's errno.
pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location points at this thread's live errno word.
    unsafe { __errno_location().write(e) }
}

/// `-1` with errno = `e`: the usual C failure.
pub fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}

/// `fail` for functions returning `ssize_t` / `off_t`.
pub fn fail_long(e: c_int) -> isize {
    set_errno(e);
    -1
}

/// errno of a guest-rt I/O error: the value a C caller expects.
pub fn from_io(e: guest_rt::io::Error) -> c_int {
    use guest_rt::io::ErrorKind as K;
    use vessel_abi::Errno as E;
    if let Some(n) = e.errno() {
        return match n {
            E::NotFound => libc::ENOENT,
            E::PermissionDenied => libc::EACCES,
            E::AlreadyExists => libc::EEXIST,
            E::Inval => libc::EINVAL,
            E::Fault => libc::EFAULT,
            E::NotADirectory => libc::ENOTDIR,
            E::IsADirectory => libc::EISDIR,
            E::NotEmpty => libc::ENOTEMPTY,
            E::TooManyHandles => libc::EMFILE,
            E::BadHandle | E::BadFd => libc::EBADF,
            E::Busy => libc::EBUSY,
            E::NameTooLong => libc::ENAMETOOLONG,
            E::OutputLimit => libc::EFBIG,
            E::NoSpace => libc::ENOSPC,
            E::NotSupported => libc::ENOSYS,
            E::Io => libc::EIO,
        };
    }
    match e.kind() {
        K::NotFound => libc::ENOENT,
        K::PermissionDenied => libc::EACCES,
        K::InvalidInput | K::InvalidFilename => libc::EINVAL,
        K::Unsupported => libc::ENOSYS,
        _ => libc::EIO,
    }
}

/// What `strerror` says for `e`.
fn message(e: c_int) -> &'static str {
    match e {
        libc::EPERM => "Operation not permitted",
        libc::ENOENT => "No such file or directory",
        libc::EIO => "I/O error",
        libc::EBADF => "Bad file descriptor",
        libc::EAGAIN => "Resource temporarily unavailable",
        libc::ENOMEM => "Out of memory",
        libc::EACCES => "Permission denied",
        libc::EFAULT => "Bad address",
        libc::EBUSY => "Resource busy",
        libc::EEXIST => "File exists",
        libc::ENODEV => "No such device",
        libc::ENOTDIR => "Not a directory",
        libc::EISDIR => "Is a directory",
        libc::EINVAL => "Invalid argument",
        libc::EMFILE => "No file descriptors available",
        libc::EFBIG => "File too large",
        libc::ENOSPC => "No space left on device",
        libc::ESPIPE => "Invalid seek",
        libc::ERANGE => "Result not representable",
        libc::ENAMETOOLONG => "Filename too long",
        libc::ENOSYS => "Function not implemented",
        libc::ENOTEMPTY => "Directory not empty",
        libc::EOPNOTSUPP => "Not supported",
        libc::EAFNOSUPPORT => "Address family not supported by protocol",
        libc::ETIMEDOUT => "Operation timed out",
        _ => "Unknown error",
    }
}

/// Write the message for `e` into `buf` (NUL-terminated, cut to fit):
/// the XSI `strerror_r` std calls. ERANGE when `buf` is too small.
#[no_mangle]
pub unsafe extern "C" fn __xpg_strerror_r(e: c_int, buf: *mut c_char, len: usize) -> c_int {
    let msg = message(e).as_bytes();
    if len == 0 {
        return libc::ERANGE;
    }
    let n = msg.len().min(len - 1);
    // SAFETY: C's contract: `buf` has `len` writable bytes; n + 1 <= len.
    unsafe {
        core::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
    if n < msg.len() {
        libc::ERANGE
    } else {
        0
    }
}

/// The same, by its POSIX name.
#[no_mangle]
pub unsafe extern "C" fn strerror_r(e: c_int, buf: *mut c_char, len: usize) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { __xpg_strerror_r(e, buf, len) }
}
