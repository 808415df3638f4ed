//! What the runtime refuses, each as one line in runc's words where runc
//! has words for it.

use std::path::PathBuf;

/// A failed runtime command; `main` prints it as one line and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Container ids name a directory under `--root`.
    #[error("invalid container id `{0}`: use letters, digits, `_`, `+`, `-` and `.`")]
    BadId(String),
    /// `create` of an id that is already there.
    #[error("container with id {0} already exists")]
    Exists(String),
    /// No container of that id under `--root`.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A host file or directory could not be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// config.json is missing or not a runtime spec.
    #[error("malformed config.json in {}: {msg}", bundle.display())]
    BadConfig {
        /// The bundle.
        bundle: PathBuf,
        /// The parser's reason, on one line.
        msg: String,
    },
    /// process.args[0] is not in the rootfs.
    #[error("exec: {0:?}: no such file in the container's rootfs")]
    NoExecutable(String),
    /// A bind mount's source is missing.
    #[error("mount {}: source {} does not exist", dest.display(), host.display())]
    MountSource {
        /// Where the container would see it.
        dest: PathBuf,
        /// The host path.
        host: PathBuf,
    },
    /// A mount this runtime cannot give a VM.
    #[error("mount {}: {why}", dest.display())]
    BadMount {
        /// Where the container would see it.
        dest: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// The memory limit leaves the guest less than the app needs.
    #[error("memory limit {limit} bytes is below what the app needs: {why}")]
    MemoryLimit {
        /// linux.resources.memory.limit.
        limit: i64,
        /// The launcher's reason.
        why: String,
    },
    /// The packed app's guest cannot be read as one.
    #[error("{}: {msg}", path.display())]
    BadApp {
        /// The executable.
        path: PathBuf,
        /// The launcher's reason.
        msg: String,
    },
    /// A command that needs another status.
    #[error("{0}")]
    Status(String),
    /// `kill`'s signal.
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    /// A cgroup file could not be written.
    #[error("cgroup {}: {source}", path.display())]
    Cgroup {
        /// The file or directory.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A non-Vessel bundle and nothing to hand it to.
    #[error("{0:?} is not a Vessel app and no runc or crun was found to run it (set VESSEL_OCI_FALLBACK to one)")]
    NoFallback(String),
    /// The container's init process could not be started or waited for.
    #[error("{0}")]
    Init(String),
}

/// Results of the runtime's commands.
pub type Result<T> = std::result::Result<T, OciError>;

/// An `Io` error maker for `map_err`.
pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io { what, path, source }
}
