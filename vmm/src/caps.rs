//! KVM capabilities: what Vessel asks of the host, read with KVM_CHECK_EXTENSION.
//!
//! A capability's value is read on the system fd ("can this host do it")
//! and on a VM fd ("does this VM have it"). Values are interpreted by their
//! documented kind; anything unknown counts as absent.

use kvm_ioctls::{Kvm, VmFd};

/// How a capability's value is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    /// 0 absent, 1 present; other values are unknown, so absent.
    Bool,
    /// A count or size; any positive value is meaningful.
    Number,
    /// A set of bits; non-zero means some are present.
    Bitmask,
}

/// One capability Vessel knows about.
#[derive(Clone, Copy, Debug)]
pub struct CapInfo {
    /// The name in the kernel headers (`KVM_CAP_...`).
    pub name: &'static str,
    /// Its number for KVM_CHECK_EXTENSION.
    pub id: u32,
    /// How to read its value.
    pub kind: CapKind,
    /// Vessel refuses to run without it.
    pub required: bool,
    /// What Vessel does with it.
    pub used_for: &'static str,
}

impl CapInfo {
    /// A table entry (a `const fn`, so the table is a constant).
    pub const fn new(
        name: &'static str,
        id: u32,
        kind: CapKind,
        required: bool,
        used_for: &'static str,
    ) -> Self {
        CapInfo {
            name,
            id,
            kind,
            required,
            used_for,
        }
    }

    /// Whether a raw KVM_CHECK_EXTENSION answer means "present".
    pub fn present(&self, value: i32) -> bool {
        match self.kind {
            CapKind::Bool => value == 1,
            CapKind::Number | CapKind::Bitmask => value > 0,
        }
    }
}

/// Capabilities common to every architecture.
pub const COMMON: &[CapInfo] = &[
    CapInfo::new(
        "KVM_CAP_USER_MEMORY",
        kvm_bindings::KVM_CAP_USER_MEMORY,
        CapKind::Bool,
        true,
        "guest RAM from launcher memory",
    ),
    CapInfo::new(
        "KVM_CAP_IMMEDIATE_EXIT",
        kvm_bindings::KVM_CAP_IMMEDIATE_EXIT,
        CapKind::Bool,
        false,
        "race-free vCPU kick for --timeout",
    ),
    CapInfo::new(
        "KVM_CAP_NR_VCPUS",
        kvm_bindings::KVM_CAP_NR_VCPUS,
        CapKind::Number,
        false,
        "recommended vCPU limit (--cpus)",
    ),
    CapInfo::new(
        "KVM_CAP_MAX_VCPUS",
        kvm_bindings::KVM_CAP_MAX_VCPUS,
        CapKind::Number,
        false,
        "hard vCPU limit (--cpus)",
    ),
    CapInfo::new(
        "KVM_CAP_SET_GUEST_DEBUG",
        kvm_bindings::KVM_CAP_SET_GUEST_DEBUG,
        CapKind::Bool,
        false,
        "single-step and breakpoints (not used yet)",
    ),
    CapInfo::new(
        "KVM_CAP_READONLY_MEM",
        kvm_bindings::KVM_CAP_READONLY_MEM,
        CapKind::Bool,
        false,
        "read-only memslots (not used yet)",
    ),
    CapInfo::new(
        "KVM_CAP_MEMORY_FAULT_INFO",
        kvm_bindings::KVM_CAP_MEMORY_FAULT_INFO,
        CapKind::Bool,
        false,
        "fault address on -EFAULT exits",
    ),
];

/// A capability with its values on the system fd and on a VM fd.
#[derive(Clone, Debug)]
pub struct CapValue {
    /// Which capability.
    pub info: CapInfo,
    /// KVM_CHECK_EXTENSION on the system fd.
    pub system: i32,
    /// KVM_CHECK_EXTENSION on a VM fd, if one could be created.
    pub vm: Option<i32>,
}

impl CapValue {
    /// Present for this VM (VM fd answer when there is one).
    pub fn present(&self) -> bool {
        self.info.present(self.vm.unwrap_or(self.system))
    }
}

/// Read every capability Vessel knows on `kvm` and, if given, a VM.
pub fn probe(kvm: &Kvm, vm: Option<&VmFd>) -> Vec<CapValue> {
    COMMON
        .iter()
        .chain(crate::arch::CAPS.iter())
        .map(|&info| CapValue {
            info,
            system: kvm.check_extension_raw(info.id.into()),
            vm: vm.map(|v| v.check_extension_raw(info.id.into())),
        })
        .collect()
}

/// Check the capabilities Vessel cannot run without.
pub fn check_required(kvm: &Kvm) -> crate::error::Result<()> {
    for info in COMMON
        .iter()
        .chain(crate::arch::CAPS.iter())
        .filter(|c| c.required)
    {
        if !info.present(kvm.check_extension_raw(info.id.into())) {
            return Err(crate::error::Error::MissingCap(info.name));
        }
    }
    Ok(())
}

/// A table for `vessel caps`.
pub fn format_table(values: &[CapValue]) -> String {
    let mut s = format!(
        "{:<28} {:>6} {:>6}  {:<8} {}\n",
        "capability", "system", "vm", "status", "what Vessel does with it"
    );
    for v in values {
        let status = match (v.present(), v.info.required) {
            (true, _) => "present",
            (false, true) => "MISSING",
            (false, false) => "absent",
        };
        let vm = v.vm.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        s += &format!(
            "{:<28} {:>6} {:>6}  {:<8} {}\n",
            v.info.name, v.system, vm, status, v.info.used_for
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_count_as_absent() {
        let b = CapInfo::new("b", 1, CapKind::Bool, false, "");
        assert!(b.present(1));
        assert!(!b.present(0));
        assert!(
            !b.present(2),
            "a boolean answering 2 is not a documented value"
        );
        assert!(!b.present(-1));
        let n = CapInfo::new("n", 2, CapKind::Number, false, "");
        assert!(n.present(40));
        assert!(!n.present(0));
        assert!(!n.present(-22));
    }

    #[test]
    fn capability_names_are_unique() {
        let all: Vec<_> = COMMON.iter().chain(crate::arch::CAPS.iter()).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.id, b.id);
            }
        }
    }
}
