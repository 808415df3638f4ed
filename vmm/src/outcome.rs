//! How a guest ended, and what the launcher's process says and exits with.

use std::time::Duration;

use vessel_abi::exit::{self, OUTPUT_LOST};

/// What kind of crash ended the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A CPU exception the guest's ring-0 / vector stub reported.
    Exception,
    /// A store to the fault doorbell from unprivileged code: a forged report.
    ForgedReport,
    /// A malformed hypercall: bad frame address, unreadable or unwritable frame.
    Hypercall,
    /// A load or store to guest-physical memory that does not exist.
    Unmapped,
    /// Something KVM reported: triple fault, internal error, failed entry,
    /// an unexpected exit.
    Vcpu,
    /// A lazy region could not be served.
    Lazy,
}

/// A guest crash: its kind and the one line users see (what happened,
/// where, and in which function).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What kind of crash.
    pub kind: FaultKind,
    /// The one line users see.
    pub message: String,
}

impl Fault {
    /// A fault of `kind` described by `message`.
    pub fn new(kind: FaultKind, message: impl Into<String>) -> Fault {
        Fault {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why the launcher stopped a guest that had not ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `--timeout` ran out.
    Timeout,
    /// The launcher received this signal (SIGINT, SIGTERM).
    Signal(i32),
    /// Guest output could not be delivered: stdout is a closed pipe.
    BrokenPipe,
    /// A host program's interrupt handle stopped it (`sandbox::InterruptHandle`).
    Interrupted,
}

/// How a guest ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The app exited with this code.
    Exited(i32),
    /// The app aborted with this message.
    Aborted(String),
    /// The guest crashed.
    Fault(Fault),
    /// The launcher stopped it after this long.
    Stopped(StopReason, Duration),
    /// The app exited with this code, but some of its output could not be
    /// written (reported once on stderr when it happened).
    OutputLost(i32),
    /// The guest wrote more than this many bytes (`--max-output`).
    OutputCap(u64),
}

/// Guest-supplied text made safe for the host's terminal: control
/// characters (escape sequences, NUL, newlines) are shown escaped, so a
/// message stays one line and cannot drive the terminal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Outcome {
    /// The launcher's process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(c) if exit::is_reserved(*c & 0xff) => exit::APP_CODE_RESERVED,
            Outcome::Exited(c) => *c & 0xff,
            Outcome::Aborted(_) => exit::ABORT,
            Outcome::OutputLost(0) => OUTPUT_LOST,
            Outcome::OutputLost(c) => Outcome::Exited(*c).exit_code(),
            Outcome::Fault(_) => exit::GUEST_FAULT,
            Outcome::OutputCap(_) => exit::OUTPUT_CAP,
            Outcome::Stopped(StopReason::Timeout, _) => exit::TIMEOUT,
            Outcome::Stopped(StopReason::Signal(s), _) => 128 + s,
            Outcome::Stopped(StopReason::BrokenPipe, _) => exit::BROKEN_PIPE,
            Outcome::Stopped(StopReason::Interrupted, _) => exit::INTERRUPTED,
        }
    }

    /// A line for stderr, if this outcome deserves one.
    pub fn message(&self) -> Option<String> {
        match self {
            Outcome::Exited(c) if exit::is_reserved(*c & 0xff) => Some(format!(
                "app exit code {} collides with a code Vessel reserves; exiting {}",
                c & 0xff,
                exit::APP_CODE_RESERVED
            )),
            Outcome::Exited(_) => None,
            Outcome::Aborted(m) => Some(format!("guest aborted: {}", escape(m))),
            Outcome::Fault(f) => Some(escape(&f.message)),
            Outcome::OutputCap(max) => Some(format!(
                "guest output passed --max-output ({max} bytes to stdout, stderr and files); stopped"
            )),
            Outcome::OutputLost(c) => Some(format!(
                "guest output was lost (see above); the app exited {c}, exiting {OUTPUT_LOST}"
            )),
            Outcome::Stopped(StopReason::Timeout, d) => {
                Some(format!("guest timed out after {:.3} s", d.as_secs_f64()))
            }
            Outcome::Stopped(StopReason::Signal(libc::SIGXCPU), d) => Some(format!(
                "guest stopped: the launcher used its --max-cpu of {} s of CPU time (after {:.3} s)",
                crate::limits::cpu_limit().unwrap_or(0),
                d.as_secs_f64()
            )),
            Outcome::Stopped(StopReason::Signal(s), d) => Some(format!(
                "guest stopped by {} after {:.3} s",
                signal_name(*s),
                d.as_secs_f64()
            )),
            // The shell convention: a closed pipe ends the writer quietly.
            Outcome::Stopped(StopReason::BrokenPipe, _) => None,
            Outcome::Stopped(StopReason::Interrupted, d) => Some(format!(
                "guest interrupted by its host program after {:.3} s",
                d.as_secs_f64()
            )),
        }
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_app_codes_are_remapped() {
        assert_eq!(Outcome::Exited(3).exit_code(), 3);
        assert_eq!(Outcome::Exited(256 + 4).exit_code(), 4);
        assert_eq!(
            Outcome::Exited(exit::GUEST_FAULT).exit_code(),
            exit::APP_CODE_RESERVED
        );
        assert!(Outcome::Exited(exit::GUEST_FAULT).message().is_some());
        let fault = Fault::new(FaultKind::Vcpu, "x");
        assert_eq!(Outcome::Fault(fault).exit_code(), exit::GUEST_FAULT);
        let stopped = |r| Outcome::Stopped(r, Duration::ZERO);
        assert_eq!(stopped(StopReason::Timeout).exit_code(), exit::TIMEOUT);
        let sig = |s| stopped(StopReason::Signal(s)).exit_code();
        assert_eq!(sig(libc::SIGINT), exit::INTERRUPTED);
        assert_eq!(sig(libc::SIGTERM), exit::TERMINATED);
        assert_eq!(
            stopped(StopReason::BrokenPipe).exit_code(),
            exit::BROKEN_PIPE
        );
        assert_eq!(stopped(StopReason::BrokenPipe).message(), None);
        assert_eq!(Outcome::Aborted("m".into()).exit_code(), exit::ABORT);
        assert_eq!(Outcome::OutputLost(0).exit_code(), OUTPUT_LOST);
        assert_eq!(
            Outcome::OutputLost(3).exit_code(),
            3,
            "a failing app keeps its code"
        );
    }

    #[test]
    fn guest_text_cannot_drive_the_terminal() {
        let m = Outcome::Aborted("red \x1b[31mX\0\nnext".into())
            .message()
            .unwrap();
        assert_eq!(m, "guest aborted: red \\u{1b}[31mX\\u{0}\\nnext");
        assert!(!m.chars().any(char::is_control));
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }
}
