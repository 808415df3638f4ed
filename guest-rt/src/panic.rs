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
