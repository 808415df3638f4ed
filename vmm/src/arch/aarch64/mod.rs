//! aarch64: everything architecture-specific on the host.
//!
//! The app runs at EL1 (EL1h: SP_EL1 is its stack), not EL0. On arm64 KVM
//! EL1 code runs natively, so nothing is lost, and it keeps guest-rt tiny:
//! no exception-return path, no syscall layer, FP/SVE and the counter
//! usable directly, and the only privileged code is a 16-entry vector table
//! that reports a fault frame through the fault doorbell. The launcher sets
//! every privileged register itself before the first KVM_RUN: page tables
//! (identity map, 4 KiB granule, 39-bit VA), MAIR/TCR/TTBR0/SCTLR (MMU and
//! caches on), VBAR_EL1 (the guest's table from its GuestHeader), CPACR_EL1
//! (FP, and SVE when granted), SP_EL1/SP_EL0 and PSTATE (EL1h, DAIF masked).
//!
//! Memory map (identity mapped):
//! ```text
//! 0x0900_0000  doorbell page (no memslot: stores exit as MMIO)  Device-nGnRnE
//! 0x4000_0000  RAM_BASE
//!   +0x1_0000  page tables
//!   +0x10_0000 boot area: BootInfo, vCPU table, hypercall frames, args/env
//!   +0x20_0000 guest image (IMAGE_BASE), heap, then per-vCPU stacks at the top
//!              of RAM with an unmapped guard page below each
//! ```

mod paging;

use kvm_bindings::{kvm_vcpu_init, KVM_ARM_VCPU_PSCI_0_2, KVM_ARM_VCPU_SVE};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vessel_abi::arch::aarch64 as abi;
use vessel_abi::Arm64FaultFrame;

use crate::caps::{CapInfo, CapKind};
use crate::elf::{GuestImage, Machine};
use crate::error::{Error, KvmContext, Result};
use crate::memory::GuestRam;
use crate::sve::{self, SveRequest, SveStage, VlSet, KVM_REG_ARM64, KVM_REG_SIZE_U64};
use crate::vm::Layout;

/// Whether this architecture has SVE (the GuestHeader request applies).
pub const HAS_SVE: bool = true;
pub const MACHINE: Machine = Machine::Aarch64;
pub const RAM_BASE: u64 = abi::RAM_BASE;
/// Largest RAM: what the page-table area and a 39-bit VA space hold.
pub const MAX_RAM: u64 = abi::MAX_RAM;
pub const MIN_RAM: u64 = 4 << 20;
pub const MAX_VCPUS: u32 = 32;

const PAGE_TABLES: u64 = RAM_BASE + 0x1_0000;
const BOOT_AREA: u64 = RAM_BASE + 0x10_0000;
/// Entries of the VBAR_EL1 table and its alignment.
const VECTOR_ENTRIES: u32 = abi::EXCEPTION_VECTORS;
const VECTOR_ALIGN: u64 = 0x800;

const _: () = {
    assert!(BOOT_AREA < abi::IMAGE_BASE);
    assert!(PAGE_TABLES < BOOT_AREA);
    assert!(RAM_BASE + MAX_RAM <= 1 << paging::VA_BITS);
};

pub fn image_window(ram_end: u64) -> (u64, u64) {
    (abi::IMAGE_BASE, ram_end)
}

pub fn boot_area() -> (u64, u64) {
    (BOOT_AREA, abi::IMAGE_BASE)
}

/// The doorbell addresses (see `vm::Doorbell`).
pub use abi::{DOORBELL, DOORBELL_FAULT};

/// Lazy regions live in `[LAZY_BASE, LAZY_LIMIT)`, above the largest RAM
/// and inside the 39-bit VA space, each starting `LAZY_ALIGN` aligned.
pub const LAZY_BASE: u64 = 0x20_0000_0000;
pub const LAZY_LIMIT: u64 = LAZY_BASE + (64 << 30);
pub const LAZY_ALIGN: u64 = 0x20_0000;

const _: () = {
    assert!(RAM_BASE + MAX_RAM <= LAZY_BASE);
    assert!(LAZY_LIMIT <= 1 << paging::VA_BITS);
};

/// Create a VM whose IPA size holds every guest-physical address below
/// `top`; refuse before creating it when the host cannot.
pub fn create_vm(kvm: &Kvm, top: u64) -> Result<VmFd> {
    let (vm_type, _bits) =
        crate::ipa::choose(top, kvm.get_host_ipa_limit()).map_err(Error::Config)?;
    let vm = kvm
        .create_vm_with_type(vm_type)
        .kvm(format!("KVM_CREATE_VM(type {vm_type})"))?;
    // Loads/stores KVM cannot decode (ldp, SVE) to a hole would fail KVM_RUN;
    // with this they exit as KVM_EXIT_ARM_NISV, reported as a guest fault.
    if kvm.check_extension_raw(kvm_bindings::KVM_CAP_ARM_NISV_TO_USER.into()) > 0 {
        let cap = kvm_bindings::kvm_enable_cap {
            cap: kvm_bindings::KVM_CAP_ARM_NISV_TO_USER,
            ..Default::default()
        };
        vm.enable_cap(&cap)
            .kvm("KVM_ENABLE_CAP(ARM_NISV_TO_USER)")?;
    }
    Ok(vm)
}

/// In-kernel devices, created after the memslot: none on aarch64 (the guest
/// runs with interrupts masked; async page faults need no interrupt, see
/// [`async_pf_supported`]).
pub fn create_devices(_vm: &VmFd) -> Result<()> {
    Ok(())
}

/// Write the page tables and check the guest's vector table. `lazy` lists
/// the `(guest address, bytes)` of each lazy region, mapped read-only.
pub fn setup_memory(
    ram: &GuestRam,
    l: &Layout,
    image: &GuestImage,
    lazy: &[(u64, u64)],
) -> Result<()> {
    let h = &image.header;
    if h.vector_count != VECTOR_ENTRIES
        || !h.vector_table.is_multiple_of(VECTOR_ALIGN)
        || h.vector_table < abi::IMAGE_BASE
        || h.vector_table.saturating_add(VECTOR_ALIGN) > image.end()
    {
        return Err(Error::Elf(format!(
            "guest header declares {} vectors at {:#x}; want {VECTOR_ENTRIES} at a 2 KiB-aligned address inside the image",
            h.vector_count, h.vector_table
        )));
    }
    let mut pt = paging::PageTables::new(PAGE_TABLES, BOOT_AREA);
    pt.map(abi::DOORBELL, abi::DOORBELL + 0x1000, paging::DEVICE)?;
    let mut at = RAM_BASE;
    for &(bottom, _) in l.stacks.iter().rev() {
        pt.map(at, bottom - 0x1000, paging::NORMAL)?;
        at = bottom;
    }
    pt.map(at, l.ram_end, paging::NORMAL)?;
    for &(gpa, len) in lazy {
        pt.map(gpa, gpa + len, paging::READ_ONLY)?;
    }
    pt.write(ram)
}

// --- registers -------------------------------------------------------------

const KVM_REG_ARM_CORE: u64 = 0x0010 << 16;
const KVM_REG_ARM64_SYSREG: u64 = 0x0013 << 16;

/// Core register id from its byte offset in `struct kvm_regs`.
const fn core_reg(offset: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4)
}
const fn sys_reg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
    KVM_REG_ARM64
        | KVM_REG_SIZE_U64
        | KVM_REG_ARM64_SYSREG
        | (op0 << 14)
        | (op1 << 11)
        | (crn << 7)
        | (crm << 3)
        | op2
}

const X0: u64 = core_reg(0);
const SP_EL0: u64 = core_reg(31 * 8);
const PC: u64 = core_reg(32 * 8);
const PSTATE: u64 = core_reg(33 * 8);
const SP_EL1: u64 = core_reg(34 * 8);
const SCTLR_EL1: u64 = sys_reg(3, 0, 1, 0, 0);
const CPACR_EL1: u64 = sys_reg(3, 0, 1, 0, 2);
const TTBR0_EL1: u64 = sys_reg(3, 0, 2, 0, 0);
const TCR_EL1: u64 = sys_reg(3, 0, 2, 0, 2);
const ESR_EL1: u64 = sys_reg(3, 0, 5, 2, 0);
const FAR_EL1: u64 = sys_reg(3, 0, 6, 0, 0);
const MAIR_EL1: u64 = sys_reg(3, 0, 10, 2, 0);
const VBAR_EL1: u64 = sys_reg(3, 0, 12, 0, 0);

/// EL1h with D, A, I, F masked.
const PSTATE_EL1H: u64 = 0x3c5;
/// MAIR attr0 Device-nGnRnE, attr1 Normal write-back (see paging).
const MAIR: u64 = 0xff << 8;
/// T0SZ=25 (39-bit VA), inner/outer WB-WA, inner shareable, 4 KiB granule,
/// EPD1 (no TTBR1 walks), IPS=48 bits (clamped to the implemented size).
const TCR: u64 =
    (64 - paging::VA_BITS as u64) | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (5 << 32);
/// RES1 bits of ARMv8.0 SCTLR_EL1, then M (MMU), C, SA, I.
const SCTLR: u64 = 0x30d0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 12);
const CPACR_FPEN: u64 = 3 << 20;
const CPACR_ZEN: u64 = 3 << 16;

fn set(vcpu: &VcpuFd, id: u64, v: u64, name: &str) -> Result<()> {
    vcpu.set_one_reg(id, &v.to_le_bytes())
        .map(|_| ())
        .kvm(format!("KVM_SET_ONE_REG({name})"))
}

fn get(vcpu: &VcpuFd, id: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    vcpu.get_one_reg(id, &mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

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
            return Err(Error::Config(format!(
                "SVE ({req}) requested but this host has no KVM_CAP_ARM_SVE (it offers no SVE vector lengths)"
            )));
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
    let stage = SveStage::Init
        .read(VlSet::from_bytes(&raw))
        .map_err(Error::Config)?;
    let (stage, set, bits) = stage.choose(req).map_err(Error::Config)?;
    vcpu.set_one_reg(sve::VLS_ID, &set.to_bytes()).kvm(format!(
        "KVM_SET_ONE_REG(SVE_VLS = {} bits)",
        set.describe()
    ))?;
    let feature = KVM_ARM_VCPU_SVE as std::os::raw::c_int;
    vcpu.vcpu_finalize(&feature)
        .kvm("KVM_ARM_VCPU_FINALIZE(SVE)")?;
    let SveStage::Finalized(set) = stage.finalize().map_err(Error::Config)? else {
        return Err(Error::Other(
            "SVE set-up did not reach the finalized stage".into(),
        ));
    };
    let mut back = [0u8; 64];
    vcpu.get_one_reg(sve::VLS_ID, &mut back)
        .kvm("KVM_GET_ONE_REG(SVE_VLS) after finalize")?;
    let got = VlSet::from_bytes(&back);
    if got != set {
        return Err(Error::Other(format!(
            "KVM kept SVE lengths {} bits, not the {} bits written",
            got.describe(),
            set.describe()
        )));
    }
    Ok(Some((bits, set)))
}

/// What the launcher learns about the host CPU once per process: nothing
/// on aarch64 (vCPU features come from KVM_ARM_PREFERRED_TARGET per vCPU).
pub type HostCpu = ();

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

fn ec_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "undefined instruction",
        0x01 => "WFI/WFE trap",
        0x07 => "FP/SIMD access trap",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x18 => "system register trap",
        0x19 => "SVE access trap",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2c => "FP exception",
        0x2f => "SError",
        0x30..=0x35 => "debug exception",
        0x3c => "breakpoint (BRK)",
        _ => "unknown exception class",
    }
}

const KIND_NAMES: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

fn data_abort_detail(esr: u64) -> String {
    let dfsc = esr & 0x3f;
    let what = match dfsc {
        0x04..=0x07 => "translation fault",
        0x09..=0x0b => "access flag fault",
        0x0d..=0x0f => "permission fault",
        0x10 => "external abort",
        0x21 => "alignment fault",
        _ => "fault",
    };
    let rw = if esr & (1 << 6) != 0 { "write" } else { "read" };
    format!(" [{what}, level {}, {rw}]", dfsc & 3)
}

/// One line describing a fatal exception the vector stub reported.
pub fn fault_report(ram: &GuestRam, _vcpu: &VcpuFd, image: &GuestImage, frame_gpa: u64) -> String {
    let f: Arm64FaultFrame = match ram.read_pod(frame_gpa) {
        Ok(f) => f,
        Err(e) => {
            return format!(
                "guest reported an exception with an unreadable frame at {frame_gpa:#x}: {e}"
            )
        }
    };
    // Some kernels set ESR's upper half; the architectural syndrome is 32 bits.
    let esr = f.esr & 0xffff_ffff;
    let ec = esr >> 26;
    let sym = image
        .symbolize(f.elr)
        .map(|s| format!(" <{s}>"))
        .unwrap_or_default();
    let detail = if ec == 0x24 || ec == 0x25 || ec == 0x20 || ec == 0x21 {
        data_abort_detail(esr)
    } else {
        String::new()
    };
    let kind = KIND_NAMES
        .get((f.kind & 3) as usize)
        .copied()
        .unwrap_or("?");
    format!(
        "guest exception: {}, {kind} vector {}, ESR {esr:#010x}{detail}, FAR {:#x}, ELR {:#x}{sym}, SP {:#x}",
        ec_name(ec),
        f.kind,
        f.far,
        f.elr,
        f.sp
    )
}

/// One line describing the vCPU's state after a crash KVM reported itself.
pub fn crash_report(vcpu: &VcpuFd, image: &GuestImage) -> String {
    let pc = get(vcpu, PC).unwrap_or(0);
    let sym = image
        .symbolize(pc)
        .map(|s| format!(" <{s}>"))
        .unwrap_or_default();
    format!(
        "pc {pc:#x}{sym}, sp {:#x}, pstate {:#x}, ESR_EL1 {:#x}, FAR_EL1 {:#x}",
        get(vcpu, SP_EL1).unwrap_or(0),
        get(vcpu, PSTATE).unwrap_or(0),
        get(vcpu, ESR_EL1).unwrap_or(0) & 0xffff_ffff,
        get(vcpu, FAR_EL1).unwrap_or(0)
    )
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

/// The "wait" hypercall without async page faults: arm64 guests get no
/// interrupts, so there is nothing to wait for; return at once (a spurious
/// wake-up the guest retries). With async page faults the vCPU loop blocks
/// in `SoftApf::wait` instead.
pub fn halt(_vcpu: &VcpuFd) -> Result<()> {
    Ok(())
}

/// Whether the launcher offers async page faults: KVM has none on arm64,
/// so the launcher serves them itself (see `crate::softapf`): lazy regions
/// in userfaultfd SIGBUS mode make KVM_RUN fail with EFAULT, and the
/// launcher injects an external data abort (KVM_CAP_ARM_INJECT_EXT_DABT)
/// whose FAR tells it the page. "Ready" goes through the guest's ring and
/// the Wait hypercall, so no interrupt controller is needed.
pub fn async_pf_supported(kvm: &Kvm, _cpu: &HostCpu) -> bool {
    kvm.check_extension_raw(kvm_bindings::KVM_CAP_ARM_INJECT_EXT_DABT.into()) > 0
}

/// The launcher serves async page faults (see [`async_pf_supported`]).
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
    get(vcpu, FAR_EL1)
        .ok_or_else(|| Error::Other("KVM_GET_ONE_REG(FAR_EL1) failed after the injection".into()))
}

/// Wake a halted vCPU: nothing to do while `halt` does not halt.
pub fn wake(_vm: &VmFd) -> Result<()> {
    Ok(())
}
