//! The host's KVM: opened once, with its CPU model asked for once.

use kvm_ioctls::Kvm;

use crate::arch;
use crate::config::ConfigError;
use crate::error::{Error, Result};

/// Open /dev/kvm with a message that names the fix when it fails.
///
/// The device is `/dev/kvm`, or the path in the `VESSEL_KVM` environment
/// variable (for hosts that put it elsewhere, and for tests).
pub fn open_kvm() -> Result<Kvm> {
    let path = std::env::var_os("VESSEL_KVM").unwrap_or_else(|| "/dev/kvm".into());
    let shown = path.to_string_lossy().into_owned();
    let cpath = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
        .map_err(|_| ConfigError::KvmPathNul(shown.clone()))?;
    let kvm = Kvm::new_with_path(&cpath).map_err(|e| Error::KvmOpen {
        path: shown,
        source: std::io::Error::from_raw_os_error(e.errno()),
    })?;
    let v = kvm.get_api_version();
    if v != 12 {
        return Err(Error::KvmApiVersion(v));
    }
    Ok(kvm)
}

/// The host's KVM, opened once for any number of VMs.
///
/// The CPU model (`arch::host_cpu`) is asked for once, at the first VM, and
/// kept: where the host is itself virtualized every host CPUID traps and the
/// query takes about half a millisecond.
pub struct Host {
    kvm: Kvm,
    cpu: Option<arch::HostCpu>,
}

impl Host {
    /// Open /dev/kvm, with a one-line error naming the fix when it fails.
    pub fn open() -> Result<Host> {
        Ok(Host {
            kvm: open_kvm()?,
            cpu: None,
        })
    }

    /// The opened `/dev/kvm`.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// KVM and the CPU model, asked for at the first call.
    pub(crate) fn parts(&mut self) -> Result<(&Kvm, &arch::HostCpu)> {
        let cpu = match &mut self.cpu {
            Some(cpu) => cpu,
            empty => empty.insert(arch::host_cpu(&self.kvm)?),
        };
        Ok((&self.kvm, cpu))
    }
}
