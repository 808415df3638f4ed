//! How a sandbox call can fail.

use std::time::Duration;

use vessel_abi::value::ValueError;

use crate::outcome::Fault;

/// A sandbox call, snapshot or restore that failed. The variants marked
/// *poisons* leave the sandbox unusable until [`super::Sandbox::restore`]:
/// the guest's state can no longer be trusted.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The guest panicked (*poisons*); the message is what it printed.
    #[error("guest panicked: {0}")]
    GuestPanicked(String),
    /// The guest crashed (*poisons*), with the launcher's report.
    #[error("guest faulted: {0}")]
    GuestFaulted(Fault),
    /// The guest aborted (*poisons*).
    #[error("guest aborted: {0}")]
    GuestAborted(String),
    /// The guest exited during a call (*poisons*).
    #[error("guest exited with code {0} instead of returning")]
    GuestExited(i32),
    /// The call's timeout ran out (*poisons*).
    #[error("call timed out after {0:?}")]
    TimedOut(Duration),
    /// An [`super::InterruptHandle`] stopped the call (*poisons*).
    #[error("call interrupted")]
    Interrupted,
    /// The guest exports no function of this name.
    #[error("the guest exports no function {0:?}")]
    UnknownFunction(String),
    /// The guest refused the arguments (wrong count or types).
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// The guest's result is not a value of the expected type (*poisons*).
    #[error("result of {function}: {source}")]
    BadResult {
        /// The guest function called.
        function: String,
        /// What is wrong with its result.
        source: ValueError,
    },
    /// The guest reported another error for the call (nested too deep,
    /// out of memory, a host function failing under it).
    #[error("guest function failed: {0}")]
    GuestError(String),
    /// The guest broke the embedding protocol (*poisons*).
    #[error("the guest broke the embedding protocol: {0}")]
    Protocol(String),
    /// A host function tried to call the guest deeper than `embed::MAX_DEPTH`.
    #[error("guest calls nest deeper than {} levels", vessel_abi::embed::MAX_DEPTH)]
    TooDeep,
    /// An earlier failure poisoned the sandbox; restore it first.
    #[error("sandbox poisoned by an earlier failure ({0}); restore a snapshot first")]
    Poisoned(String),
    /// The guest ended or failed before it served calls.
    #[error("the guest did not start serving calls: {0}")]
    NotServing(String),
    /// A sandbox runs one vCPU; this many were asked for.
    #[error("a sandbox runs one vCPU, not {0}")]
    OneVcpu(u32),
    /// A snapshot of another image or configuration.
    #[error("snapshot does not fit this sandbox: {0}")]
    SnapshotMismatch(String),
    /// A snapshot file that cannot be restored.
    #[error("snapshot file: {0}")]
    SnapshotFile(#[from] crate::snapshot::file::SnapshotFileError),
    /// Building, running or restoring the VM failed.
    #[error(transparent)]
    Vmm(#[from] crate::Error),
}

impl SandboxError {
    /// Whether this failure leaves the sandbox poisoned.
    pub fn poisons(&self) -> bool {
        matches!(
            self,
            SandboxError::GuestPanicked(_)
                | SandboxError::GuestFaulted(_)
                | SandboxError::GuestAborted(_)
                | SandboxError::GuestExited(_)
                | SandboxError::TimedOut(_)
                | SandboxError::Interrupted
                | SandboxError::BadResult { .. }
                | SandboxError::Protocol(_)
                | SandboxError::Vmm(_)
        )
    }
}
