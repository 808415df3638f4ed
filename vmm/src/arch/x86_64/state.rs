//! A vCPU's whole state for snapshots: general, system and vector
//! registers (XSAVE, XCR0), the MSRs a Vessel guest uses, the LAPIC,
//! pending events and the run state.

use kvm_bindings::{
    kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs,
    kvm_xsave, Msrs,
};
use kvm_ioctls::VcpuFd;
use std::mem::size_of;
use vessel_abi::zerocopy::{FromBytes, IntoBytes};

use super::regs::{set_msrs, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT};
use crate::error::{Error, KvmContext, Result};
use crate::snapshot::RestoreScope;

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

/// KVM advanced RIP past an MMIO store when it exited, and completing a
/// store changes nothing: a restore may write registers without first
/// finishing the pending exit.
pub const SETTLE_BEFORE_RESTORE: bool = false;

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
    /// The CPU features the guest could see and a destination must give
    /// again: XCR0 (which XSAVE state components exist).
    pub fn cpu_features(&self) -> u64 {
        self.xcr0()
    }

    /// The SVE length set: none on x86_64.
    pub fn sve_set(&self) -> [u8; 64] {
        [0; 64]
    }

    /// The state in the snapshot file's vCPU section (vmm/README.md):
    /// kvm_regs, kvm_sregs, kvm_xsave, kvm_xcrs, kvm_lapic_state,
    /// kvm_vcpu_events, kvm_mp_state as KVM lays them out, then the MSR
    /// count (u32) and (index u32, value u64) pairs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 << 10);
        out.extend_from_slice(self.regs.as_bytes());
        out.extend_from_slice(self.sregs.as_bytes());
        out.extend_from_slice(self.xsave.region.as_bytes());
        out.extend_from_slice(self.xcrs.as_bytes());
        out.extend_from_slice(self.lapic.as_bytes());
        out.extend_from_slice(self.events.as_bytes());
        out.extend_from_slice(self.mp.as_bytes());
        out.extend_from_slice(&(self.msrs.len() as u32).to_le_bytes());
        for (i, v) in &self.msrs {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parse [`VcpuState::to_bytes`]; None if the sizes do not add up.
    pub fn from_bytes(b: &[u8]) -> Option<VcpuState> {
        let mut r = Take(b);
        let regs = kvm_regs::read_from_bytes(r.take(size_of::<kvm_regs>())?).ok()?;
        let sregs = kvm_sregs::read_from_bytes(r.take(size_of::<kvm_sregs>())?).ok()?;
        let mut xsave = Box::new(kvm_xsave::default());
        xsave.region = <[u32; 1024]>::read_from_bytes(r.take(4096)?).ok()?;
        let xcrs = kvm_xcrs::read_from_bytes(r.take(size_of::<kvm_xcrs>())?).ok()?;
        let lapic =
            Box::new(kvm_lapic_state::read_from_bytes(r.take(size_of::<kvm_lapic_state>())?).ok()?);
        let events =
            kvm_vcpu_events::read_from_bytes(r.take(size_of::<kvm_vcpu_events>())?).ok()?;
        let mp = kvm_mp_state::read_from_bytes(r.take(size_of::<kvm_mp_state>())?).ok()?;
        let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        if n > SAVED_MSRS.len() || r.0.len() != n * 12 {
            return None;
        }
        let msrs =
            r.0.chunks_exact(12)
                .map(|c| {
                    let (i, v) = c.split_at(4);
                    (
                        u32::from_le_bytes([i[0], i[1], i[2], i[3]]),
                        u64::from_le_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]),
                    )
                })
                .collect();
        Some(VcpuState {
            regs,
            sregs,
            xsave,
            xcrs,
            msrs,
            lapic,
            events,
            mp,
        })
    }

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

/// A cursor over bytes.
struct Take<'a>(&'a [u8]);

impl<'a> Take<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
}

/// What a snapshot's CPU features are compared with on this vCPU: XCR0,
/// and (no SVE here) an empty length set.
pub fn cpu_of(vcpu: &VcpuFd) -> Result<(u64, [u8; 64])> {
    let xcrs = vcpu.get_xcrs().kvm("KVM_GET_XCRS")?;
    let n = (xcrs.nr_xcrs as usize).min(xcrs.xcrs.len());
    let xcr0 = xcrs.xcrs[..n]
        .iter()
        .find(|x| x.xcr == 0)
        .map(|x| x.value)
        .unwrap_or(0);
    Ok((xcr0, [0; 64]))
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

/// Put `s` back into a vCPU of the same VM configuration. After a call
/// that ended cleanly ([`RestoreScope::AfterCall`]) only what CPL3 code
/// can change is written: general registers, XSAVE state, and the
/// segment and control registers when they differ (one read to check);
/// each ioctl costs about 3 us here.
pub fn restore_vcpu(vcpu: &VcpuFd, s: &VcpuState, scope: RestoreScope) -> Result<()> {
    match scope {
        RestoreScope::Full => {
            vcpu.set_sregs(&s.sregs).kvm("KVM_SET_SREGS")?;
            vcpu.set_xcrs(&s.xcrs).kvm("KVM_SET_XCRS")?;
            set_msrs(vcpu, &s.msrs, "snapshot restore")?;
            vcpu.set_lapic(&s.lapic).kvm("KVM_SET_LAPIC")?;
            vcpu.set_vcpu_events(&s.events).kvm("KVM_SET_VCPU_EVENTS")?;
            vcpu.set_mp_state(s.mp).kvm("KVM_SET_MP_STATE")?;
        }
        RestoreScope::AfterCall => {
            let now = vcpu.get_sregs().kvm("KVM_GET_SREGS")?;
            if !same_sregs(&now, &s.sregs) {
                vcpu.set_sregs(&s.sregs).kvm("KVM_SET_SREGS")?;
            }
        }
    }
    // SAFETY: `s.xsave` came from KVM_GET_XSAVE on a vCPU with the same
    // CPUID (same VM configuration): a legacy 4 KiB area KVM wrote itself.
    unsafe { vcpu.set_xsave(&s.xsave) }.kvm("KVM_SET_XSAVE")?;
    vcpu.set_regs(&s.regs).kvm("KVM_SET_REGS")
}

/// Whether two system register sets are equal (kvm_sregs has no
/// PartialEq, and its padding must not be compared).
fn same_sregs(a: &kvm_sregs, b: &kvm_sregs) -> bool {
    fn seg(s: &kvm_bindings::kvm_segment) -> [u64; 3] {
        let attrs = [s.type_, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl];
        [
            s.base,
            u64::from(s.limit) | u64::from(s.selector) << 32 | u64::from(s.unusable) << 48,
            u64::from_le_bytes(attrs),
        ]
    }
    let segs = |s: &kvm_sregs| [s.cs, s.ds, s.es, s.fs, s.gs, s.ss, s.tr, s.ldt].map(|x| seg(&x));
    let regs = |s: &kvm_sregs| {
        [
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.cr8,
            s.efer,
            s.apic_base,
            s.gdt.base,
            s.idt.base,
            u64::from(s.gdt.limit) | u64::from(s.idt.limit) << 16,
        ]
    };
    segs(a) == segs(b) && regs(a) == regs(b) && a.interrupt_bitmap == b.interrupt_bitmap
}
