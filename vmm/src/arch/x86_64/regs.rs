//! Model-specific registers and KVM paravirtual constants the launcher sets.

use kvm_ioctls::VcpuFd;

use crate::error::{Error, KvmContext, Result};

pub use vessel_abi::arch::x86_64::msr::{
    KVM_ASYNC_PF_EN as MSR_KVM_ASYNC_PF_EN, KVM_ASYNC_PF_INT as MSR_KVM_ASYNC_PF_INT, X2APIC_SVR,
};
pub const KVM_ASYNC_PF_ENABLED: u64 = 1 << 0;
pub const KVM_ASYNC_PF_DELIVERY_AS_INT: u64 = 1 << 3;
pub const KVM_CPUID_FEATURES: u32 = 0x4000_0001;
pub const KVM_FEATURE_ASYNC_PF: u32 = 1 << 4;
pub const KVM_FEATURE_ASYNC_PF_INT: u32 = 1 << 14;

/// Set `msrs` (index, value) on the vCPU; `what` names them in errors.
pub fn set_msrs(vcpu: &VcpuFd, msrs: &[(u32, u64)], what: &'static str) -> Result<()> {
    let entries: Vec<kvm_bindings::kvm_msr_entry> = msrs
        .iter()
        .map(|&(index, data)| kvm_bindings::kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let m = kvm_bindings::Msrs::from_entries(&entries)
        .map_err(|source| Error::MsrList { what, source })?;
    let n = vcpu.set_msrs(&m).kvm(format!("KVM_SET_MSRS ({what})"))?;
    if n != msrs.len() {
        return Err(Error::MsrsRefused {
            what,
            set: n,
            total: msrs.len(),
            first: msrs[n].0,
        });
    }
    Ok(())
}
