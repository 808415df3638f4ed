//! aarch64 crash reports: a fault frame from the vector stub, or the vCPU's
//! registers after a crash KVM reported itself.

use kvm_ioctls::VcpuFd;
use vessel_abi::Arm64FaultFrame;

use super::regs::{get, ESR_EL1, FAR_EL1, PC, PSTATE, SP_EL1};
use crate::elf::GuestImage;
use crate::memory::GuestRam;

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
    let far = if far_is_valid(esr) {
        format!(", FAR {:#x}", f.far)
    } else {
        String::new()
    };
    format!(
        "guest exception: {}, {kind} vector {}, ESR {esr:#010x}{detail}{far}, ELR {:#x}{sym}, SP {:#x}",
        ec_name(ec),
        f.kind,
        f.elr,
        f.sp
    )
}

/// Whether FAR_EL1 holds an address for this syndrome: the architecture
/// defines it only for instruction and data aborts (unless ESR.FnV says
/// it is not valid), PC alignment faults and watchpoints; for every other
/// class it is UNKNOWN, so a report must not print it.
fn far_is_valid(esr: u64) -> bool {
    const FNV: u64 = 1 << 10;
    match esr >> 26 {
        0x20 | 0x21 | 0x24 | 0x25 => esr & FNV == 0,
        0x22 | 0x34 | 0x35 => true,
        _ => false,
    }
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

/// Bytes from VBAR_EL1 within which guest-rt's exception code (the
/// 2 KiB table and the common paths after it) lies.
const STUB_CODE_BYTES: u64 = 0x1000;

/// Whether a store to the fault doorbell came from the exception stubs:
/// the app runs at EL1 too, so the storing instruction's address decides.
pub fn fault_report_trusted(vcpu: &VcpuFd, image: &GuestImage) -> bool {
    let base = image.header.vector_table;
    get(vcpu, PC).is_some_and(|pc| pc.wrapping_sub(base) < STUB_CODE_BYTES)
}
