//! The C view of what the launcher passed: `argv`/`environ` as
//! NUL-terminated strings built once at start from BootInfo, `getenv`,
//! `getauxval` and `sysconf`.

use core::ffi::{c_char, c_int, c_long, c_ulong};
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use rust_alloc::vec::Vec;

use crate::errno::set_errno;
use crate::string::c_bytes;

/// The environment, a null-terminated array of `KEY=VALUE` strings (what
/// std's `env::vars` reads).
#[no_mangle]
pub static mut environ: *mut *mut c_char = core::ptr::null_mut();

/// The program's `argv` (null-terminated), built by [`init`].
static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(core::ptr::null_mut());
/// How many arguments.
static ARGC: AtomicUsize = AtomicUsize::new(0);
/// AT_RANDOM's 16 bytes.
static RANDOM: [AtomicU8; 16] = [const { AtomicU8::new(0) }; 16];

/// A leaked, null-terminated array of NUL-terminated copies of `items`.
fn c_array<'a>(items: impl Iterator<Item = &'a str>) -> *mut *mut c_char {
    let mut v: Vec<*mut c_char> = Vec::new();
    for s in items {
        let mut b: Vec<u8> = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        v.push(b.leak().as_mut_ptr().cast());
    }
    v.push(core::ptr::null_mut());
    v.leak().as_mut_ptr()
}

/// Build argv and environ (once, on the main thread, before `main`).
pub fn init() {
    ARGC.store(guest_rt::env::args().len(), Ordering::SeqCst);
    ARGV.store(c_array(guest_rt::env::args()), Ordering::SeqCst);
    let b = guest_rt::env::boot_info();
    let pairs = (0..b.envc as usize).filter_map(|i| {
        // SAFETY: the launcher wrote `envc` GuestSlices at `envp` (checked
        // by guest-rt at boot), each `len` bytes of UTF-8, kept for the
        // VM's life.
        unsafe {
            let s = &*(b.envp as *const vessel_abi::GuestSlice).add(i);
            let bytes = core::slice::from_raw_parts(s.addr as *const u8, s.len as usize);
            core::str::from_utf8(bytes).ok()
        }
    });
    let env = c_array(pairs);
    // SAFETY: written once here, before `main` and any other thread.
    unsafe { environ = env };
    let mut bytes = [0u8; 16];
    let _ = guest_rt::random::fill(&mut bytes);
    for (r, b) in RANDOM.iter().zip(bytes) {
        r.store(b, Ordering::SeqCst);
    }
}

/// (argc, argv, envp) for `main`.
pub fn main_args() -> (c_int, *mut *mut c_char, *mut *mut c_char) {
    let argc = c_int::try_from(ARGC.load(Ordering::SeqCst)).unwrap_or(c_int::MAX);
    // SAFETY: environ was written by `init` before this.
    (argc, ARGV.load(Ordering::SeqCst), unsafe { environ })
}

/// The value of `name` in the environment, or null.
#[no_mangle]
pub unsafe extern "C" fn getenv(name: *const c_char) -> *mut c_char {
    if name.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: C's contract: `name` is a string.
    let key = unsafe { c_bytes(name) };
    // SAFETY: `environ` is null or a null-terminated array of strings.
    let mut at = unsafe { environ };
    while !at.is_null() {
        // SAFETY: as above: `at` is inside that array.
        let entry = unsafe { at.read() };
        if entry.is_null() {
            break;
        }
        // SAFETY: every entry is a NUL-terminated string.
        let kv = unsafe { c_bytes(entry) };
        if kv.len() > key.len() && kv.starts_with(key) && kv[key.len()] == b'=' {
            // SAFETY: key.len() + 1 <= kv.len(): inside the string.
            return unsafe { entry.add(key.len() + 1) };
        }
        // SAFETY: not yet at the terminating null.
        at = unsafe { at.add(1) };
    }
    core::ptr::null_mut()
}

/// AT_PAGESZ, AT_HWCAP, AT_HWCAP2 (what this VM's CPU offers, so
/// `is_*_feature_detected!` tells the truth), AT_RANDOM, AT_SECURE (0);
/// else 0 with ENOENT.
#[no_mangle]
pub extern "C" fn getauxval(kind: c_ulong) -> c_ulong {
    let features = guest_rt::env::features();
    match kind {
        libc::AT_PAGESZ => crate::alloc::PAGE as c_ulong,
        libc::AT_HWCAP => crate::arch::hwcap(),
        libc::AT_HWCAP2 => crate::arch::hwcap2(features),
        libc::AT_RANDOM => RANDOM.as_ptr() as c_ulong,
        libc::AT_SECURE => 0,
        _ => {
            set_errno(libc::ENOENT);
            0
        }
    }
}

/// _SC_PAGESIZE, _SC_NPROCESSORS_ONLN/_CONF (the vCPUs), _SC_CLK_TCK;
/// else -1 with EINVAL.
#[no_mangle]
pub extern "C" fn sysconf(name: c_int) -> c_long {
    match name {
        libc::_SC_PAGESIZE => c_long::try_from(crate::alloc::PAGE).unwrap_or(c_long::MAX),
        libc::_SC_NPROCESSORS_ONLN | libc::_SC_NPROCESSORS_CONF => {
            c_long::from(guest_rt::env::vcpu_count())
        }
        libc::_SC_CLK_TCK => 100,
        _ => {
            set_errno(libc::EINVAL);
            -1
        }
    }
}
