//! The launcher's errors: each prints as one line that says what failed and with which value.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source} (is KVM enabled? try `sudo modprobe kvm`, and add yourself to the `kvm` group or run as root)")]
    KvmOpen {
        path: String,
        source: std::io::Error,
    },
    #[error("KVM API version {0} is not the stable version 12")]
    KvmApiVersion(i32),
    #[error("{what}: {source}")]
    Kvm {
        what: String,
        source: kvm_ioctls::Error,
    },
    #[error("the host lacks {0}, which Vessel needs")]
    MissingCap(&'static str),
    #[error("cannot read guest image {path}: {source}")]
    ReadImage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid guest ELF: {0}")]
    Elf(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach what was being done to a KVM ioctl error.
pub trait KvmContext<T> {
    fn kvm(self, what: impl Into<String>) -> Result<T>;
}

impl<T> KvmContext<T> for std::result::Result<T, kvm_ioctls::Error> {
    fn kvm(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Kvm {
            what: what.into(),
            source,
        })
    }
}
