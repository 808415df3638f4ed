//! aarch64 vCPU set-up and control: KVM_ARM_VCPU_INIT with the SVE
//! sequence, the registers for the first instruction, `--dump-regs`, and
//! the launcher-served async page faults.

use kvm_bindings::{kvm_vcpu_init, KVM_ARM_VCPU_PSCI_0_2, KVM_ARM_VCPU_SVE};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};

use super::layout::PAGE_TABLES;
use super::regs::*;
use crate::elf::GuestImage;
use crate::error::{Error, KvmContext, Result};
use crate::layout::Layout;
use crate::sve::{self, SveError, SveRequest, VlSet};

/// KVM_ARM_VCPU_INIT, and with `sve` the SVE sequence: read VLS, write it
/// clipped to the requested maximum, finalize, read it back. Returns the
/// granted maximum in bits and the set (None: SVE off).
pub fn init_vcpu(
    kvm: &Kvm,
    vm: &VmFd,
    vcpu: &VcpuFd,
    sve_req: Option<SveRequest>,
) -> Result<Option<(u32, VlSet)>> {
    let mut init = kvm_vcpu_init::default();
    vm.get_preferred_target(&mut init)
        .kvm("KVM_ARM_PREFERRED_TARGET")?;
    // Only the features we mean; never copy unknown bits from the kernel.
    init.features = [0; 7];
    init.features[0] = 1 << KVM_ARM_VCPU_PSCI_0_2;
    if let Some(req) = sve_req {
        if kvm.check_extension_raw(kvm_bindings::KVM_CAP_ARM_SVE.into()) <= 0 {
            return Err(SveError::NoKvmCap(req).into());
        }
        init.features[0] |= 1 << KVM_ARM_VCPU_SVE;
    }
    vcpu.vcpu_init(&init).kvm("KVM_ARM_VCPU_INIT")?;
    let Some(req) = sve_req else {
        return Ok(None);
    };
    let mut raw = [0u8; 64];
    vcpu.get_one_reg(sve::VLS_ID, &mut raw)
        .kvm("KVM_GET_ONE_REG(SVE_VLS)")?;
    let (set, bits) = VlSet::from_bytes(&raw).clip(req)?;
    vcpu.set_one_reg(sve::VLS_ID, &set.to_bytes()).kvm(format!(
        "KVM_SET_ONE_REG(SVE_VLS = {} bits)",
        set.describe()
    ))?;
    let feature = std::os::raw::c_int::try_from(KVM_ARM_VCPU_SVE).unwrap_or(i32::MAX);
    vcpu.vcpu_finalize(&feature)
        .kvm("KVM_ARM_VCPU_FINALIZE(SVE)")?;
    let mut back = [0u8; 64];
    vcpu.get_one_reg(sve::VLS_ID, &mut back)
        .kvm("KVM_GET_ONE_REG(SVE_VLS) after finalize")?;
    let got = VlSet::from_bytes(&back);
    if got != set {
        return Err(Error::SveNotKept {
            got: Box::new(got),
            written: Box::new(set),
        });
    }
    Ok(Some((bits, set)))
}

/// What the launcher learns about the host CPU once per process: nothing
/// on aarch64 (vCPU features come from KVM_ARM_PREFERRED_TARGET per vCPU).
pub type HostCpu = ();

/// The host CPU model: nothing to learn on aarch64.
pub fn host_cpu(_kvm: &Kvm) -> Result<HostCpu> {
    Ok(())
}

/// Registers for the first instruction: MMU state, vectors, FP/SVE access,
/// stacks, PSTATE, entry and the BootInfo address.
#[allow(clippy::too_many_arguments)]
pub fn setup_vcpu(
    _kvm: &Kvm,
    _cpu: &HostCpu,
    vcpu: &VcpuFd,
    id: u32,
    l: &Layout,
    image: &GuestImage,
    boot: u64,
    vector_bits: u32,
) -> Result<()> {
    let (entry, vbar, sve_on) = (image.entry, image.header.vector_table, vector_bits > 0);
    set(vcpu, MAIR_EL1, MAIR, "MAIR_EL1")?;
    set(vcpu, TCR_EL1, TCR, "TCR_EL1")?;
    set(vcpu, TTBR0_EL1, PAGE_TABLES, "TTBR0_EL1")?;
    set(vcpu, VBAR_EL1, vbar, "VBAR_EL1")?;
    let cpacr = CPACR_FPEN | if sve_on { CPACR_ZEN } else { 0 };
    set(vcpu, CPACR_EL1, cpacr, "CPACR_EL1")?;
    set(vcpu, SCTLR_EL1, SCTLR, "SCTLR_EL1")?;
    let stack_top = l.stacks[id as usize].1;
    set(vcpu, SP_EL1, stack_top, "SP_EL1")?;
    set(vcpu, SP_EL0, stack_top, "SP_EL0")?;
    set(vcpu, X0, boot, "X0")?;
    // The guest finds its vCPU index in MPIDR_EL1.Aff0 (the ABI's
    // MPIDR_VCPU_MASK); bit 31 is RES1.
    set(vcpu, MPIDR_EL1, (1 << 31) | u64::from(id), "MPIDR_EL1")?;
    set(vcpu, PC, entry, "PC")?;
    set(vcpu, PSTATE, PSTATE_EL1H, "PSTATE")?;
    Ok(())
}

/// CNTVCT_EL0's frequency in kHz: the host's CNTFRQ_EL0 (the guest's
/// virtual counter runs at the same rate).
pub fn counter_khz(_vcpu: &VcpuFd) -> u64 {
    let hz: u64;
    // SAFETY: CNTFRQ_EL0 is readable at EL0 and reading it has no effect.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
    hz / 1000
}

fn hex_le(bytes: &[u8]) -> String {
    // Most significant byte first, as the register's value reads.
    bytes.iter().rev().map(|b| format!("{b:02x}")).collect()
}

/// Z0-31, P0-15 and FFR of the vCPU (`--dump-regs`), `vector_bits` wide.
pub fn dump_regs(vcpu: &VcpuFd, id: u32, vector_bits: u32) -> String {
    if vector_bits == 0 {
        return format!("vcpu{id}: SVE is off: no Z/P/FFR registers (use --sve-vl or --sve max)\n");
    }
    let zb = (vector_bits / 8) as usize;
    let pb = zb / 8;
    let mut out = String::new();
    let mut one = |name: String, reg: u64, size: usize, used: usize| {
        let mut buf = vec![0u8; size];
        match vcpu.get_one_reg(reg, &mut buf) {
            Ok(_) => out += &format!("vcpu{id} {name:<4} = 0x{}\n", hex_le(&buf[..used])),
            Err(e) => out += &format!("vcpu{id} {name:<4}: KVM_GET_ONE_REG({reg:#x}): {e}\n"),
        }
    };
    for n in 0..sve::Z_REGS {
        one(format!("z{n}"), sve::zreg_id(n, 0), sve::Z_SLICE_BYTES, zb);
    }
    for n in 0..sve::P_REGS {
        one(format!("p{n}"), sve::preg_id(n, 0), sve::P_SLICE_BYTES, pb);
    }
    one("ffr".into(), sve::ffr_id(0), sve::P_SLICE_BYTES, pb);
    out
}

/// Never called: arm64 guests take no interrupts, so Wait blocks in the
/// launcher ([`LAUNCHER_WAITS`], `crate::park`) rather than in KVM_RUN.
pub fn halt(_vcpu: &VcpuFd) -> Result<()> {
    Ok(())
}

/// Wait and Wake are served by the launcher (`crate::park`): a vCPU
/// thread blocks on a condition variable until its watch word changes.
pub const LAUNCHER_WAITS: bool = true;

/// The launcher serves async page faults (see [`async_pf_supported`](super::caps::async_pf_supported)).
pub const SOFT_APF: bool = true;

/// Registration needs nothing from KVM here: the launcher keeps the area.
pub fn apf_enable(_vcpu: &VcpuFd, _area: u64, _vector: u32) -> Result<()> {
    Ok(())
}

/// KVM_RUN failed with EFAULT on a lazy page (SIGBUS mode): inject an
/// external data abort at the faulting instruction and return the faulting
/// address. KVM reports no address with the EFAULT, but the injection sets
/// FAR_EL1 to it (the stage-2 fault's FAR), which the launcher reads back;
/// lazy regions are identity mapped, so it is the guest-physical address.
pub fn inject_lazy_fault(vcpu: &VcpuFd) -> Result<u64> {
    let mut ev = kvm_bindings::kvm_vcpu_events::default();
    ev.exception.ext_dabt_pending = 1;
    vcpu.set_vcpu_events(&ev)
        .kvm("KVM_SET_VCPU_EVENTS(ext_dabt_pending)")?;
    let mut far = [0u8; 8];
    vcpu.get_one_reg(FAR_EL1, &mut far)
        .kvm("KVM_GET_ONE_REG(FAR_EL1) after the injection")?;
    Ok(u64::from_le_bytes(far))
}

/// Never called: a waiting arm64 vCPU is woken through `crate::park`.
pub fn wake(_vm: &VmFd, _id: u32) -> Result<()> {
    Ok(())
}
