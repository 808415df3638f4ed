//! Process exit codes of a Vessel launcher.
//!
//! An app's own exit code passes through unchanged unless it collides with
//! one of the codes below, which Vessel reserves for itself; a colliding app
//! code is reported on stderr and becomes [`APP_CODE_RESERVED`].

/// The app panicked (guest-rt's panic handler; Rust's own convention).
pub const PANIC: i32 = 101;
/// The guest ran longer than `--timeout`.
pub const TIMEOUT: i32 = 124;
/// The launcher could not start or serve the guest (bad flags, bad ELF, no
/// KVM, out of memory, host I/O failure).
pub const LAUNCHER_ERROR: i32 = 125;
/// The guest crashed: an unhandled CPU exception, a triple fault, a
/// malformed hypercall that can't be answered, or an internal KVM error.
pub const GUEST_FAULT: i32 = 126;
/// The app called abort with a message (SIGABRT's shell code).
pub const ABORT: i32 = 134;
/// The app exited 0 but some of its output could not be written (EX_IOERR).
pub const OUTPUT_LOST: i32 = 74;
/// The guest wrote more than `--max-output` bytes to stdout, stderr and
/// files together: the VM was ended (EX_CANTCREAT).
pub const OUTPUT_CAP: i32 = 73;
/// The launcher got SIGINT: the guest was stopped (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;
/// stdout was a pipe whose reader had gone (128 + SIGPIPE).
pub const BROKEN_PIPE: i32 = 141;
/// The launcher got SIGTERM: the guest was stopped (128 + SIGTERM).
pub const TERMINATED: i32 = 143;
/// A launcher thread made a system call outside its seccomp allow-list:
/// the process was ended (128 + SIGSYS), one line naming the call.
pub const SECCOMP: i32 = 159;
/// The launcher used its `--max-cpu` CPU seconds: the VM was ended
/// (128 + SIGXCPU).
pub const CPU_LIMIT: i32 = 152;
/// Every async task waited and nothing could wake one (no timer, page
/// fault, I/O or thread pending): guest-rt's executor ended the VM, its
/// report on stderr (EX_SOFTWARE).
pub const DEADLOCK: i32 = 70;
/// What an app exit code in the reserved set is turned into.
pub const APP_CODE_RESERVED: i32 = 1;

/// True if an app's exit code would be confused with a launcher outcome.
pub fn is_reserved(code: i32) -> bool {
    matches!(code, TIMEOUT | LAUNCHER_ERROR | GUEST_FAULT | ABORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_codes_are_distinct_and_panic_is_not_reserved() {
        let codes = [TIMEOUT, LAUNCHER_ERROR, GUEST_FAULT, ABORT];
        for (i, a) in codes.iter().enumerate() {
            assert!(is_reserved(*a));
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(!is_reserved(PANIC));
        assert!(!is_reserved(0));
        assert!(!is_reserved(APP_CODE_RESERVED));
    }
}
