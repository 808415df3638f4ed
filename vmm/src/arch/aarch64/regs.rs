//! aarch64 register ids for KVM_{GET,SET}_ONE_REG and the values the
//! launcher gives the privileged ones.

use kvm_ioctls::VcpuFd;

use super::paging;
use crate::error::{KvmContext, Result};
use crate::sve::{KVM_REG_ARM64, KVM_REG_SIZE_U64};

const KVM_REG_ARM_CORE: u64 = 0x0010 << 16;
pub const KVM_REG_ARM64_SYSREG: u64 = 0x0013 << 16;

/// Core register id from its byte offset in `struct kvm_regs`.
pub const fn core_reg(offset: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4)
}
pub const fn sys_reg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
    KVM_REG_ARM64
        | KVM_REG_SIZE_U64
        | KVM_REG_ARM64_SYSREG
        | (op0 << 14)
        | (op1 << 11)
        | (crn << 7)
        | (crm << 3)
        | op2
}

pub const X0: u64 = core_reg(0);
pub const SP_EL0: u64 = core_reg(31 * 8);
pub const PC: u64 = core_reg(32 * 8);
pub const PSTATE: u64 = core_reg(33 * 8);
pub const SP_EL1: u64 = core_reg(34 * 8);
pub const SCTLR_EL1: u64 = sys_reg(3, 0, 1, 0, 0);
pub const CPACR_EL1: u64 = sys_reg(3, 0, 1, 0, 2);
pub const TTBR0_EL1: u64 = sys_reg(3, 0, 2, 0, 0);
pub const TCR_EL1: u64 = sys_reg(3, 0, 2, 0, 2);
pub const ESR_EL1: u64 = sys_reg(3, 0, 5, 2, 0);
pub const FAR_EL1: u64 = sys_reg(3, 0, 6, 0, 0);
pub const MAIR_EL1: u64 = sys_reg(3, 0, 10, 2, 0);
pub const VBAR_EL1: u64 = sys_reg(3, 0, 12, 0, 0);
pub const MPIDR_EL1: u64 = sys_reg(3, 0, 0, 0, 5);

/// EL1h with D, A, I, F masked.
pub const PSTATE_EL1H: u64 = 0x3c5;
/// MAIR attr0 Device-nGnRnE, attr1 Normal write-back (see paging).
pub const MAIR: u64 = 0xff << 8;
/// T0SZ=25 (39-bit VA), inner/outer WB-WA, inner shareable, 4 KiB granule,
/// EPD1 (no TTBR1 walks), IPS=48 bits (clamped to the implemented size).
pub const TCR: u64 =
    (64 - paging::VA_BITS as u64) | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (5 << 32);
/// RES1 bits of ARMv8.0 SCTLR_EL1, then M (MMU), C, SA, I.
pub const SCTLR: u64 = 0x30d0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 12);
pub const CPACR_FPEN: u64 = 3 << 20;
pub const CPACR_ZEN: u64 = 3 << 16;

pub fn set(vcpu: &VcpuFd, id: u64, v: u64, name: &str) -> Result<()> {
    vcpu.set_one_reg(id, &v.to_le_bytes())
        .map(|_| ())
        .kvm(format!("KVM_SET_ONE_REG({name})"))
}

pub fn get(vcpu: &VcpuFd, id: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    vcpu.get_one_reg(id, &mut b).ok()?;
    Some(u64::from_le_bytes(b))
}
