//! The VM as gdbstub's target: each vCPU a thread (tid = vCPU id + 1),
//! registers from the parked vCPUs' snapshots, memory at guest virtual
//! addresses through the guest's page tables, breakpoints and watchpoints
//! in the debug registers.

use gdbstub::common::{Signal, Tid};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::{Target, TargetError, TargetResult};

use super::hub::{Action, Hub, Used};
use crate::arch::debug::{self as ad, GdbArch, GdbRegs, HwKind, HwSlot};
use crate::memory::{GuestRam, PAGE};

/// See the module doc.
pub struct VmTarget<'a> {
    pub(super) hub: &'a Hub,
    ram: &'a GuestRam,
    /// The page tables' own memory (not mapped in the guest).
    tables: &'a GuestRam,
    /// Each vCPU's action for the next resume (None: the default).
    actions: Vec<Option<Action>>,
    /// The next resume's default: vCPUs without an action stay (gdb's
    /// scheduler locking, or a packet naming only some threads).
    locked: bool,
    /// Why hardware breakpoints were refused was printed.
    noted_hw: bool,
    /// Set once the debugger is told how the guest ended.
    pub(super) told_end: &'a std::sync::atomic::AtomicBool,
}

/// vCPU id of a gdb thread id.
fn vcpu_of(tid: Tid) -> u32 {
    (tid.get() - 1) as u32
}

/// The gdb thread id of vCPU `id`.
pub fn tid_of(id: u32) -> Tid {
    Tid::new(id as usize + 1).unwrap_or(Tid::MIN)
}

impl<'a> VmTarget<'a> {
    /// A target over `hub`'s vCPUs and this guest memory.
    pub fn new(
        hub: &'a Hub,
        ram: &'a GuestRam,
        tables: &'a GuestRam,
        told_end: &'a std::sync::atomic::AtomicBool,
    ) -> VmTarget<'a> {
        VmTarget {
            told_end,
            hub,
            ram,
            tables,
            actions: vec![None; hub.count() as usize],
            locked: false,
            noted_hw: false,
        }
    }

    /// An 8-byte page-table entry at guest-physical `pa`.
    fn entry(&self, pa: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        for m in [self.tables, self.ram] {
            if m.contains(pa, 8) {
                return m.read(pa, &mut b).ok().map(|()| u64::from_le_bytes(b));
            }
        }
        None
    }

    /// Guest-physical address of `va` in RAM as vCPU `id` sees it.
    fn phys(&self, id: u32, va: u64, len: u64) -> Option<u64> {
        let root = self.hub.with_snapshot(id, |s| s.page_root())?;
        let pa = ad::translate(root, va, &|pa| self.entry(pa))?;
        self.ram.contains(pa, len).then_some(pa)
    }

    /// Split `[va, va + len)` at page boundaries: (va, offset, length).
    fn pages(va: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
        let mut done = 0usize;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let at = va.wrapping_add(done as u64);
            let n = ((PAGE - at % PAGE) as usize).min(len - done);
            let item = (at, done, n);
            done += n;
            Some(item)
        })
    }

    /// Whether the debug registers can be used here (else say why, once).
    fn hw_usable(&mut self) -> bool {
        match ad::hw_breakpoints() {
            Ok(()) => true,
            Err(why) => {
                if !std::mem::replace(&mut self.noted_hw, true) {
                    eprintln!("vessel: gdb: {why}");
                }
                false
            }
        }
    }

    /// A breakpoint's slot, if the address is mapped for the vCPUs.
    fn exec_slot(&self, addr: u64) -> Option<HwSlot> {
        self.mapped(addr, 1)
            .then(|| HwSlot::new(addr, 1, HwKind::Exec))?
    }

    /// Whether `[va, va + len)` is in RAM for the first parked vCPU (they
    /// share one address space).
    fn mapped(&self, va: u64, len: u64) -> bool {
        self.any_phys(va).is_some() && self.any_phys(va.saturating_add(len - 1)).is_some()
    }

    /// Guest-physical address of `va` as the first parked vCPU sees it.
    fn any_phys(&self, va: u64) -> Option<u64> {
        (0..self.hub.count())
            .find(|&id| self.hub.with_snapshot(id, |_| ()).is_some())
            .and_then(|id| self.phys(id, va, 1))
    }

    /// Put back every byte a software breakpoint replaced (the debugger left).
    pub fn remove_all_sw(&mut self) {
        for (va, _, _) in self.hub.sw_list() {
            if let Some((pa, orig)) = self.hub.sw_remove(va) {
                let _ = self.ram.write(pa, &[orig]);
            }
        }
    }

    /// Show the original bytes where int3s stand in `data` (read at `start`).
    fn hide_sw(&self, start: u64, data: &mut [u8]) {
        for (va, _, orig) in self.hub.sw_list() {
            if let Some(i) = va.checked_sub(start).filter(|&i| i < data.len() as u64) {
                data[i as usize] = orig;
            }
        }
    }
}

impl Target for VmTarget<'_> {
    type Arch = GdbArch;
    type Error = std::convert::Infallible;

    fn base_ops(&mut self) -> BaseOps<'_, GdbArch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for VmTarget<'_> {
    fn read_registers(&mut self, regs: &mut GdbRegs, tid: Tid) -> TargetResult<(), Self> {
        *regs = self
            .hub
            .with_snapshot(vcpu_of(tid), |s| s.to_gdb())
            .ok_or(TargetError::NonFatal)?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &GdbRegs, tid: Tid) -> TargetResult<(), Self> {
        self.hub
            .with_snapshot(vcpu_of(tid), |s| s.set_gdb(regs))
            .ok_or(TargetError::NonFatal)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let id = vcpu_of(tid);
        for (va, off, n) in Self::pages(start, data.len()) {
            let read = self
                .phys(id, va, n as u64)
                .and_then(|pa| self.ram.read(pa, &mut data[off..off + n]).ok());
            if read.is_none() {
                if off == 0 {
                    return Err(TargetError::NonFatal);
                }
                self.hide_sw(start, &mut data[..off]);
                return Ok(off);
            }
        }
        self.hide_sw(start, data);
        Ok(data.len())
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let id = vcpu_of(tid);
        // Translate every page first: a write that cannot finish changes nothing.
        let mut parts = vec![];
        for (va, off, n) in Self::pages(start, data.len()) {
            let pa = self.phys(id, va, n as u64).ok_or(TargetError::NonFatal)?;
            parts.push((pa, off, n));
        }
        for (pa, off, n) in parts {
            self.ram
                .write(pa, &data[off..off + n])
                .map_err(|_| TargetError::NonFatal)?;
        }
        Ok(())
    }

    fn list_active_threads(&mut self, found: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for id in (0..self.hub.count()).filter(|&id| self.hub.alive(id)) {
            found(tid_of(id));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadResume for VmTarget<'_> {
    fn resume(&mut self) -> Result<(), Self::Error> {
        let default = if self.locked {
            Action::Stay
        } else {
            Action::Continue
        };
        let actions: Vec<Action> = self.actions.iter().map(|a| a.unwrap_or(default)).collect();
        self.hub.resume(&actions);
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.iter_mut().for_each(|a| *a = None);
        self.locked = false;
        Ok(())
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        if let Some(a) = self.actions.get_mut(vcpu_of(tid) as usize) {
            *a = Some(Action::Continue);
        }
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSchedulerLocking for VmTarget<'_> {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.locked = true;
        Ok(())
    }
}

impl MultiThreadSingleStep for VmTarget<'_> {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        if let Some(a) = self.actions.get_mut(vcpu_of(tid) as usize) {
            *a = Some(Action::Step);
        }
        Ok(())
    }
}

impl Breakpoints for VmTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for VmTarget<'_> {
    /// An int3 written over the instruction's first byte.
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let Some(pa) = self.any_phys(addr) else {
            return Ok(false);
        };
        let mut orig = [0u8];
        if self.ram.read(pa, &mut orig).is_err() {
            return Ok(false);
        }
        if orig[0] == ad::INT3 && self.hub.sw_list().iter().any(|b| b.0 == addr) {
            return Ok(true);
        }
        if self.ram.write(pa, &[ad::INT3]).is_err() {
            return Ok(false);
        }
        Ok(self.hub.sw_insert(addr, pa, orig[0]))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let Some((pa, orig)) = self.hub.sw_remove(addr) else {
            return Ok(false);
        };
        Ok(self.ram.write(pa, &[orig]).is_ok())
    }
}

impl HwBreakpoint for VmTarget<'_> {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if !self.hw_usable() {
            return Ok(false);
        }
        let Some(hw) = self.exec_slot(addr) else {
            return Ok(false);
        };
        Ok(self.hub.add_slot(Used { hw, sw: false }))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let hw = HwSlot::new(addr, 1, HwKind::Exec).ok_or(TargetError::NonFatal)?;
        Ok(self.hub.remove_slot(hw, false))
    }
}

fn watch_kind(kind: WatchKind) -> HwKind {
    match kind {
        WatchKind::Write => HwKind::Write,
        WatchKind::Read | WatchKind::ReadWrite => HwKind::Access,
    }
}

impl HwWatchpoint for VmTarget<'_> {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        if !self.hw_usable() || !self.mapped(addr, len.max(1)) {
            return Ok(false);
        }
        let Some(hw) = HwSlot::new(addr, len, watch_kind(kind)) else {
            return Ok(false);
        };
        Ok(self.hub.add_slot(Used { hw, sw: false }))
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let hw = HwSlot::new(addr, len, watch_kind(kind)).ok_or(TargetError::NonFatal)?;
        Ok(self.hub.remove_slot(hw, false))
    }
}
