//! The SIGSYS handler: a trapped system call ends the process with one
//! line naming the call, the thread and its role.
//!
//! The handler only reads the signal's information and a thread-local
//! byte, formats into a stack buffer, and makes two calls every list
//! allows (`write`, `exit_group`): it is async-signal-safe.

use std::io::Write as _;

/// Where the kernel puts the trapped call's number in a SIGSYS siginfo:
/// after `si_signo`, `si_errno`, `si_code` and padding (16 bytes), then
/// `_sigsys._call_addr` (8): `_sigsys._syscall` (linux/siginfo.h, the same
/// on x86_64 and aarch64).
const SI_SYSCALL_OFFSET: usize = 24;

/// `si_code` of a seccomp trap (SYS_SECCOMP).
const SYS_SECCOMP: i32 = 1;

/// Install the handler for SIGSYS (process-wide).
pub(super) fn install_handler() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the fields set below make it a
    // SA_SIGINFO handler with an empty mask.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigsys as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: sa is fully initialized; the old action is not asked for.
    if unsafe { libc::sigaction(libc::SIGSYS, &raw const sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to a SA_SIGINFO handler;
    // for SIGSYS with si_code SYS_SECCOMP the _sigsys member is the one
    // filled, and SI_SYSCALL_OFFSET is inside the 128-byte siginfo.
    let (code, nr) = unsafe {
        let base = info.cast::<u8>();
        (
            (*info).si_code,
            base.add(SI_SYSCALL_OFFSET).cast::<i32>().read_unaligned(),
        )
    };
    let mut buf = [0u8; 400];
    let len = {
        let mut w = &mut buf[..];
        let _ = line(&mut w, code, i64::from(nr));
        400 - w.len()
    };
    // SAFETY: buf[..len] is initialized; write and exit_group are in every
    // role's list.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::_exit(vessel_abi::exit::SECCOMP);
    }
}

/// The one line: which call, on which thread (its role), what to do.
fn line(w: &mut &mut [u8], code: i32, nr: i64) -> std::io::Result<()> {
    if code != SYS_SECCOMP {
        return writeln!(w, "vessel: SIGSYS (not from seccomp); ending (exit 159)");
    }
    let role = super::current().map_or("unfiltered", super::Role::name);
    write!(
        w,
        "vessel: seccomp: the {role} thread made the forbidden system call "
    )?;
    match super::name(nr) {
        Some(n) => write!(w, "`{n}` ({nr})")?,
        None => write!(w, "number {nr}")?,
    }
    writeln!(
        w,
        "; the launcher ends (exit 159). If it needs the call, add it to the \
         {role} list in vmm/src/seccomp/lists.rs; --no-seccomp only to debug"
    )
}

#[cfg(test)]
pub(super) fn format_line(code: i32, nr: i64) -> String {
    let mut buf = [0u8; 400];
    let mut w = &mut buf[..];
    let _ = line(&mut w, code, nr);
    let n = 400 - w.len();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
