//! The app's arguments and environment, as the launcher wrote them into BootInfo.

use vessel_abi::GuestSlice;

fn strs(addr: u64, count: u64) -> &'static [GuestSlice] {
    if count == 0 {
        return &[];
    }
    // SAFETY: the launcher wrote `count` GuestSlice entries at `addr` in memory
    // that stays mapped and unchanged for the VM's life.
    unsafe { core::slice::from_raw_parts(addr as *const GuestSlice, count as usize) }
}

fn as_str(s: &GuestSlice) -> &'static str {
    // SAFETY: the launcher wrote `len` bytes of UTF-8 at `addr` (it converts
    // host strings lossily) in memory that stays mapped and unchanged.
    let bytes = unsafe { core::slice::from_raw_parts(s.addr as *const u8, s.len as usize) };
    core::str::from_utf8(bytes).unwrap_or("")
}

/// The arguments; the first is the program name.
pub fn args() -> impl ExactSizeIterator<Item = &'static str> {
    let b = crate::boot::info();
    strs(b.argv, b.argc).iter().map(as_str)
}

/// All `KEY=VALUE` pairs the launcher passed (`--env`).
pub fn vars() -> impl Iterator<Item = (&'static str, &'static str)> {
    let b = crate::boot::info();
    strs(b.envp, b.envc)
        .iter()
        .map(as_str)
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
}

/// The value of one environment variable.
pub fn var(key: &str) -> Option<&'static str> {
    vars().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The lazy region registered under `name` (`--lazy NAME=FILE`), as a byte slice.
pub fn lazy_region(name: &str) -> Option<&'static [u8]> {
    let b = crate::boot::info();
    if b.lazy_count == 0 {
        return None;
    }
    // SAFETY: the launcher wrote lazy_count LazyRegion entries at `lazy`.
    let regions = unsafe {
        core::slice::from_raw_parts(
            b.lazy as *const vessel_abi::LazyRegion,
            b.lazy_count as usize,
        )
    };
    let r = regions.iter().find(|r| as_str(&r.name) == name)?;
    // SAFETY: the launcher mapped [addr, addr+len) read-only for the guest's
    // life; pages are filled on first touch.
    Some(unsafe { core::slice::from_raw_parts(r.addr as *const u8, r.len as usize) })
}

/// Features the launcher offers (`vessel_abi::features`).
pub fn features() -> u64 {
    crate::boot::info().features
}

/// Number of vCPUs in this VM.
pub fn vcpu_count() -> u32 {
    crate::boot::info().vcpu_count
}

/// The launcher's BootInfo as it arrived (for runtimes built on guest-rt,
/// such as the C library shim of `std` programs, `guest-rt/libc`).
pub fn boot_info() -> &'static vessel_abi::BootInfo {
    crate::boot::info()
}
