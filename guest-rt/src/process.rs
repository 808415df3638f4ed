//! Ending the app: exit with a code, or abort with a message.

use vessel_abi::Call;

use crate::hypercall::{call, slice};

/// End the VM; `code` becomes the launcher's exit code. Buffered stdout
/// travels with the exit hypercall.
pub fn exit(code: i32) -> ! {
    crate::console::exit_with_stdout(code)
}

/// End the VM with a message on the host's stderr (exit code 134).
pub fn abort(msg: &str) -> ! {
    crate::console::flush_all();
    let _ = call(Call::Abort {
        msg: slice(msg.as_bytes()),
    });
    trap()
}

/// Stop with an undefined-instruction exception, which the launcher reports.
pub fn trap() -> ! {
    crate::arch::trap()
}
