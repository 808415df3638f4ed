//! The KVM capabilities Vessel relies on or could use on aarch64.

use kvm_ioctls::Kvm;

use super::vcpu::HostCpu;
use crate::caps::{CapInfo, CapKind};

/// Capabilities Vessel relies on or could use on aarch64.
pub const CAPS: &[CapInfo] = &[
    CapInfo::new(
        "KVM_CAP_ONE_REG",
        kvm_bindings::KVM_CAP_ONE_REG,
        CapKind::Bool,
        true,
        "set MMU/vector/stack registers before the first run",
    ),
    CapInfo::new(
        "KVM_CAP_ARM_PSCI_0_2",
        kvm_bindings::KVM_CAP_ARM_PSCI_0_2,
        CapKind::Bool,
        false,
        "PSCI 0.2 for the vCPUs",
    ),
    CapInfo::new(
        "KVM_CAP_ARM_VM_IPA_SIZE",
        kvm_bindings::KVM_CAP_ARM_VM_IPA_SIZE,
        CapKind::Number,
        false,
        "largest guest-physical address size (--mem)",
    ),
    CapInfo::new(
        "KVM_CAP_ARM_SVE",
        kvm_bindings::KVM_CAP_ARM_SVE,
        CapKind::Bool,
        false,
        "SVE for the guest (--sve-vl, --sve max)",
    ),
    CapInfo::new(
        "KVM_CAP_ARM_NISV_TO_USER",
        kvm_bindings::KVM_CAP_ARM_NISV_TO_USER,
        CapKind::Bool,
        false,
        "undecodable MMIO becomes a guest fault, not a KVM_RUN error",
    ),
    CapInfo::new(
        "KVM_CAP_ARM_INJECT_EXT_DABT",
        kvm_bindings::KVM_CAP_ARM_INJECT_EXT_DABT,
        CapKind::Bool,
        false,
        "inject data aborts: async page faults served by the launcher",
    ),
];

/// Whether the launcher offers async page faults: KVM has none on arm64,
/// so the launcher serves them itself (see `crate::softapf`): lazy regions
/// in userfaultfd SIGBUS mode make KVM_RUN fail with EFAULT, and the
/// launcher injects an external data abort (KVM_CAP_ARM_INJECT_EXT_DABT)
/// whose FAR tells it the page. "Ready" goes through the guest's ring and
/// the Wait hypercall, so no interrupt controller is needed.
pub fn async_pf_supported(kvm: &Kvm, _cpu: &HostCpu) -> bool {
    kvm.check_extension_raw(kvm_bindings::KVM_CAP_ARM_INJECT_EXT_DABT.into()) > 0
}

/// Whether guests may set their own thread pointer: always on arm64 (the
/// app runs at EL1 and writes TPIDR_EL0 itself).
pub fn thread_pointer_supported(_cpu: &HostCpu) -> bool {
    true
}
