//! One vCPU of a VM and what the launcher keeps for it: its KVM fd, the
//! timer that wakes it from a timed Wait, and (aarch64) the launcher-served
//! async page faults it registered.
//!
//! A VM has a fixed set of vCPUs ([`Vm::vcpus`](crate::Vm::vcpus)), all
//! created and configured before the first KVM_RUN; at run time each runs
//! on its own launcher thread (vCPU 0 on the thread that called
//! [`Vm::run`](crate::Vm::run)).

use std::sync::Arc;

use kvm_ioctls::{VcpuFd, VmFd};

use crate::softapf::SoftApf;
use crate::wake::WakeTimer;

/// One vCPU: see the module doc.
pub struct Vcpu {
    // Field order is drop order: the fd goes before the helpers that may
    // still reference the VM.
    pub(crate) fd: VcpuFd,
    pub(crate) id: u32,
    pub(crate) waker: WakeTimer,
    /// Launcher-served async page faults (aarch64), once this vCPU registers.
    pub(crate) soft: Option<SoftApf>,
}

impl Vcpu {
    pub(crate) fn new(fd: VcpuFd, id: u32, vm: Arc<VmFd>) -> Vcpu {
        Vcpu {
            fd,
            id,
            waker: WakeTimer::new(vm, id),
            soft: None,
        }
    }

    /// This vCPU's index (0-based; its KVM vCPU id and, on x86_64, its
    /// x2APIC id).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The KVM vCPU fd, for reading or writing its state between runs
    /// (registers, MSRs, vector state).
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// The KVM vCPU fd, mutably (`KVM_RUN`, the `kvm_run` area).
    pub fn fd_mut(&mut self) -> &mut VcpuFd {
        &mut self.fd
    }
}

/// The bits of `mask` that name one of `count` vCPUs, as vCPU ids.
pub fn ids_in_mask(mask: u64, count: u32) -> impl Iterator<Item = u32> {
    (0..count.min(64)).filter(move |i| mask & (1u64 << i) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_mask_names_only_existing_vcpus() {
        assert_eq!(ids_in_mask(0b1011, 4).collect::<Vec<_>>(), vec![0, 1, 3]);
        assert_eq!(ids_in_mask(0b1011, 2).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(ids_in_mask(u64::MAX, 64).count(), 64);
        assert_eq!(ids_in_mask(u64::MAX, 100).count(), 64);
        assert_eq!(ids_in_mask(0, 8).count(), 0);
    }
}
