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
    if is_alloc_failure(info) {
        let _ = crate::heap::failure_report(&mut err);
    }
    crate::process::exit(vessel_abi::exit::PANIC)
}

/// Whether the panic is alloc's `memory allocation of N bytes failed`
/// (then the heap's state follows the message).
fn is_alloc_failure(info: &PanicInfo) -> bool {
    /// Checks that what is written starts with `PREFIX`.
    struct Prefix(usize, bool);
    const PREFIX: &[u8] = b"memory allocation of ";
    impl core::fmt::Write for Prefix {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if self.0 == PREFIX.len() {
                    return Err(core::fmt::Error);
                }
                self.1 &= PREFIX[self.0] == b;
                self.0 += 1;
            }
            Ok(())
        }
    }
    let mut p = Prefix(0, true);
    let _ = core::fmt::write(&mut p, format_args!("{}", info.message()));
    p.0 == PREFIX.len() && p.1
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
