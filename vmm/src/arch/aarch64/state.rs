//! A vCPU's whole state for snapshots: every register KVM_GET_REG_LIST
//! names (core registers, system registers, the timer, and with SVE
//! ZCR_EL1 and all of Z0-31, P0-15 and FFR), and the SVE length set.

use kvm_bindings::{RegList, KVM_REG_SIZE_MASK, KVM_REG_SIZE_SHIFT};
use kvm_ioctls::VcpuFd;

use crate::error::{KvmContext, Result};
use crate::snapshot::RestoreScope;
use crate::sve;

/// KVM_GET_REG_LIST's room: arm64 KVM lists a few hundred registers, and
/// kvm-bindings' `RegList` holds at most 500.
const MAX_REGS: usize = 500;

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

    /// CPU features beyond SVE that a destination must match: none
    /// recorded on arm64 (the SVE set is [`VcpuState::sve_set`]).
    pub fn cpu_features(&self) -> u64 {
        0
    }

    /// The SVE length set as KVM's 64-byte bitmap (zeros: SVE off).
    pub fn sve_set(&self) -> [u8; 64] {
        self.vls.unwrap_or([0; 64])
    }

    /// The state in the snapshot file's vCPU section (vmm/README.md): a
    /// byte (1: SVE on) and the 64-byte VL set, the register count (u32),
    /// then per register its id (u64), length (u32) and value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(u8::from(self.vls.is_some()));
        out.extend_from_slice(&self.sve_set());
        out.extend_from_slice(&(self.regs.len() as u32).to_le_bytes());
        for (id, v) in &self.regs {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    /// Parse [`VcpuState::to_bytes`]; None if anything does not add up
    /// (a register's length must be what its id says, 256 bytes at most).
    pub fn from_bytes(b: &[u8]) -> Option<VcpuState> {
        let (&on, rest) = b.split_first()?;
        let (set, mut rest) = rest.split_at_checked(64)?;
        let vls = match on {
            0 => None,
            1 => Some(<[u8; 64]>::try_from(set).ok()?),
            _ => return None,
        };
        let (n, r) = rest.split_at_checked(4)?;
        rest = r;
        let n = u32::from_le_bytes(n.try_into().ok()?) as usize;
        if n > MAX_REGS {
            return None;
        }
        let mut regs = Vec::with_capacity(n);
        for _ in 0..n {
            let (id, r) = rest.split_at_checked(8)?;
            let (len, r) = r.split_at_checked(4)?;
            let id = u64::from_le_bytes(id.try_into().ok()?);
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            if len > 256 || len != reg_size(id) || id == sve::VLS_ID {
                return None;
            }
            let (v, r) = r.split_at_checked(len)?;
            regs.push((id, v.to_vec()));
            rest = r;
        }
        rest.is_empty().then_some(VcpuState { regs, vls })
    }
}

fn reg_size(id: u64) -> usize {
    1usize << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)
}

/// What a snapshot's CPU features are compared with on this vCPU: no
/// features word, and its SVE length set (zeros: SVE off).
pub fn cpu_of(vcpu: &VcpuFd) -> Result<(u64, [u8; 64])> {
    let mut set = [0u8; 64];
    match vcpu.get_one_reg(sve::VLS_ID, &mut set) {
        Ok(_) => Ok((0, set)),
        // No SVE on this vCPU: the register does not exist.
        Err(_) => Ok((0, [0; 64])),
    }
}

/// Read the state of a vCPU that is out of KVM_RUN with no exit pending.
pub fn save_vcpu(vcpu: &VcpuFd) -> Result<VcpuState> {
    let mut list = RegList::new(MAX_REGS).map_err(crate::error::Error::RegList)?;
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
