//! Ending the app: exit with a code, or abort with a message.

use vessel_abi::Call;

use crate::hypercall::{call, slice};

/// End the VM; `code` becomes the launcher's exit code. Flushes the console.
pub fn exit(code: i32) -> ! {
    crate::console::flush_all();
    let _ = call(Call::Exit { code });
    trap()
}

/// End the VM with a message on the host's stderr (exit code 134).
pub fn abort(msg: &str) -> ! {
    crate::console::flush_all();
    let _ = call(Call::Abort {
        msg: slice(msg.as_bytes()),
    });
    trap()
}

/// Stop with an invalid-opcode exception, which the launcher reports.
pub fn trap() -> ! {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: ud2 raises #UD; the launcher reports it and ends the VM.
    unsafe {
        core::arch::asm!("ud2", options(noreturn))
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: udf raises an undefined-instruction exception, reported likewise.
    unsafe {
        core::arch::asm!("udf #0", options(noreturn))
    }
}
