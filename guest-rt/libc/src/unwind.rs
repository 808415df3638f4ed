//! The unwinder std names: std programs are built with `panic = "abort"`
//! (see guest-rt/README.md), so nothing unwinds. `_Unwind_Backtrace`
//! reports an empty stack (a backtrace prints no frames) and
//! `dl_iterate_phdr` no modules; the functions that only run inside an
//! unwind stop the VM with a message, as reaching them is a bug.

use core::ffi::{c_int, c_void};

/// `_URC_END_OF_STACK`.
const END_OF_STACK: c_int = 5;

/// Walk the stack: nothing to walk.
#[no_mangle]
pub extern "C" fn _Unwind_Backtrace(_trace: *mut c_void, _arg: *mut c_void) -> c_int {
    END_OF_STACK
}

/// No loaded modules to list (the image has no program headers mapped).
#[no_mangle]
pub extern "C" fn dl_iterate_phdr(_cb: *mut c_void, _data: *mut c_void) -> c_int {
    0
}

/// Stop: an unwinder entry point ran, which `panic = "abort"` rules out.
fn unreachable(name: &str) -> ! {
    guest_rt::console::write_stderr(name.as_bytes());
    guest_rt::process::abort(
        ": unwinding is not supported (std programs run with panic = \"abort\")",
    )
}

macro_rules! stop {
    ($($name:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: only inside an unwind, which never happens.")]
            #[no_mangle]
            pub extern "C" fn $name() -> ! {
                unreachable(stringify!($name))
            }
        )*
    };
}

stop!(
    _Unwind_Resume,
    _Unwind_RaiseException,
    _Unwind_DeleteException,
    _Unwind_GetIP,
    _Unwind_GetIPInfo,
    _Unwind_GetCFA,
    _Unwind_GetLanguageSpecificData,
    _Unwind_GetRegionStart,
    _Unwind_GetTextRelBase,
    _Unwind_GetDataRelBase,
    _Unwind_SetGR,
    _Unwind_SetIP,
    _Unwind_FindEnclosingFunction,
);
