//! A vCPU's whole state for snapshots: general, system and vector
//! registers (XSAVE, XCR0), the MSRs a Vessel guest uses, the LAPIC,
//! pending events and the run state.

use kvm_bindings::{
    kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs, kvm_vcpu_events,
    kvm_xcrs, kvm_xsave, Msrs,
};
use kvm_ioctls::VcpuFd;

use super::regs::{set_msrs, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT};
use crate::error::{Error, KvmContext, Result};

/// The MSRs saved: SYSENTER/SYSCALL entry points, kernel GS base, PAT,
/// TSC deadline and aux, and KVM's async-PF registration. The TSC itself
/// is not restored: guest time goes on across a restore.
const SAVED_MSRS: [u32; 12] = [
    0x174,       // SYSENTER_CS
    0x175,       // SYSENTER_ESP
    0x176,       // SYSENTER_EIP
    0x277,       // PAT
    0x6e0,       // TSC_DEADLINE
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0xc000_0102, // KERNEL_GS_BASE
    MSR_KVM_ASYNC_PF_EN,
    MSR_KVM_ASYNC_PF_INT,
];

/// Everything KVM holds for one vCPU that a Vessel guest can change.
pub struct VcpuState {
    regs: kvm_regs,
    sregs: kvm_sregs,
    xsave: Box<kvm_xsave>,
    xcrs: kvm_xcrs,
    msrs: Vec<(u32, u64)>,
    lapic: Box<kvm_lapic_state>,
    events: kvm_vcpu_events,
    mp: kvm_mp_state,
}

impl VcpuState {
    /// XCR0 as saved: the vector state the guest could see.
    pub fn xcr0(&self) -> u64 {
        let n = (self.xcrs.nr_xcrs as usize).min(self.xcrs.xcrs.len());
        self.xcrs.xcrs[..n]
            .iter()
            .find(|x| x.xcr == 0)
            .map(|x| x.value)
            .unwrap_or(0)
    }
}

/// Read the state of a vCPU that is out of KVM_RUN with no exit pending.
pub fn save_vcpu(vcpu: &VcpuFd) -> Result<VcpuState> {
    let entries: Vec<kvm_msr_entry> = SAVED_MSRS
        .iter()
        .map(|&index| kvm_msr_entry {
            index,
            ..Default::default()
        })
        .collect();
    let mut msrs = Msrs::from_entries(&entries).map_err(|source| Error::MsrList {
        what: "snapshot",
        source,
    })?;
    let n = vcpu.get_msrs(&mut msrs).kvm("KVM_GET_MSRS (snapshot)")?;
    Ok(VcpuState {
        regs: vcpu.get_regs().kvm("KVM_GET_REGS")?,
        sregs: vcpu.get_sregs().kvm("KVM_GET_SREGS")?,
        xsave: Box::new(vcpu.get_xsave().kvm("KVM_GET_XSAVE")?),
        xcrs: vcpu.get_xcrs().kvm("KVM_GET_XCRS")?,
        msrs: msrs.as_slice()[..n]
            .iter()
            .map(|e| (e.index, e.data))
            .collect(),
        lapic: Box::new(vcpu.get_lapic().kvm("KVM_GET_LAPIC")?),
        events: vcpu.get_vcpu_events().kvm("KVM_GET_VCPU_EVENTS")?,
        mp: vcpu.get_mp_state().kvm("KVM_GET_MP_STATE")?,
    })
}

/// Put `s` back into a vCPU of the same VM configuration.
pub fn restore_vcpu(vcpu: &VcpuFd, s: &VcpuState) -> Result<()> {
    vcpu.set_sregs(&s.sregs).kvm("KVM_SET_SREGS")?;
    vcpu.set_xcrs(&s.xcrs).kvm("KVM_SET_XCRS")?;
    // SAFETY: `s.xsave` came from KVM_GET_XSAVE on a vCPU with the same
    // CPUID (same VM configuration): a legacy 4 KiB area KVM wrote itself.
    unsafe { vcpu.set_xsave(&s.xsave) }.kvm("KVM_SET_XSAVE")?;
    set_msrs(vcpu, &s.msrs, "snapshot restore")?;
    vcpu.set_lapic(&s.lapic).kvm("KVM_SET_LAPIC")?;
    vcpu.set_vcpu_events(&s.events).kvm("KVM_SET_VCPU_EVENTS")?;
    vcpu.set_mp_state(s.mp).kvm("KVM_SET_MP_STATE")?;
    vcpu.set_regs(&s.regs).kvm("KVM_SET_REGS")
}
