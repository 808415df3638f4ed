//! How starting `vessel serve` can fail, and how one request can.

use std::fmt;

/// Starting or running the server failed (the process exits 125).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The app could not be made ready to serve (no exports, crashed
    /// during initialisation, KVM refused).
    #[error("the app cannot serve: {0}")]
    App(#[from] crate::sandbox::SandboxError),
    /// Opening KVM failed.
    #[error(transparent)]
    Vmm(#[from] crate::Error),
    /// `--user` names no user, or dropping privileges failed.
    #[error("--user: {0}")]
    User(String),
    /// A configuration value out of range.
    #[error("{0}")]
    Config(String),
    /// The runtime, a signal handler or a worker thread could not start.
    #[error("{what}: {source}")]
    Runtime {
        /// What was being started.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Why one request got no answer from its function: the response is
/// [`FnError::status`] with a short JSON body naming [`FnError::kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnError {
    /// HTTP status (404, 500, 504...).
    pub status: u16,
    /// A stable word for the failure (`timeout`, `crash`, `panic`...).
    pub kind: &'static str,
    /// One line with the detail.
    pub detail: String,
}

impl FnError {
    /// A failure with `status`, `kind` and `detail`.
    pub fn new(status: u16, kind: &'static str, detail: impl Into<String>) -> FnError {
        FnError {
            status,
            kind,
            detail: detail.into(),
        }
    }

    /// The JSON body: `{"error":"KIND","detail":"..."}`.
    pub fn body(&self) -> Vec<u8> {
        let mut detail = self.detail.clone();
        if detail.len() > 300 {
            let mut cut = 300;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        serde_json::json!({ "error": self.kind, "detail": detail })
            .to_string()
            .into_bytes()
    }
}

impl fmt::Display for FnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.detail)
    }
}
