//! x86_64 parts of the debugger (`--gdb`): the registers gdb sees (core,
//! x87, SSE and the AVX upper halves, from KVM_GET_REGS/SREGS/XSAVE), the
//! target description that names them, single steps (RFLAGS.TF),
//! int3 breakpoints, the debug registers, the page-table walk, and what a
//! debug trap or debug exit means.
//!
//! On this project's KVM (kvm_pvm) a #DB or #BP raised by CPL3 code is
//! delivered to the guest's own exception stub, never as KVM_EXIT_DEBUG:
//! the stub reports it on the fault doorbell, and [`resume_user`] puts the
//! vCPU back where it trapped (the stub keeps every register but rax, which
//! it saves below its frame). A KVM that does exit (KVM_EXIT_DEBUG) is
//! served too (`debug::hub::Hub::debug_exit`).
//!
//! AVX-512 (zmm, k0-k7) is not described: the machines this is tested on
//! have none, so gdb shows `$zmm0` as void (tests/gdb.rs checks it).

use gdbstub::arch::{Arch, Registers};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use kvm_bindings::{
    kvm_debug_exit_arch, kvm_guest_debug, kvm_regs, kvm_sregs, kvm_xsave, KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP,
};
use kvm_ioctls::VcpuFd;
use vessel_abi::zerocopy::IntoBytes;

use crate::error::{KvmContext, Result};

/// How many hardware breakpoints and watchpoints together (DR0-DR3).
pub const HW_SLOTS: usize = 4;

/// Whether the debug registers catch guest code here; Err: why not.
///
/// Measured on kvm_pvm (the KVM of this project's x86_64 machines): a
/// debug-register match in CPL3 code raises nothing, whether the registers
/// are set through KVM_SET_GUEST_DEBUG (KVM_GUESTDBG_USE_HW_BP) or as the
/// guest's own (KVM_SET_DEBUGREGS), while an int3 at CPL3 reaches the
/// guest's #BP stub. So breakpoints are int3s, and `hbreak`/`watch` are
/// refused there (gdb's `set can-use-hw-watchpoints 0` watches by
/// single-stepping instead).
pub fn hw_breakpoints() -> std::result::Result<(), &'static str> {
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        return Err(
            "hardware breakpoints and watchpoints are refused: this host's KVM \
            (kvm_pvm) does not raise debug-register matches in guest code; use `break` \
            (int3 breakpoints), or `set can-use-hw-watchpoints 0` for watchpoints",
        );
    }
    Ok(())
}

/// The gdbstub architecture: x86_64 with SSE and AVX.
pub enum GdbArch {}

impl Arch for GdbArch {
    type Usize = u64;
    type Registers = GdbRegs;
    type RegId = ();
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// The registers in the order [`TARGET_XML`] lists them: core and SSE
/// (gdbstub_arch's layout), then ymm0h-ymm15h.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GdbRegs {
    /// rax..r15, rip, eflags, segments, st0-7, x87 control, xmm, mxcsr.
    pub core: X86_64CoreRegs,
    /// The upper 128 bits of ymm0-ymm15.
    pub ymmh: [u128; 16],
}

/// Bytes of the core + SSE part of the `g` packet.
const CORE_BYTES: usize = 0x218;

impl Registers for GdbRegs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.core.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        self.core.gdb_serialize(&mut write_byte);
        for y in &self.ymmh {
            for b in y.to_le_bytes() {
                write_byte(Some(b));
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> std::result::Result<(), ()> {
        if bytes.len() != CORE_BYTES + 16 * 16 {
            return Err(());
        }
        self.core.gdb_deserialize(&bytes[..CORE_BYTES])?;
        for (y, c) in self
            .ymmh
            .iter_mut()
            .zip(bytes[CORE_BYTES..].chunks_exact(16))
        {
            *y = u128::from_le_bytes(c.try_into().map_err(|_| ())?);
        }
        Ok(())
    }
}

/// One stopped vCPU's registers, as read from KVM; written back on resume
/// when the debugger changed them.
pub struct Snapshot {
    regs: kvm_regs,
    sregs: kvm_sregs,
    xsave: Box<kvm_xsave>,
    /// The debugger wrote registers: put them back before running.
    pub dirty: bool,
}

// Offsets in the (standard-format) XSAVE area KVM_GET_XSAVE returns.
const FCW: usize = 0;
const FSW: usize = 2;
const FTW: usize = 4;
const FOP: usize = 6;
const FIP: usize = 8;
const FDP: usize = 16;
const MXCSR: usize = 24;
const ST0: usize = 32;
const XMM0: usize = 160;
const XSTATE_BV: usize = 512;
/// YMM_Hi128 (CPUID.(EAX=0xD,ECX=2).EBX on every AVX CPU).
const YMMH0: usize = 576;
/// XSTATE_BV bits: x87, SSE, AVX.
const XSTATE_FP_SSE_AVX: u64 = 0b111;

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn le_u128(b: &[u8], at: usize) -> u128 {
    let mut v = [0u8; 16];
    v.copy_from_slice(&b[at..at + 16]);
    u128::from_le_bytes(v)
}

impl Snapshot {
    /// Read a stopped vCPU's registers.
    pub fn take(fd: &VcpuFd) -> Result<Snapshot> {
        Ok(Snapshot {
            regs: fd.get_regs().kvm("KVM_GET_REGS (debugger)")?,
            sregs: fd.get_sregs().kvm("KVM_GET_SREGS (debugger)")?,
            xsave: Box::new(fd.get_xsave().kvm("KVM_GET_XSAVE (debugger)")?),
            dirty: false,
        })
    }

    /// Write the registers back (after the debugger changed them).
    pub fn put(&self, fd: &VcpuFd) -> Result<()> {
        fd.set_regs(&self.regs).kvm("KVM_SET_REGS (debugger)")?;
        // SAFETY: the area came from KVM_GET_XSAVE on this same vCPU; only
        // register contents and XSTATE_BV bits for x87/SSE/AVX (which the
        // launcher's XCR0 enables) were changed.
        unsafe { fd.set_xsave(&self.xsave) }.kvm("KVM_SET_XSAVE (debugger)")
    }

    /// The page-table root (CR3) the vCPU translates addresses with.
    pub fn page_root(&self) -> u64 {
        self.sregs.cr3
    }

    /// The program counter.
    pub fn pc(&self) -> u64 {
        self.regs.rip
    }

    /// The general-purpose registers as KVM has them (core dumps).
    pub fn regs(&self) -> &kvm_regs {
        &self.regs
    }

    /// The system registers as KVM has them (core dumps).
    pub fn sregs(&self) -> &kvm_sregs {
        &self.sregs
    }

    /// The XSAVE area as bytes (core dumps: NT_X86_XSTATE, NT_FPREGSET).
    pub fn xsave_bytes(&self) -> &[u8] {
        self.xsave.region.as_bytes()
    }

    /// The registers as gdb sees them.
    pub fn to_gdb(&self) -> GdbRegs {
        let r = &self.regs;
        let x = self.xsave.region.as_bytes();
        let mut g = GdbRegs::default();
        let c = &mut g.core;
        c.regs = [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ];
        c.rip = r.rip;
        c.eflags = r.rflags as u32;
        let s = &self.sregs;
        c.segments.cs = u32::from(s.cs.selector);
        c.segments.ss = u32::from(s.ss.selector);
        c.segments.ds = u32::from(s.ds.selector);
        c.segments.es = u32::from(s.es.selector);
        c.segments.fs = u32::from(s.fs.selector);
        c.segments.gs = u32::from(s.gs.selector);
        for (i, st) in c.st.iter_mut().enumerate() {
            st.copy_from_slice(&x[ST0 + 16 * i..ST0 + 16 * i + 10]);
        }
        c.fpu.fctrl = le16(x, FCW);
        c.fpu.fstat = le16(x, FSW);
        c.fpu.ftag = full_tag(x[FTW]);
        c.fpu.fop = le16(x, FOP);
        c.fpu.fioff = le_u64(x, FIP) as u32;
        c.fpu.fooff = le_u64(x, FDP) as u32;
        for (i, v) in c.xmm.iter_mut().enumerate() {
            *v = le_u128(x, XMM0 + 16 * i);
        }
        c.mxcsr = u32::from_le_bytes([x[MXCSR], x[MXCSR + 1], x[MXCSR + 2], x[MXCSR + 3]]);
        for (i, v) in g.ymmh.iter_mut().enumerate() {
            *v = le_u128(x, YMMH0 + 16 * i);
        }
        g
    }

    /// Take the debugger's registers (segment selectors stay: the guest's
    /// descriptors are the launcher's).
    pub fn set_gdb(&mut self, g: &GdbRegs) {
        let c = &g.core;
        let r = &mut self.regs;
        [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ] = c.regs;
        r.rip = c.rip;
        // Bit 1 of RFLAGS is always set; the upper half does not exist.
        r.rflags = u64::from(c.eflags) | 2;
        let x = self.xsave.region.as_mut_bytes();
        for (i, st) in c.st.iter().enumerate() {
            x[ST0 + 16 * i..ST0 + 16 * i + 10].copy_from_slice(st);
        }
        x[FCW..FCW + 2].copy_from_slice(&(c.fpu.fctrl as u16).to_le_bytes());
        x[FSW..FSW + 2].copy_from_slice(&(c.fpu.fstat as u16).to_le_bytes());
        x[FTW] = abridged_tag(c.fpu.ftag);
        x[FOP..FOP + 2].copy_from_slice(&(c.fpu.fop as u16).to_le_bytes());
        for (i, v) in c.xmm.iter().enumerate() {
            x[XMM0 + 16 * i..XMM0 + 16 * (i + 1)].copy_from_slice(&v.to_le_bytes());
        }
        // MXCSR's reserved bits fault in XRSTOR: keep them clear.
        let mxcsr = c.mxcsr & 0xffff;
        x[MXCSR..MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
        for (i, v) in g.ymmh.iter().enumerate() {
            x[YMMH0 + 16 * i..YMMH0 + 16 * (i + 1)].copy_from_slice(&v.to_le_bytes());
        }
        let bv = le_u64(x, XSTATE_BV) | XSTATE_FP_SSE_AVX;
        x[XSTATE_BV..XSTATE_BV + 8].copy_from_slice(&bv.to_le_bytes());
        self.dirty = true;
    }
}

/// FXSAVE's abridged tag byte (1: valid) as the x87 tag word gdb shows
/// (2 bits a register: 00 valid, 11 empty).
fn full_tag(abridged: u8) -> u32 {
    (0..8)
        .filter(|i| abridged & (1 << i) == 0)
        .fold(0, |t, i| t | 0b11 << (2 * i))
}

/// The reverse of [`full_tag`].
fn abridged_tag(full: u32) -> u8 {
    (0..8)
        .filter(|i| (full >> (2 * i)) & 0b11 != 0b11)
        .fold(0, |t, i| t | 1 << i)
}

/// What a hardware slot watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwKind {
    /// Instruction fetch at the address.
    Exec,
    /// Data writes.
    Write,
    /// Data reads or writes (x86 has no read-only watch).
    Access,
}

/// One debug register in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwSlot {
    /// Guest virtual address.
    pub addr: u64,
    /// Length in bytes: 1 for Exec; 1, 2, 4 or 8 (aligned) for data.
    pub len: u64,
    /// What it watches.
    pub kind: HwKind,
}

impl HwSlot {
    /// A slot, if the hardware can watch `len` bytes at `addr` this way.
    pub fn new(addr: u64, len: u64, kind: HwKind) -> Option<HwSlot> {
        let len = if kind == HwKind::Exec { 1 } else { len };
        let ok = matches!(len, 1 | 2 | 4 | 8) && addr.is_multiple_of(len);
        ok.then_some(HwSlot { addr, len, kind })
    }

    fn dr7_bits(&self, i: usize) -> u64 {
        let rw: u64 = match self.kind {
            HwKind::Exec => 0b00,
            HwKind::Write => 0b01,
            HwKind::Access => 0b11,
        };
        let len: u64 = match self.len {
            2 => 0b01,
            4 => 0b11,
            8 => 0b10,
            _ => 0b00,
        };
        // G<i> (global enable), then R/W<i> and LEN<i>.
        (1 << (2 * i + 1)) | (rw << (16 + 4 * i)) | (len << (18 + 4 * i))
    }
}

/// KVM_SET_GUEST_DEBUG's argument for these slots and single-stepping.
/// Nothing to watch and no step: debugging off (control 0).
pub fn guest_debug(slots: &[Option<HwSlot>; HW_SLOTS], step: bool) -> kvm_guest_debug {
    let mut d = kvm_guest_debug::default();
    if slots.iter().all(Option::is_none) && !step {
        return d;
    }
    d.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
    if step {
        d.control |= KVM_GUESTDBG_SINGLESTEP;
    }
    // DR7 bit 10 reads as 1; GE (bit 9) asks for exact data breakpoints.
    let mut dr7: u64 = (1 << 10) | (1 << 9);
    for (i, s) in slots.iter().enumerate() {
        if let Some(s) = s {
            d.arch.debugreg[i] = s.addr;
            dr7 |= s.dr7_bits(i);
        }
    }
    d.arch.debugreg[7] = dr7;
    d
}

/// Load the slots into the vCPU's own debug registers (KVM_SET_DEBUGREGS):
/// a match raises #DB in the guest, whose exception stub reports it and
/// [`resume_user`] takes it back. (This machine's KVM ignores
/// KVM_SET_GUEST_DEBUG's hardware breakpoints for CPL3 code; the guest's
/// own registers work on every KVM.)
pub fn set_guest_debug(fd: &VcpuFd, slots: &[Option<HwSlot>; HW_SLOTS], _step: bool) -> Result<()> {
    let d = guest_debug(slots, false);
    let mut regs = fd.get_debug_regs().kvm("KVM_GET_DEBUGREGS")?;
    regs.db.copy_from_slice(&d.arch.debugreg[..HW_SLOTS]);
    regs.dr7 = if d.control == 0 {
        0x400
    } else {
        d.arch.debugreg[7]
    };
    fd.set_debug_regs(&regs).kvm("KVM_SET_DEBUGREGS")
}

/// What a KVM_EXIT_DEBUG reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A single step finished.
    Step,
    /// Debug register `n` matched.
    Slot(usize),
    /// Something else (an int3, a guest-set debug register).
    Other,
}

/// Decode a debug exit: DR6's B0-B3 name the slot, BS a finished step.
pub fn hit(exit: &kvm_debug_exit_arch) -> Hit {
    const BS: u64 = 1 << 14;
    if let Some(i) = (0..HW_SLOTS).find(|i| exit.dr6 & (1 << i) != 0) {
        return Hit::Slot(i);
    }
    if exit.dr6 & BS != 0 {
        return Hit::Step;
    }
    Hit::Other
}

/// RFLAGS.TF: the CPU traps (#DB) after the next instruction.
const TF: u64 = 1 << 8;

impl Snapshot {
    /// Whether the vCPU was running unprivileged code (CPL3).
    pub fn user(&self) -> bool {
        self.sregs.cs.selector & 3 == 3
    }

    /// Arm (or disarm) RFLAGS.TF: how a step is taken. On this machine's
    /// KVM a #DB raised at CPL3 goes to the guest's exception stub rather
    /// than to KVM_EXIT_DEBUG; [`resume_user`] takes it back from there.
    pub fn set_trap_flag(&mut self, on: bool) {
        let was = self.regs.rflags;
        self.regs.rflags = if on { was | TF } else { was & !TF };
        self.dirty |= self.regs.rflags != was;
    }
}

/// A #DB or #BP that the guest's exception stub reported from CPL3 while a
/// debugger is attached: put the vCPU back where the trap interrupted it
/// (rip, rsp, rflags without TF, rax from below the frame; the user code
/// and stack segments of `user`, the vCPU's registers at CPL3) and say
/// what trapped. None: not such a trap (any other exception stays fatal).
pub fn resume_user(
    fd: &VcpuFd,
    ram: &crate::memory::GuestRam,
    frame_gpa: u64,
    user: &kvm_sregs,
) -> Result<Option<Trap>> {
    use vessel_abi::X86FaultFrame;
    let Ok(f) = ram.read_pod::<X86FaultFrame>(frame_gpa) else {
        return Ok(None);
    };
    let rax_at = frame_gpa.checked_sub(X86FaultFrame::SAVED_RAX_BELOW);
    let Some(Ok(rax)) = rax_at.map(|a| ram.read_pod::<u64>(a)) else {
        return Ok(None);
    };
    if !matches!(f.vector, 1 | 3) || f.cs & 3 != 3 {
        return Ok(None);
    }
    let mut regs = fd.get_regs().kvm("KVM_GET_REGS (debug trap)")?;
    regs.rip = f.rip;
    regs.rsp = f.rsp;
    regs.rflags = (f.rflags & !TF) | 2;
    regs.rax = rax;
    let mut sregs = fd.get_sregs().kvm("KVM_GET_SREGS (debug trap)")?;
    sregs.cs = user.cs;
    sregs.ss = user.ss;
    let mut dbg = fd.get_debug_regs().kvm("KVM_GET_DEBUGREGS")?;
    let dr6 = dbg.dr6;
    dbg.dr6 = 0xffff_0ff0;
    fd.set_debug_regs(&dbg).kvm("KVM_SET_DEBUGREGS")?;
    fd.set_sregs(&sregs).kvm("KVM_SET_SREGS (debug trap)")?;
    fd.set_regs(&regs).kvm("KVM_SET_REGS (debug trap)")?;
    Ok(Some(Trap {
        vector: f.vector,
        dr6,
        rip: f.rip,
    }))
}

/// A debug trap taken back from the guest's exception stub.
#[derive(Clone, Copy, Debug)]
pub struct Trap {
    /// 1 (#DB) or 3 (#BP).
    pub vector: u64,
    /// DR6 as the trap left it.
    pub dr6: u64,
    /// Where the code resumes.
    pub rip: u64,
}

/// Move the vCPU's program counter (back onto an int3's address).
pub fn set_pc(fd: &VcpuFd, pc: u64) -> Result<()> {
    let mut regs = fd.get_regs().kvm("KVM_GET_REGS (breakpoint)")?;
    regs.rip = pc;
    fd.set_regs(&regs).kvm("KVM_SET_REGS (breakpoint)")
}

/// The software breakpoint instruction.
pub const INT3: u8 = 0xcc;

/// Decode DR6 after a reflected #DB (as [`hit`] does for a debug exit).
pub fn hit_dr6(dr6: u64) -> Hit {
    hit(&kvm_debug_exit_arch {
        dr6,
        ..Default::default()
    })
}

/// NT_PRSTATUS, NT_FPREGSET and NT_X86_XSTATE of one vCPU, as Linux writes
/// them for a thread (gdb shows the vCPU as LWP `id + 1`).
pub fn core_notes(fd: &VcpuFd, id: u32, signal: u32) -> Result<Vec<crate::debug::coredump::Note>> {
    use crate::debug::coredump::Note;
    let snap = Snapshot::take(fd)?;
    let (r, s) = (&snap.regs, &snap.sregs);
    let mut st = vec![0u8; 336];
    st[0..4].copy_from_slice(&signal.to_le_bytes());
    st[12..14].copy_from_slice(&(signal as u16).to_le_bytes());
    st[32..36].copy_from_slice(&(id + 1).to_le_bytes());
    let sel = |x: u16| u64::from(x);
    let user_regs: [u64; 27] = [
        r.r15,
        r.r14,
        r.r13,
        r.r12,
        r.rbp,
        r.rbx,
        r.r11,
        r.r10,
        r.r9,
        r.r8,
        r.rax,
        r.rcx,
        r.rdx,
        r.rsi,
        r.rdi,
        u64::MAX,
        r.rip,
        sel(s.cs.selector),
        r.rflags,
        r.rsp,
        sel(s.ss.selector),
        s.fs.base,
        s.gs.base,
        sel(s.ds.selector),
        sel(s.es.selector),
        sel(s.fs.selector),
        sel(s.gs.selector),
    ];
    for (i, v) in user_regs.iter().enumerate() {
        st[112 + 8 * i..120 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    st[328..332].copy_from_slice(&1u32.to_le_bytes());
    let mut xsave = snap.xsave_bytes().to_vec();
    // Linux keeps XCR0 in the FXSAVE area's software-reserved bytes; gdb
    // reads it there to know which components the area holds.
    // KVM_GET_XCRS reads back x87 only on kvm_pvm: take XCR0 as the
    // launcher set it (the host's, limited to what guests get).
    let host = std::arch::x86_64::__cpuid_count(0xd, 0);
    let xcr0 = (u64::from(host.eax) | u64::from(host.edx) << 32) & super::vcpu::XCR0_WANTED | 1;
    xsave[464..472].copy_from_slice(&xcr0.to_le_bytes());
    // gdb wants the area exactly as large as XCR0's components make it:
    // the end of the last one (CPUID.(EAX=0xD,ECX=i): EAX size, EBX offset).
    let size = (2..8u32)
        .filter(|i| xcr0 & (1 << i) != 0)
        .map(|i| {
            let c = std::arch::x86_64::__cpuid_count(0xd, i);
            c.ebx as usize + c.eax as usize
        })
        .fold(576, usize::max);
    xsave.truncate(size.clamp(576, xsave.len()));
    Ok(vec![
        Note {
            name: "CORE",
            kind: 1,
            desc: st,
        },
        Note {
            name: "CORE",
            kind: 2,
            desc: xsave[..512].to_vec(),
        },
        Note {
            name: "LINUX",
            kind: 0x202,
            desc: xsave,
        },
    ])
}

/// The ELF machine of core files.
pub const CORE_MACHINE: u16 = 62;

/// A fatal exception the guest's stub reported: put the registers back to
/// where it happened (rip, rsp, rflags, rax from the frame) so a core file
/// shows the faulting function, not the stub.
pub fn rewind_to_fault(fd: &VcpuFd, ram: &crate::memory::GuestRam, frame_gpa: u64) {
    use vessel_abi::X86FaultFrame;
    let Ok(f) = ram.read_pod::<X86FaultFrame>(frame_gpa) else {
        return;
    };
    let rax = frame_gpa
        .checked_sub(X86FaultFrame::SAVED_RAX_BELOW)
        .and_then(|a| ram.read_pod::<u64>(a).ok());
    if let (Ok(mut regs), Some(rax)) = (fd.get_regs(), rax) {
        regs.rip = f.rip;
        regs.rsp = f.rsp;
        regs.rflags = f.rflags | 2;
        regs.rax = rax;
        let _ = fd.set_regs(&regs);
    }
}

/// Physical address of `va` through 4-level page tables rooted at `cr3`;
/// `read` fetches an 8-byte entry at a guest-physical address. None: not
/// mapped (or a table outside memory).
pub fn translate(cr3: u64, va: u64, read: &dyn Fn(u64) -> Option<u64>) -> Option<u64> {
    const PRESENT: u64 = 1;
    const HUGE: u64 = 1 << 7;
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    // Canonical: bits 63..47 all equal.
    let top = va >> 47;
    if top != 0 && top != (1 << 17) - 1 {
        return None;
    }
    let mut table = cr3 & ADDR;
    for level in (0..4u32).rev() {
        let shift = 12 + 9 * level;
        let entry = read(table + ((va >> shift) & 511) * 8)?;
        if entry & PRESENT == 0 {
            return None;
        }
        let offset_mask = (1u64 << shift) - 1;
        if level == 0 || (level < 3 && entry & HUGE != 0) {
            return Some((entry & ADDR & !offset_mask) | (va & offset_mask));
        }
        table = entry & ADDR;
    }
    None
}

/// The registers gdb is told about: gdb's own 64bit-core, 64bit-sse and
/// 64bit-avx features (binutils-gdb gdb/features/i386/), in `g` packet order.
pub const TARGET_XML: &str = include_str!("debug_target.xml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr7_enables_each_slot_with_its_kind_and_length() {
        let mut slots = [None; HW_SLOTS];
        slots[0] = HwSlot::new(0x1000, 1, HwKind::Exec);
        slots[2] = HwSlot::new(0x2008, 8, HwKind::Write);
        let d = guest_debug(&slots, false);
        assert_eq!(d.arch.debugreg[0], 0x1000);
        assert_eq!(d.arch.debugreg[2], 0x2008);
        let dr7 = d.arch.debugreg[7];
        assert_eq!(dr7 & 0xff, 0b10_00_10, "G0 and G2");
        assert_eq!((dr7 >> 16) & 0xf, 0, "slot 0: exec, len 1");
        assert_eq!((dr7 >> 24) & 0xf, 0b1001, "slot 2: write, len 8");
        assert_ne!(d.control & KVM_GUESTDBG_USE_HW_BP, 0);
        assert_eq!(d.control & KVM_GUESTDBG_SINGLESTEP, 0);
        assert_eq!(guest_debug(&[None; HW_SLOTS], false).control, 0);
        let step = guest_debug(&[None; HW_SLOTS], true);
        assert_ne!(step.control & KVM_GUESTDBG_SINGLESTEP, 0);
    }

    #[test]
    fn unaligned_or_odd_watches_are_refused() {
        assert!(HwSlot::new(0x1001, 4, HwKind::Write).is_none());
        assert!(HwSlot::new(0x1000, 3, HwKind::Access).is_none());
        assert!(HwSlot::new(0x1000, 16, HwKind::Write).is_none());
        assert_eq!(HwSlot::new(0x1003, 0, HwKind::Exec).map(|s| s.len), Some(1));
    }

    #[test]
    fn the_walk_follows_4k_and_2m_pages_and_stops_at_holes() {
        use std::collections::HashMap;
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000: entry 0 a 4 KiB
        // table at 0x4000, entry 1 a 2 MiB page at 0x40_0000.
        let mut m: HashMap<u64, u64> = HashMap::new();
        m.insert(0x1000, 0x2003);
        m.insert(0x2000, 0x3003);
        m.insert(0x3000, 0x4003);
        m.insert(0x3008, 0x40_0083);
        m.insert(0x4000 + 5 * 8, 0x9000 | 3);
        let read = |pa: u64| m.get(&pa).copied().or(Some(0));
        assert_eq!(translate(0x1000, 0x5123, &read), Some(0x9123));
        assert_eq!(translate(0x1000, 0x20_1234, &read), Some(0x40_1234));
        assert_eq!(translate(0x1000, 0x6000, &read), None, "PTE not present");
        assert_eq!(translate(0x1000, 0x8000_0000, &read), None, "PDPT entry 2");
        assert_eq!(
            translate(0x1000, 0x8000_0000_0000, &read),
            None,
            "non-canonical"
        );
        assert_eq!(
            translate(0x1000, 0x5000, &|_| None),
            None,
            "table outside RAM"
        );
    }

    #[test]
    fn tag_words_round_trip() {
        for t in [0u8, 1, 0x80, 0xff, 0x5a] {
            assert_eq!(abridged_tag(full_tag(t)), t);
        }
        assert_eq!(full_tag(0), 0xffff);
    }

    #[test]
    fn the_register_packet_is_core_sse_then_ymm_upper_halves() {
        let mut g = GdbRegs::default();
        g.core.rip = 0x1234;
        g.ymmh[15] = u128::MAX;
        let mut bytes = vec![];
        g.gdb_serialize(|b| bytes.push(b.unwrap_or(0)));
        assert_eq!(bytes.len(), CORE_BYTES + 256);
        assert_eq!(&bytes[bytes.len() - 16..], &[0xff; 16]);
        let mut back = GdbRegs::default();
        assert!(back.gdb_deserialize(&bytes).is_ok());
        assert_eq!(back, g);
        assert!(back.gdb_deserialize(&bytes[..100]).is_err());
        // Every register the packet carries is in the description.
        let regs = TARGET_XML.matches("<reg ").count();
        assert_eq!(regs, 16 + 1 + 1 + 6 + 8 + 8 + 16 + 1 + 16);
    }
}
