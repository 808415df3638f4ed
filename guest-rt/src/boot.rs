//! From the entry stub to the app's main: check BootInfo, set up the heap.

use vessel_abi::{BootInfo, ConsoleBuffer, ABI_VERSION, BOOT_MAGIC};

use crate::{heap, process};

static mut BOOT: *const BootInfo = core::ptr::null();

extern "Rust" {
    /// Defined by [`crate::entry!`] in the app.
    fn __vessel_app_main() -> i32;
}

/// The launcher's BootInfo (valid after boot).
pub fn info() -> &'static BootInfo {
    // SAFETY: BOOT is written once in vessel_rt_start before any other code
    // runs and points at launcher-written memory that stays mapped.
    unsafe { &*BOOT }
}

/// Called by the arch entry stub with the BootInfo address, on every vCPU.
pub extern "C" fn vessel_rt_start(boot: *const BootInfo) -> ! {
    // Check the contract before the first hypercall: a launcher speaking
    // another ABI might not understand one. Without a usable doorbell there
    // is no way to report, so a mismatch stops with an exception the
    // launcher diagnoses (ud2 / udf).
    if boot.is_null() || !(boot as usize).is_multiple_of(core::mem::align_of::<BootInfo>()) {
        crate::process::trap();
    }
    // SAFETY: non-null and aligned; the launcher put a BootInfo there (the
    // magic check below catches anything else in mapped memory).
    let b = unsafe { &*boot };
    if b.magic != BOOT_MAGIC || b.abi_version != ABI_VERSION || b.vcpu_count == 0 {
        crate::process::trap();
    }
    // The console writes stdout there from the first print on.
    let stdout = b.stdout_buffer as usize;
    if stdout == 0 || !stdout.is_multiple_of(core::mem::align_of::<ConsoleBuffer>()) {
        crate::process::trap();
    }
    crate::arch::set_vcpu_table(b);
    if crate::arch::vcpu_id() >= b.vcpu_count {
        crate::process::trap();
    }
    if crate::arch::vcpu_id() != 0 {
        // Another vCPU: wait for vCPU 0 to finish booting, then serve
        // threads (it never reads BOOT before the release below).
        crate::thread::secondary_main(b)
    }
    // SAFETY: vCPU 0 at boot; the other vCPUs wait until `thread::online`
    // below publishes BOOT and the heap.
    unsafe { BOOT = boot };
    crate::arch::init(b);
    heap::init(b.heap_start, b.heap_size);
    crate::apf::init();
    crate::thread::online();
    // SAFETY: the symbol is defined by the entry! macro with this signature.
    let code = unsafe { __vessel_app_main() };
    process::exit(code)
}
