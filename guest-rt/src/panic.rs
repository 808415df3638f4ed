//! Panics print message and location on stderr and exit with code 101.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    crate::console::flush_all();
    let mut err = crate::console::Stderr;
    let _ = core::fmt::Write::write_fmt(&mut err, format_args!("panicked at "));
    if let Some(loc) = info.location() {
        let _ = core::fmt::Write::write_fmt(
            &mut err,
            format_args!("{}:{}:{}", loc.file(), loc.line(), loc.column()),
        );
    }
    let _ = core::fmt::Write::write_fmt(&mut err, format_args!(":\n{}\n", info.message()));
    crate::process::exit(vessel_abi::exit::PANIC)
}

// Unwinding entry points, which guests never run: apps abort on panic, but
// the prebuilt `core` and `alloc` of the x86_64 guest target (a Linux
// target, built to unwind) carry cleanup paths and unwind tables that name
// them, so the link needs the symbols. Reaching either would be a bug:
// both stop the guest.

/// The unwinder's personality routine (named by the unwind tables).
#[no_mangle]
extern "C" fn rust_eh_personality() -> ! {
    crate::arch::trap()
}

/// Resume unwinding after a cleanup (called by landing pads).
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    crate::arch::trap()
}
