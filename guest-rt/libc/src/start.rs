//! From guest-rt's boot to the program's C `main`: the guest header, the
//! main thread's TLS, argv/environ, `.init_array`, then
//! `main(argc, argv, envp)` (which rustc generates for a std program: it
//! runs std's start-up and the Rust `main`). Its return value is the VM's
//! exit code (guest-rt exits with it, buffered stdout riding along).

use core::ffi::{c_char, c_int};

guest_rt::__vessel_header!(0u64, 0u64);

extern "C" {
    /// The program's C entry (rustc's, for a Rust binary).
    fn main(argc: c_int, argv: *mut *mut c_char, envp: *mut *mut c_char) -> c_int;
    // Bounds of `.init_array`, from guest-rt's linker script.
    static __vessel_init_array_start: InitFn;
    static __vessel_init_array_end: InitFn;
}

/// An `.init_array` entry (called as glibc does, with main's arguments).
type InitFn = extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char);

/// Run every `.init_array` function in order.
fn run_init_array(argc: c_int, argv: *mut *mut c_char, envp: *mut *mut c_char) {
    let mut at = &raw const __vessel_init_array_start;
    let end = &raw const __vessel_init_array_end;
    while at < end {
        // SAFETY: [start, end) is the linked array of function pointers.
        let f = unsafe { at.read() };
        f(argc, argv, envp);
        // SAFETY: still inside or at the end of the array.
        at = unsafe { at.add(1) };
    }
}

/// guest-rt calls this on vCPU 0 once the runtime is up.
#[no_mangle]
extern "Rust" fn __vessel_app_main() -> i32 {
    // The header lives in this object file's crate: naming it keeps the
    // linker from leaving it out.
    core::hint::black_box(&__VESSEL_HEADER);
    crate::tls::require();
    crate::pthread::init_main();
    crate::env::init();
    let (argc, argv, envp) = crate::env::main_args();
    run_init_array(argc, argv, envp);
    // SAFETY: rustc's `main` for the program, with argv/envp arrays that
    // live for the VM's life.
    unsafe { main(argc, argv, envp) }
}
