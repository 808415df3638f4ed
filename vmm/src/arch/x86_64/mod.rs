//! x86_64: everything architecture-specific on the host.
//!
//! The launcher prepares all privileged state (page tables, GDT, IDT, TSS,
//! CPUID, control registers, XCR0) and starts each vCPU directly at CPL3:
//! on this project's machines CPL0 guest code is emulated instruction by
//! instruction, CPL3 code runs natively. On VMX hosts this costs nothing.

mod descriptors;
pub mod layout;
pub mod paging;

use kvm_bindings::{kvm_xcrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vessel_abi::arch::x86_64 as abi;
use vessel_abi::X86FaultFrame;

use crate::caps::{CapInfo, CapKind};
use crate::elf::{GuestImage, Machine};
use crate::error::{Error, KvmContext, Result};
use crate::memory::GuestRam;
use crate::sve::{SveRequest, VlSet};
use crate::vm::Layout;
use descriptors::*;
use layout::*;
use paging::{PageTables, USER, WRITABLE};

/// Whether this architecture has SVE (the GuestHeader request applies).
pub const HAS_SVE: bool = false;
pub const MACHINE: Machine = Machine::X86_64;
pub const RAM_BASE: u64 = 0;
pub const MAX_RAM: u64 = abi::MAX_RAM;
pub const MAX_VCPUS: u32 = layout::MAX_VCPUS;
/// Lowest RAM size that leaves room for the system area, an image and a stack.
pub const MIN_RAM: u64 = 4 << 20;

/// The guest-physical addresses this layout uses for RAM-backed data.
pub fn image_window(ram_size: u64) -> (u64, u64) {
    (abi::IMAGE_BASE, ram_size)
}

pub fn boot_area() -> (u64, u64) {
    (BOOT_AREA, abi::IMAGE_BASE)
}

/// The doorbell addresses (see `vm::Doorbell`).
pub use abi::{DOORBELL, DOORBELL_FAULT};

/// Create the VM; `_top` (the highest guest-physical address used) needs no
/// choice on x86_64.
pub fn create_vm(kvm: &Kvm, _top: u64) -> Result<VmFd> {
    let vm = kvm.create_vm().kvm("KVM_CREATE_VM")?;
    // Needed on VMX hosts before the first KVM_RUN; harmless elsewhere.
    vm.set_tss_address(0xfffb_d000).kvm("KVM_SET_TSS_ADDR")?;
    Ok(vm)
}

/// The in-kernel interrupt controller, created after the memory slots.
///
/// Vessel needs only the local APIC (MSIs, LAPIC timer, halt and wake, KVM's
/// async-PF "ready" interrupt), so it asks for the split irqchip (LAPIC in
/// the kernel, no PIC/IOAPIC) where KVM has it. Measured here: a VM with the
/// full irqchip takes 10-13 ms to tear down, a split one well under 1 ms;
/// and a memslot added after either irqchip waits 6-8 ms for an SRCU grace
/// period, against 0.1 ms before it. Both would dominate boot time.
pub fn create_devices(vm: &VmFd) -> Result<()> {
    if vm.check_extension_raw(kvm_bindings::KVM_CAP_SPLIT_IRQCHIP.into()) == 1 {
        let cap = kvm_bindings::kvm_enable_cap {
            cap: kvm_bindings::KVM_CAP_SPLIT_IRQCHIP,
            args: [0, 0, 0, 0],
            ..Default::default()
        };
        vm.enable_cap(&cap)
            .kvm("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP)")
    } else {
        vm.create_irq_chip().kvm("KVM_CREATE_IRQCHIP")
    }
}

pub use layout::{LAZY_ALIGN, LAZY_BASE, LAZY_LIMIT};

/// Write GDT, TSSs, IDT and page tables into guest memory. `lazy` lists the
/// `(guest address, bytes)` of each lazy region, mapped read-only.
pub fn setup_memory(
    ram: &GuestRam,
    l: &Layout,
    image: &GuestImage,
    lazy: &[(u64, u64)],
) -> Result<()> {
    let mut gdt: Vec<u64> = gdt_fixed().to_vec();
    for i in 0..l.vcpus as u64 {
        let tss_base = TSS + i * TSS_STRIDE;
        let stack = RING0_STACKS + i * RING0_STACK_SIZE;
        // RSP0 at the top of the lower 12 KiB, IST1 (double fault) above it.
        let rsp0 = stack + RING0_STACK_SIZE - 0x1000;
        let ist1 = stack + RING0_STACK_SIZE;
        ram.write(tss_base, &tss(rsp0, ist1))?;
        gdt.extend_from_slice(&tss_descriptor(tss_base));
    }
    ram.write(GDT, &words(&gdt))?;

    let h = &image.header;
    if h.vector_count != abi::EXCEPTION_VECTORS || h.vector_stride != abi::STUB_STRIDE {
        return Err(Error::Elf(format!(
            "guest header declares {} exception stubs {} bytes apart, want {} and {}",
            h.vector_count,
            h.vector_stride,
            abi::EXCEPTION_VECTORS,
            abi::STUB_STRIDE
        )));
    }
    let mut idt = Vec::with_capacity(512);
    for v in 0..256u64 {
        if v < abi::EXCEPTION_VECTORS as u64 {
            let ist = if v == 8 { 1 } else { 0 };
            idt.extend_from_slice(&interrupt_gate(
                h.vector_table + v * abi::STUB_STRIDE,
                ist,
                0,
            ));
        } else if h.irq_entry != 0 {
            // Every external interrupt goes to the guest's one IRQ stub.
            idt.extend_from_slice(&interrupt_gate(h.irq_entry, 0, 0));
        } else {
            idt.extend_from_slice(&[0, 0]);
        }
    }
    ram.write(IDT, &words(&idt))?;

    let mut pt = PageTables::new(PAGE_TABLES, BOOT_AREA);
    pt.map(0x1000, SYSTEM_END, WRITABLE)?;
    // User memory, with an unmapped guard page below each vCPU stack.
    let mut at = SYSTEM_END;
    for &(bottom, _) in l.stacks.iter().rev() {
        let guard = bottom - 0x1000;
        pt.map(at, guard, WRITABLE | USER)?;
        at = bottom;
    }
    pt.map(at, l.ram_end, WRITABLE | USER)?;
    pt.map(abi::DOORBELL, abi::DOORBELL + 0x20_0000, WRITABLE | USER)?;
    for &(gpa, len) in lazy {
        pt.map(gpa, gpa + len, USER)?;
    }
    pt.write(ram)?;
    Ok(())
}

fn words(w: &[u64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Bits of XCR0 Vessel enables when the host has them: x87, SSE, AVX,
/// AVX-512 opmask/ZMM_Hi256/Hi16_ZMM.
const XCR0_WANTED: u64 = 0xe7;

/// What the host lets a vCPU be: KVM's supported CPUID table.
pub type HostCpu = kvm_bindings::CpuId;

/// Ask KVM for the CPU model. Slow where the host is itself a guest (every
/// host CPUID traps: about 0.5 ms here), so `Vm::new` runs it on a second
/// thread while it builds the VM.
pub fn host_cpu(kvm: &Kvm) -> Result<HostCpu> {
    kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .kvm("KVM_GET_SUPPORTED_CPUID")
}

/// Configure vCPU `id`: CPUID, XCR0, segments, control registers, entry state.
#[allow(clippy::too_many_arguments)]
pub fn setup_vcpu(
    kvm: &Kvm,
    cpuid: &HostCpu,
    vcpu: &VcpuFd,
    id: u32,
    l: &Layout,
    image: &GuestImage,
    boot: u64,
    _vector_bits: u32,
) -> Result<()> {
    let entry = image.entry;
    vcpu.set_cpuid2(cpuid).kvm("KVM_SET_CPUID2")?;
    let leaf = |f: u32, i: u32| {
        cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == f && e.index == i)
            .copied()
    };
    let has_xsave = leaf(1, 0).map(|e| e.ecx & (1 << 26) != 0).unwrap_or(false);

    let mut sregs = vcpu.get_sregs().kvm("KVM_GET_SREGS")?;
    let gdt = gdt_fixed();
    sregs.cs = segment(gdt[4], USER_CS);
    let ds = segment(gdt[3], USER_DS);
    sregs.ds = ds;
    sregs.es = ds;
    sregs.fs = ds;
    sregs.gs = ds;
    sregs.ss = ds;
    sregs.tr = task_register(TSS + id as u64 * TSS_STRIDE, id as u16);
    sregs.gdt.base = GDT;
    sregs.gdt.limit = ((5 + 2 * l.vcpus as u64) * 8 - 1) as u16;
    sregs.idt.base = IDT;
    sregs.idt.limit = 256 * 16 - 1;
    sregs.cr3 = PAGE_TABLES;
    // PE | MP | ET | NE | WP | PG
    sregs.cr0 = (1 << 0) | (1 << 1) | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 31);
    // PAE | OSFXSR | OSXMMEXCPT (| OSXSAVE)
    sregs.cr4 = (1 << 5) | (1 << 9) | (1 << 10) | if has_xsave { 1 << 18 } else { 0 };
    // LME | LMA
    sregs.efer = (1 << 8) | (1 << 10);
    // LAPIC enabled in x2APIC mode (BSP): the guest's interrupt stub EOIs
    // with one wrmsr, no MMIO page needed.
    sregs.apic_base = 0xfee0_0000 | (1 << 11) | (1 << 10) | if id == 0 { 1 << 8 } else { 0 };
    vcpu.set_sregs(&sregs).kvm("KVM_SET_SREGS")?;
    // Spurious-interrupt vector register: APIC software-enabled, vector 0xff.
    set_msrs(vcpu, &[(msr::X2APIC_SVR, 0x1ff)], "x2APIC SVR")?;

    if has_xsave && kvm.check_extension_raw(kvm_bindings::KVM_CAP_XCRS.into()) > 0 {
        let host = leaf(0xd, 0)
            .map(|e| e.eax as u64 | (e.edx as u64) << 32)
            .unwrap_or(3);
        let mut xcrs = kvm_xcrs {
            nr_xcrs: 1,
            ..Default::default()
        };
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = (host & XCR0_WANTED) | 1;
        vcpu.set_xcrs(&xcrs).kvm("KVM_SET_XCRS")?;
    }

    let stack_top = l.stacks[id as usize].1;
    let regs = kvm_bindings::kvm_regs {
        rip: entry,
        rsp: stack_top,
        rdi: boot,
        // IF=1: CPL3 code cannot change IF, and "page ready" / wake-up
        // interrupts must reach the guest's stub.
        rflags: 0x202,
        ..Default::default()
    };
    vcpu.set_regs(&regs).kvm("KVM_SET_REGS")?;
    Ok(())
}

/// vCPU initialisation before its registers are set. SVE is an arm64
/// feature: asking for it here is an error.
pub fn init_vcpu(
    _kvm: &Kvm,
    _vm: &VmFd,
    _vcpu: &VcpuFd,
    sve: Option<SveRequest>,
) -> Result<Option<(u32, VlSet)>> {
    match sve {
        Some(req) => Err(Error::Config(format!(
            "SVE ({req}) is an arm64 feature; --sve-vl/--sve cannot be used on x86_64"
        ))),
        None => Ok(None),
    }
}

/// General-purpose registers of the vCPU (`--dump-regs`; x86_64 has no SVE).
pub fn dump_regs(vcpu: &VcpuFd, id: u32, _vector_bits: u32) -> String {
    match vcpu.get_regs() {
        Ok(r) => format!(
            "vcpu{id} rip {:#x} rsp {:#x} rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} rbp {:#x} r8 {:#x} r9 {:#x} r10 {:#x} r11 {:#x} r12 {:#x} r13 {:#x} r14 {:#x} r15 {:#x} rflags {:#x}\n",
            r.rip, r.rsp, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rflags
        ),
        Err(e) => format!("vcpu{id}: KVM_GET_REGS: {e}\n"),
    }
}

/// Cycle counter frequency the guest sees (TSC), in kHz.
pub fn counter_khz(vcpu: &VcpuFd) -> u64 {
    vcpu.get_tsc_khz().map(|k| k as u64).unwrap_or(0)
}

const VECTOR_NAMES: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "NMI",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "bound range (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack fault (#SS)",
    "general protection (#GP)",
    "page fault (#PF)",
    "reserved 15",
    "x87 error (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD error (#XM)",
    "virtualization (#VE)",
    "control protection (#CP)",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "hypervisor injection (#HV)",
    "VMM communication (#VC)",
    "security (#SX)",
    "reserved 31",
];

fn pf_error(code: u64) -> String {
    let mut parts = vec![if code & 1 != 0 {
        "protection"
    } else {
        "not-present"
    }];
    parts.push(if code & 2 != 0 { "write" } else { "read" });
    parts.push(if code & 4 != 0 { "user" } else { "supervisor" });
    if code & 16 != 0 {
        parts.push("instruction fetch");
    }
    parts.join(", ")
}

/// One line describing a fatal guest exception reported by the ring-0 stub.
pub fn fault_report(ram: &GuestRam, vcpu: &VcpuFd, image: &GuestImage, frame_gpa: u64) -> String {
    let f: X86FaultFrame = match ram.read_pod(frame_gpa) {
        Ok(f) => f,
        Err(e) => {
            return format!(
                "guest reported an exception with an unreadable frame at {frame_gpa:#x}: {e}"
            )
        }
    };
    let cr2 = vcpu.get_sregs().map(|s| s.cr2).unwrap_or(0);
    let name = VECTOR_NAMES
        .get(f.vector as usize)
        .copied()
        .unwrap_or("unknown vector");
    let sym = image
        .symbolize(f.rip)
        .map(|s| format!(" <{s}>"))
        .unwrap_or_default();
    let detail = if f.vector == 14 {
        format!(" [{}]", pf_error(f.error_code))
    } else {
        String::new()
    };
    format!(
        "guest exception: {name}, vector {}, error code {:#x}{detail}, rip {:#x}{sym}, cr2 {cr2:#x}, rsp {:#x}, cpl {}",
        f.vector, f.error_code, f.rip, f.rsp, f.cs & 3
    )
}

/// One line describing the vCPU's state after a crash KVM reported itself
/// (triple fault, internal error, failed entry).
pub fn crash_report(vcpu: &VcpuFd, image: &GuestImage) -> String {
    let regs = vcpu.get_regs().ok();
    let sregs = vcpu.get_sregs().ok();
    let rip = regs.map(|r| r.rip).unwrap_or(0);
    let sym = image
        .symbolize(rip)
        .map(|s| format!(" <{s}>"))
        .unwrap_or_default();
    format!(
        "rip {rip:#x}{sym}, rsp {:#x}, cr2 {:#x}, cpl {}",
        regs.map(|r| r.rsp).unwrap_or(0),
        sregs.map(|s| s.cr2).unwrap_or(0),
        sregs.map(|s| s.cs.selector & 3).unwrap_or(0)
    )
}

/// Capabilities Vessel relies on or could use on x86_64.
pub const CAPS: &[CapInfo] = &[
    CapInfo::new(
        "KVM_CAP_IRQCHIP",
        kvm_bindings::KVM_CAP_IRQCHIP,
        CapKind::Bool,
        true,
        "in-kernel LAPIC: interrupts, halt and wake",
    ),
    CapInfo::new(
        "KVM_CAP_SIGNAL_MSI",
        kvm_bindings::KVM_CAP_SIGNAL_MSI,
        CapKind::Bool,
        false,
        "wake a halted vCPU from a host thread",
    ),
    CapInfo::new(
        "KVM_CAP_X2APIC_API",
        kvm_bindings::KVM_CAP_X2APIC_API,
        CapKind::Bitmask,
        false,
        "x2APIC ids and broadcast (not used yet)",
    ),
    CapInfo::new(
        "KVM_CAP_ASYNC_PF",
        kvm_bindings::KVM_CAP_ASYNC_PF,
        CapKind::Bool,
        false,
        "KVM async page faults for lazy regions",
    ),
    CapInfo::new(
        "KVM_CAP_ASYNC_PF_INT",
        kvm_bindings::KVM_CAP_ASYNC_PF_INT,
        CapKind::Bool,
        false,
        "'page ready' as an interrupt vector",
    ),
    CapInfo::new(
        "KVM_CAP_XSAVE",
        kvm_bindings::KVM_CAP_XSAVE,
        CapKind::Bool,
        false,
        "save/restore AVX/AVX-512 state",
    ),
    CapInfo::new(
        "KVM_CAP_XCRS",
        kvm_bindings::KVM_CAP_XCRS,
        CapKind::Bool,
        false,
        "set XCR0 for SSE/AVX/AVX-512 at CPL3",
    ),
    CapInfo::new(
        "KVM_CAP_TSC_DEADLINE_TIMER",
        kvm_bindings::KVM_CAP_TSC_DEADLINE_TIMER,
        CapKind::Bool,
        false,
        "LAPIC timer for guest sleeps (not used yet)",
    ),
    CapInfo::new(
        "KVM_CAP_GET_TSC_KHZ",
        kvm_bindings::KVM_CAP_GET_TSC_KHZ,
        CapKind::Bool,
        false,
        "guest clock rate in BootInfo",
    ),
];

use vessel_abi::arch::x86_64::msr;
const KVM_ASYNC_PF_ENABLED: u64 = 1 << 0;
const KVM_ASYNC_PF_DELIVERY_AS_INT: u64 = 1 << 3;
const KVM_CPUID_FEATURES: u32 = 0x4000_0001;
const KVM_FEATURE_ASYNC_PF: u32 = 1 << 4;
const KVM_FEATURE_ASYNC_PF_INT: u32 = 1 << 14;

fn set_msrs(vcpu: &VcpuFd, msrs: &[(u32, u64)], what: &str) -> Result<()> {
    let entries: Vec<kvm_bindings::kvm_msr_entry> = msrs
        .iter()
        .map(|&(index, data)| kvm_bindings::kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let m = kvm_bindings::Msrs::from_entries(&entries)
        .map_err(|e| Error::Other(format!("building KVM_SET_MSRS for {what}: {e:?}")))?;
    let n = vcpu.set_msrs(&m).kvm(&format!("KVM_SET_MSRS ({what})"))?;
    if n != msrs.len() {
        return Err(Error::Other(format!(
            "KVM_SET_MSRS ({what}) set {n} of {} MSRs (first refused: {:#x})",
            msrs.len(),
            msrs[n].0
        )));
    }
    Ok(())
}

/// Whether this host gives KVM async page faults with interrupt delivery:
/// both capabilities, and both paravirt CPUID bits KVM supports.
pub fn async_pf_supported(kvm: &Kvm, cpuid: &HostCpu) -> bool {
    let cap = |c: u32| kvm.check_extension_raw(c.into()) == 1;
    if !cap(kvm_bindings::KVM_CAP_ASYNC_PF) || !cap(kvm_bindings::KVM_CAP_ASYNC_PF_INT) {
        return false;
    }
    let want = KVM_FEATURE_ASYNC_PF | KVM_FEATURE_ASYNC_PF_INT;
    cpuid
        .as_slice()
        .iter()
        .any(|e| e.function == KVM_CPUID_FEATURES && e.eax & want == want)
}

/// Serve `Call::ApfEnable`: point KVM's async-PF MSRs at the guest's area.
/// The area and vector were checked by the caller.
pub fn apf_enable(vcpu: &VcpuFd, area: u64, vector: u32) -> Result<()> {
    set_msrs(
        vcpu,
        &[
            (msr::KVM_ASYNC_PF_INT, vector as u64),
            (
                msr::KVM_ASYNC_PF_EN,
                area | KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT,
            ),
        ],
        "async page faults",
    )
}

/// Wake a halted vCPU 0 from any thread: an MSI on [`layout::WAKE_VECTOR`].
pub fn wake(vm: &VmFd) -> Result<()> {
    let msi = kvm_bindings::kvm_msi {
        address_lo: 0xfee0_0000,
        data: layout::WAKE_VECTOR,
        ..Default::default()
    };
    vm.signal_msi(msi).kvm("KVM_SIGNAL_MSI").map(|_| ())
}

/// Make a halted vCPU runnable again (a Wait whose timeout passed).
pub fn unhalt(vcpu: &VcpuFd) -> Result<()> {
    let mp = kvm_bindings::kvm_mp_state {
        mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE,
    };
    vcpu.set_mp_state(mp).kvm("KVM_SET_MP_STATE(RUNNABLE)")
}

/// Halt the vCPU until an interrupt arrives (the "wait" hypercall).
pub fn halt(vcpu: &VcpuFd) -> Result<()> {
    let mp = kvm_bindings::kvm_mp_state {
        mp_state: kvm_bindings::KVM_MP_STATE_HALTED,
    };
    vcpu.set_mp_state(mp).kvm("KVM_SET_MP_STATE(HALTED)")
}

/// KVM serves async page faults itself here; the launcher never does.
pub const SOFT_APF: bool = false;

/// Never reached: lazy regions stay in MISSING mode on x86_64.
pub fn inject_lazy_fault(_vcpu: &VcpuFd) -> Result<u64> {
    Err(Error::Other(
        "launcher-served page faults are not used on x86_64".into(),
    ))
}
