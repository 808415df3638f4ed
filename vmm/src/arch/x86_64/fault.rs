//! x86_64 crash reports: a fault frame from the ring-0 stub, or the vCPU's
//! state after a crash KVM reported itself.

use kvm_ioctls::VcpuFd;
use vessel_abi::X86FaultFrame;

use crate::elf::GuestImage;
use crate::memory::GuestRam;

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

/// Whether a store to the fault doorbell came from the ring-0 stubs: only
/// they run at CPL0, so a report from CPL3 (the app) is forged.
pub fn fault_report_trusted(vcpu: &VcpuFd, _image: &GuestImage) -> bool {
    vcpu.get_sregs().is_ok_and(|s| s.cs.selector & 3 == 0)
}
