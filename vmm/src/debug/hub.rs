//! Where the debugger's thread and the vCPU threads meet (all-stop mode).
//!
//! A vCPU thread calls [`Hub::checkpoint`] before every KVM_RUN: while the
//! debugger holds the VM stopped, the vCPU parks there with a snapshot of
//! its registers (which the debugger reads and writes), and puts them back
//! when it is resumed. A debug exit ([`Hub::debug_exit`]) or an interrupt
//! from the debugger ([`Hub::interrupt`]) stops every vCPU: the others are
//! kicked out of KVM_RUN and park at their next checkpoint. The debugger
//! reports a stop only once every vCPU it resumed has parked.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use kvm_bindings::{kvm_debug_exit_arch, kvm_sregs};

use crate::arch::debug::{self as ad, HwSlot, Snapshot, HW_SLOTS};
use crate::error::Result;
use crate::outcome::Outcome;
use crate::stop::StopHandle;
use crate::vcpu::Vcpu;

/// What a resumed vCPU does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stays parked.
    Stay,
    /// Runs until something stops the VM.
    Continue,
    /// Runs one instruction.
    Step,
}

/// Why the VM stopped, as the debugger is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// vCPU `id` finished a single step.
    Step(u32),
    /// vCPU `id` reached a breakpoint set with Z0 (`sw`) or Z1.
    Break {
        /// The vCPU.
        id: u32,
        /// gdb asked for a software breakpoint (served by a debug register).
        sw: bool,
    },
    /// vCPU `id` touched a watched address.
    Watch {
        /// The vCPU.
        id: u32,
        /// The debug register that matched.
        slot: usize,
    },
    /// The debugger interrupted the VM (Ctrl-C); vCPU 0 is reported.
    Interrupt,
    /// vCPU `id` stopped for another debug reason (an int3 the guest ran).
    Trap(u32),
    /// The guest exited with this code.
    Exited(i32),
    /// The guest crashed (`crashed`), or the launcher stopped it.
    Ended {
        /// A fault, not a stop.
        crashed: bool,
    },
}

/// One vCPU as the hub sees it.
#[derive(Default)]
struct Slot {
    parked: bool,
    ended: bool,
    action: Option<Action>,
    snap: Option<Snapshot>,
    /// The breakpoint generation last given to KVM.
    applied: Option<u64>,
    /// RFLAGS.TF is armed for a step.
    stepping: bool,
    /// The system registers at the entry (CPL3), to return to after a
    /// debug trap the guest's stub took.
    user: Option<kvm_sregs>,
}

/// A debug register and who asked for it.
#[derive(Clone, Copy, Debug)]
pub struct Used {
    /// What the hardware watches.
    pub hw: HwSlot,
    /// Set through Z0 (a software breakpoint gdb asked for).
    pub sw: bool,
}

struct State {
    /// The debugger holds the VM stopped.
    halted: bool,
    /// The debugger went away: run freely, never park again.
    detached: bool,
    /// The first stop since the last resume.
    event: Option<Stop>,
    vcpus: Vec<Slot>,
    slots: [Option<Used>; HW_SLOTS],
    /// Bumped whenever `slots` change.
    generation: u64,
    /// Software breakpoints: guest virtual address -> (guest-physical
    /// address, the byte the int3 replaced).
    sw: std::collections::BTreeMap<u64, (u64, u8)>,
}

/// See the module doc.
pub struct Hub {
    state: Mutex<State>,
    cv: Condvar,
    stop: StopHandle,
}

impl Hub {
    /// A hub for `count` vCPUs, all stopped at their entry.
    pub fn new(count: u32, stop: StopHandle) -> Hub {
        Hub {
            state: Mutex::new(State {
                halted: true,
                detached: false,
                event: None,
                vcpus: (0..count).map(|_| Slot::default()).collect(),
                slots: [None; HW_SLOTS],
                generation: 0,
                sw: Default::default(),
            }),
            cv: Condvar::new(),
            stop,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The launcher is ending the run (timeout, signal, another vCPU).
    pub fn ending(&self) -> bool {
        self.stop.reason().is_some() || self.stop.ended()
    }

    /// Called by vCPU `vcpu`'s thread before each KVM_RUN: park while the
    /// debugger holds the VM, then give KVM the current debug registers.
    pub fn checkpoint(&self, vcpu: &mut Vcpu) -> Result<()> {
        let id = vcpu.id as usize;
        let mut g = self.lock();
        if g.must_park(id) && !self.ending() {
            let mut snap = Snapshot::take(&vcpu.fd)?;
            let slot = &mut g.vcpus[id];
            if slot.user.is_none() && snap.user() {
                slot.user = Some(*snap.sregs());
            }
            if std::mem::take(&mut slot.stepping) {
                snap.set_trap_flag(false);
            }
            slot.snap = Some(snap);
            slot.parked = true;
            self.cv.notify_all();
            while g.must_park(id) && !self.ending() {
                g = self
                    .cv
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let detached = g.detached;
            let slot = &mut g.vcpus[id];
            slot.parked = false;
            if let Some(mut s) = slot.snap.take() {
                if !detached && slot.action == Some(Action::Step) {
                    s.set_trap_flag(true);
                    slot.stepping = true;
                }
                if s.dirty {
                    s.put(&vcpu.fd)?;
                }
            }
            // A kick that stopped this vCPU is spent (a launcher stop is
            // seen by the run loop's own checks after this).
            vcpu.fd.set_kvm_immediate_exit(0);
            crate::stop::clear_kicked();
        }
        if g.vcpus[id].applied != Some(g.generation) {
            let hw = g.slots.map(|s| s.filter(|_| !g.detached).map(|u| u.hw));
            ad::set_guest_debug(&vcpu.fd, &hw, false)?;
            g.vcpus[id].applied = Some(g.generation);
        }
        Ok(())
    }

    /// The guest's exception stub reported a #DB or #BP from CPL3 on
    /// `vcpu` (how this machine's KVM delivers them): resume the code it
    /// interrupted and stop the VM. False: not a debugger's trap (the
    /// report stays a crash).
    pub fn reflected_trap(
        &self,
        vcpu: &mut Vcpu,
        ram: &crate::memory::GuestRam,
        frame: u64,
    ) -> Result<bool> {
        let id = vcpu.id;
        let mut g = self.lock();
        let Some(user) = g.vcpus[id as usize].user.filter(|_| !g.detached) else {
            return Ok(false);
        };
        let Some(trap) = ad::resume_user(&vcpu.fd, ram, frame, &user)? else {
            return Ok(false);
        };
        let stepping = std::mem::take(&mut g.vcpus[id as usize].stepping);
        let at_break = g
            .slots
            .iter()
            .flatten()
            .find(|u| u.hw.kind == ad::HwKind::Exec && u.hw.addr == trap.rip);
        let int3_at = trap.rip.wrapping_sub(1);
        if trap.vector == 3 && g.sw.contains_key(&int3_at) {
            // Our int3: the code resumes at the breakpoint itself.
            ad::set_pc(&vcpu.fd, int3_at)?;
            self.halt(&mut g, Stop::Break { id, sw: true });
            return Ok(true);
        }
        let stop = match (trap.vector, ad::hit_dr6(trap.dr6), at_break) {
            (3, ..) => Stop::Trap(id),
            (_, ad::Hit::Slot(n), _) => g.stop_for_slot(id, n),
            (_, _, Some(u)) if !stepping => Stop::Break { id, sw: u.sw },
            _ if stepping => Stop::Step(id),
            _ => Stop::Trap(id),
        };
        self.halt(&mut g, stop);
        Ok(true)
    }

    /// vCPU `id` took a debug exit: stop the VM for the reason it names.
    pub fn debug_exit(&self, id: u32, exit: &kvm_debug_exit_arch) {
        let mut g = self.lock();
        if g.detached {
            return;
        }
        let stop = match ad::hit(exit) {
            ad::Hit::Slot(n) => g.stop_for_slot(id, n),
            ad::Hit::Step => Stop::Step(id),
            ad::Hit::Other => Stop::Trap(id),
        };
        self.halt(&mut g, stop);
    }

    /// Record `stop` (the first one since the resume wins) and stop every vCPU.
    fn halt(&self, g: &mut State, stop: Stop) {
        if g.event.is_none() {
            g.event = Some(stop);
        }
        g.halted = true;
        self.stop.kick();
        self.cv.notify_all();
    }

    /// The debugger's Ctrl-C.
    pub fn interrupt(&self) {
        let mut g = self.lock();
        if !g.halted {
            self.halt(&mut g, Stop::Interrupt);
        }
    }

    /// vCPU `id`'s loop ended (`outcome`: how it ended the VM, if it did).
    pub fn vcpu_ended(&self, id: u32, outcome: Option<&Outcome>) {
        let mut g = self.lock();
        if let Some(s) = g.vcpus.get_mut(id as usize) {
            s.ended = true;
        }
        if let Some(o) = outcome {
            let stop = match o {
                Outcome::Exited(c) | Outcome::OutputLost(c) => Stop::Exited(*c),
                Outcome::Fault(_) => Stop::Ended { crashed: true },
                _ => Stop::Ended { crashed: false },
            };
            g.event = Some(stop);
            g.halted = true;
        }
        self.cv.notify_all();
    }

    /// Wait up to `limit` for every vCPU to park or end (the debugger may
    /// then read them); the stop to report once they have and one is due.
    pub fn wait_parked(&self, limit: Duration) -> (bool, Option<Stop>) {
        let g = self.lock();
        let (g, _) = self
            .cv
            .wait_timeout_while(g, limit, |g| !g.all_still())
            .unwrap_or_else(|p| p.into_inner());
        let still = g.all_still();
        (still, if still { g.event } else { None })
    }

    /// Resume: each vCPU does what `actions` says.
    pub fn resume(&self, actions: &[Action]) {
        let mut g = self.lock();
        for (s, a) in g.vcpus.iter_mut().zip(actions) {
            s.action = Some(*a);
        }
        g.event = None;
        g.halted = false;
        self.cv.notify_all();
    }

    /// The debugger left: clear its breakpoints and let the guest run on.
    pub fn detach(&self) {
        let mut g = self.lock();
        g.detached = true;
        g.halted = false;
        g.slots = [None; HW_SLOTS];
        g.generation += 1;
        self.cv.notify_all();
    }

    /// The debugger killed the guest: end the run, and let the vCPUs go.
    pub fn kill(&self) {
        self.stop
            .stop(crate::outcome::StopReason::Signal(libc::SIGKILL));
        self.detach();
    }

    /// How many vCPUs (the debugger's threads).
    pub fn count(&self) -> u32 {
        self.lock().vcpus.len() as u32
    }

    /// Whether vCPU `id` can be shown: it exists and has not ended.
    pub fn alive(&self, id: u32) -> bool {
        self.lock().vcpus.get(id as usize).is_some_and(|s| !s.ended)
    }

    /// Run `f` on parked vCPU `id`'s register snapshot (None: it is not
    /// parked).
    pub fn with_snapshot<R>(&self, id: u32, f: impl FnOnce(&mut Snapshot) -> R) -> Option<R> {
        let mut g = self.lock();
        g.vcpus.get_mut(id as usize)?.snap.as_mut().map(f)
    }

    /// Use a free debug register for `u`; false if all are taken.
    pub fn add_slot(&self, u: Used) -> bool {
        let mut g = self.lock();
        let Some(free) = g.slots.iter().position(Option::is_none) else {
            return false;
        };
        g.slots[free] = Some(u);
        g.generation += 1;
        true
    }

    /// Free the debug register holding `hw` (set the same way); false if none.
    pub fn remove_slot(&self, hw: HwSlot, sw: bool) -> bool {
        let mut g = self.lock();
        let found = g
            .slots
            .iter()
            .position(|s| s.is_some_and(|u| u.hw == hw && u.sw == sw));
        if let Some(i) = found {
            g.slots[i] = None;
            g.generation += 1;
        }
        found.is_some()
    }

    /// Record a software breakpoint at `va` (its byte at `pa` was `orig`).
    pub fn sw_insert(&self, va: u64, pa: u64, orig: u8) -> bool {
        self.lock().sw.insert(va, (pa, orig)).is_none()
    }

    /// Forget the software breakpoint at `va`: where its byte goes back.
    pub fn sw_remove(&self, va: u64) -> Option<(u64, u8)> {
        self.lock().sw.remove(&va)
    }

    /// Every software breakpoint (va, pa, original byte).
    pub fn sw_list(&self) -> Vec<(u64, u64, u8)> {
        self.lock()
            .sw
            .iter()
            .map(|(&v, &(p, b))| (v, p, b))
            .collect()
    }

    /// The debug register `slot` (a watchpoint that fired).
    pub fn slot(&self, slot: usize) -> Option<Used> {
        self.lock().slots.get(slot).copied().flatten()
    }
}

impl State {
    /// What debug register `n` matching on vCPU `id` means.
    fn stop_for_slot(&self, id: u32, n: usize) -> Stop {
        match self.slots.get(n).copied().flatten() {
            Some(u) if u.hw.kind == ad::HwKind::Exec => Stop::Break { id, sw: u.sw },
            Some(_) => Stop::Watch { id, slot: n },
            None => Stop::Trap(id),
        }
    }

    fn must_park(&self, id: usize) -> bool {
        !self.detached
            && (self.halted
                || self.vcpus[id].action != Some(Action::Continue)
                    && self.vcpus[id].action != Some(Action::Step))
    }

    /// Every vCPU is parked or ended, and the VM is halted.
    fn all_still(&self) -> bool {
        self.halted && self.vcpus.iter().all(|s| s.parked || s.ended)
    }
}
