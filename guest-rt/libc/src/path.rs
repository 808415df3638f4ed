//! Paths as C passes them: NUL-terminated bytes, made absolute (the
//! working directory is always `/`) and normalised before they reach
//! guest-rt's `fs`, which wants absolute UTF-8 paths beneath a `--dir`.
//! Also the path calls: `stat`, `unlink`, `mkdir`, `rmdir`, `rename`,
//! `realpath`, `readlink`, `getcwd`, `chdir`.

use core::ffi::{c_char, c_int};

use rust_alloc::string::String;
use rust_alloc::vec::Vec;

use crate::errno::{fail, from_io, set_errno};
use crate::string::c_bytes;

/// The absolute, normalised form of C path `p` (`.` and `..` resolved
/// lexically, `..` stopping at `/`), or the errno to fail with.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub unsafe fn absolute(p: *const c_char) -> Result<String, c_int> {
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { c_bytes(p) };
    if bytes.is_empty() {
        return Err(libc::ENOENT);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| libc::EILSEQ)?;
    Ok(normalise(text))
}

/// `text` made absolute from `/` and normalised.
pub fn normalise(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in text.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    out
}

/// Run a path call: 0, or -1 with errno.
unsafe fn path_op(p: *const c_char, f: impl FnOnce(&str) -> guest_rt::io::Result<()>) -> c_int {
    // SAFETY: passed on from the C caller.
    match unsafe { absolute(p) } {
        Ok(path) => match f(&path) {
            Ok(()) => 0,
            Err(e) => fail(from_io(e)),
        },
        Err(e) => fail(e),
    }
}

/// Metadata of `p` into `st` (symlinks beneath a `--dir` are followed).
#[no_mangle]
pub unsafe extern "C" fn stat(p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: C's contract: `p` a string, `st` writable.
    unsafe {
        path_op(p, |path| {
            let m = guest_rt::fs::metadata(path)?;
            crate::fd::fill_stat(st, &m);
            Ok(())
        })
    }
}

/// As [`stat`] (links are followed: the launcher resolves beneath the
/// directory and reports what the link names).
#[no_mangle]
pub unsafe extern "C" fn lstat(p: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: passed on.
    unsafe { stat(p, st) }
}

/// Remove the file `p`.
#[no_mangle]
pub unsafe extern "C" fn unlink(p: *const c_char) -> c_int {
    // SAFETY: passed on.
    unsafe { path_op(p, |q| guest_rt::fs::remove_file(q)) }
}

/// Remove the empty directory `p`.
#[no_mangle]
pub unsafe extern "C" fn rmdir(p: *const c_char) -> c_int {
    // SAFETY: passed on.
    unsafe { path_op(p, |q| guest_rt::fs::remove_dir(q)) }
}

/// Make the directory `p` (the mode is the launcher's choice).
#[no_mangle]
pub unsafe extern "C" fn mkdir(p: *const c_char, _mode: libc::mode_t) -> c_int {
    // SAFETY: passed on.
    unsafe { path_op(p, |q| guest_rt::fs::create_dir(q)) }
}

/// Rename `from` to `to`.
#[no_mangle]
pub unsafe extern "C" fn rename(from: *const c_char, to: *const c_char) -> c_int {
    // SAFETY: passed on.
    let to = match unsafe { absolute(to) } {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    // SAFETY: passed on.
    unsafe { path_op(from, |f| guest_rt::fs::rename(f, &to)) }
}

/// The normalised absolute form of `p`, which must exist, into
/// `resolved` (PATH_MAX bytes) or, when that is null, a malloc'd copy.
#[no_mangle]
pub unsafe extern "C" fn realpath(p: *const c_char, resolved: *mut c_char) -> *mut c_char {
    // SAFETY: passed on.
    let path = match unsafe { absolute(p) } {
        Ok(path) => path,
        Err(e) => {
            set_errno(e);
            return core::ptr::null_mut();
        }
    };
    if let Err(e) = guest_rt::fs::metadata(&path) {
        set_errno(from_io(e));
        return core::ptr::null_mut();
    }
    let cap = if resolved.is_null() {
        path.len() + 1
    } else {
        libc::PATH_MAX as usize
    };
    if path.len() + 1 > cap {
        set_errno(libc::ENAMETOOLONG);
        return core::ptr::null_mut();
    }
    let out = if resolved.is_null() {
        crate::alloc::malloc(cap).cast::<c_char>()
    } else {
        resolved
    };
    if out.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `out` has `cap` >= len + 1 writable bytes.
    unsafe { copy_c(&path, out) };
    out
}

/// Copy `s` and a NUL to `out`.
///
/// # Safety
/// `out` has `s.len() + 1` writable bytes.
pub unsafe fn copy_c(s: &str, out: *mut c_char) {
    // SAFETY: the caller's contract.
    unsafe {
        core::ptr::copy_nonoverlapping(s.as_ptr(), out.cast::<u8>(), s.len());
        out.add(s.len()).write(0);
    }
}

/// Symbolic links are not reported by the launcher: EINVAL ("not a
/// link") for a path that exists, ENOENT otherwise (so
/// `std::env::current_exe`, which reads /proc/self/exe, fails cleanly).
#[no_mangle]
pub unsafe extern "C" fn readlink(p: *const c_char, _buf: *mut c_char, _len: usize) -> isize {
    // SAFETY: passed on.
    let e = match unsafe { absolute(p) } {
        Ok(path) if guest_rt::fs::metadata(&path).is_ok() => libc::EINVAL,
        Ok(_) => libc::ENOENT,
        Err(e) => e,
    };
    crate::errno::fail_long(e)
}

/// The working directory, always `/`.
#[no_mangle]
pub unsafe extern "C" fn getcwd(buf: *mut c_char, size: usize) -> *mut c_char {
    if buf.is_null() || size < 2 {
        set_errno(if buf.is_null() {
            libc::EINVAL
        } else {
            libc::ERANGE
        });
        return core::ptr::null_mut();
    }
    // SAFETY: C's contract: `buf` has `size` >= 2 writable bytes.
    unsafe { copy_c("/", buf) };
    buf
}

/// Changing the working directory is not offered (relative paths are
/// from `/`): ENOSYS.
#[no_mangle]
pub extern "C" fn chdir(_p: *const c_char) -> c_int {
    fail(libc::ENOSYS)
}
