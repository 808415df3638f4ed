//! A vCPU's whole state for snapshots: every register KVM_GET_REG_LIST
//! names (core registers, system registers, the timer, and with SVE
//! ZCR_EL1 and all of Z0-31, P0-15 and FFR), and the SVE length set.

use kvm_bindings::{RegList, KVM_REG_SIZE_MASK, KVM_REG_SIZE_SHIFT};
use kvm_ioctls::VcpuFd;

use crate::error::{KvmContext, Result};
use crate::snapshot::RestoreScope;
use crate::sve;

/// KVM_GET_REG_LIST's room: arm64 KVM lists a few hundred registers.
const MAX_REGS: usize = 1024;

/// KVM_REG_ARM_TIMER_CNT (CNTVCT_EL0 as ONE_REG): not restored, so guest
/// time goes on across a restore (writing it moves the counter offset).
const TIMER_CNT: u64 = 0x6030_0000_0013_df1a;

/// KVM completes an MMIO store (advances PC) at the next KVM_RUN: a
/// restore must finish the pending exit before it writes PC.
pub const SETTLE_BEFORE_RESTORE: bool = true;

/// Every register of one vCPU, and its SVE length set (None: SVE off).
pub struct VcpuState {
    regs: Vec<(u64, Vec<u8>)>,
    vls: Option<[u8; 64]>,
}

impl VcpuState {
    /// The SVE length set (`KVM_REG_ARM64_SVE_VLS`), if SVE is on.
    pub fn vls(&self) -> Option<&[u8; 64]> {
        self.vls.as_ref()
    }
}

fn reg_size(id: u64) -> usize {
    1usize << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)
}

/// Read the state of a vCPU that is out of KVM_RUN with no exit pending.
pub fn save_vcpu(vcpu: &VcpuFd) -> Result<VcpuState> {
    let mut list = RegList::new(MAX_REGS).map_err(|source| crate::error::Error::MsrList {
        what: "KVM_GET_REG_LIST",
        source,
    })?;
    vcpu.get_reg_list(&mut list).kvm("KVM_GET_REG_LIST")?;
    let mut regs = Vec::with_capacity(list.as_slice().len());
    let mut vls = None;
    for &id in list.as_slice() {
        let mut buf = vec![0u8; reg_size(id)];
        vcpu.get_one_reg(id, &mut buf)
            .kvm(format!("KVM_GET_ONE_REG({id:#x})"))?;
        match id {
            sve::VLS_ID => {
                let mut set = [0u8; 64];
                set.copy_from_slice(&buf);
                vls = Some(set);
            }
            TIMER_CNT => {}
            _ => regs.push((id, buf)),
        }
    }
    Ok(VcpuState { regs, vls })
}

/// Put `s` back into a vCPU of the same VM configuration (the same SVE
/// length set: it can only be written before FINALIZE). Every register is
/// written whatever the scope: EL1 code can change any of them.
pub fn restore_vcpu(vcpu: &VcpuFd, s: &VcpuState, _scope: RestoreScope) -> Result<()> {
    for (id, v) in &s.regs {
        vcpu.set_one_reg(*id, v)
            .kvm(format!("KVM_SET_ONE_REG({id:#x})"))?;
    }
    Ok(())
}
