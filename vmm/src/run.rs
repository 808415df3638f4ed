//! Running a built VM: the vCPU loop, the doorbell, and how each KVM exit
//! ends or continues the guest (the threads of a multi-vCPU run are in
//! `smp.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};

use crate::arch;
use crate::console::HostIo;
use crate::elf::GuestImage;
use crate::error::{Error, Result};
use crate::hypercall::{self, Served};
use crate::lazy::LazyMemory;
use crate::memory::GuestRam;
use crate::outcome::{Fault, FaultKind, Outcome};
use crate::park::Parker;
use crate::softapf::SoftApf;
use crate::stats::VcpuCounts;
use crate::stop::{StopHandle, Watchdog};
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// What the doorbell page's addresses mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doorbell {
    /// A hypercall: the stored value is the frame's guest address.
    Call,
    /// A fatal exception: the stored value is the fault frame's address.
    Fault,
}

impl Doorbell {
    /// What a store to `addr` means, if it is a doorbell.
    pub fn at(addr: u64) -> Option<Doorbell> {
        match addr {
            a if a == arch::DOORBELL => Some(Doorbell::Call),
            a if a == arch::DOORBELL_FAULT => Some(Doorbell::Fault),
            _ => None,
        }
    }
}

/// A KVM exit, copied out of the vCPU's run structure.
enum Event {
    /// An 8-byte store to a doorbell.
    Ring(Doorbell, u64),
    /// Nothing to do (a signal, an interrupt window).
    Again,
    /// The guest cannot go on.
    Crash(FaultKind, String),
    /// A breakpoint, watchpoint or single step (`--gdb`).
    #[cfg(target_arch = "x86_64")]
    Debug(kvm_bindings::kvm_debug_exit_arch),
}

fn event(exit: VcpuExit) -> Event {
    match exit {
        VcpuExit::MmioWrite(addr, data) => match Doorbell::at(addr) {
            Some(kind) => match <[u8; 8]>::try_from(data) {
                Ok(bytes) => Event::Ring(kind, u64::from_le_bytes(bytes)),
                Err(_) => Event::Crash(
                    FaultKind::Hypercall,
                    format!(
                        "doorbell store of {} bytes (want 8) at {addr:#x}",
                        data.len()
                    ),
                ),
            },
            None => Event::Crash(
                FaultKind::Unmapped,
                format!("store to unmapped guest address {addr:#x}"),
            ),
        },
        VcpuExit::MmioRead(addr, _) => Event::Crash(
            FaultKind::Unmapped,
            format!("load from unmapped guest address {addr:#x}"),
        ),
        VcpuExit::Shutdown => {
            Event::Crash(FaultKind::Vcpu, "triple fault (KVM_EXIT_SHUTDOWN)".into())
        }
        VcpuExit::InternalError => Event::Crash(
            FaultKind::Vcpu,
            "KVM internal error emulating the guest".into(),
        ),
        VcpuExit::FailEntry(reason, _) => Event::Crash(
            FaultKind::Vcpu,
            format!("KVM could not enter the guest (reason {reason:#x})"),
        ),
        VcpuExit::Hlt => Event::Crash(
            FaultKind::Vcpu,
            "vCPU halted with nothing to wake it".into(),
        ),
        VcpuExit::IoIn(port, _) | VcpuExit::IoOut(port, _) => Event::Crash(
            FaultKind::Vcpu,
            format!("port I/O to {port:#x} (Vessel guests use hypercalls)"),
        ),
        VcpuExit::Intr => Event::Again,
        #[cfg(target_arch = "x86_64")]
        VcpuExit::Debug(d) => Event::Debug(d),
        other => Event::Crash(FaultKind::Vcpu, format!("unexpected vCPU exit {other:?}")),
    }
}

/// What every vCPU thread of a run shares.
pub(crate) struct Shared<'v> {
    ram: &'v GuestRam,
    lazy: &'v LazyMemory,
    image: &'v GuestImage,
    stop: &'v StopHandle,
    vm: &'v VmFd,
    parker: &'v Arc<Parker>,
    /// The I/O ring and file server (one ring per vCPU).
    io_server: &'v crate::ring::IoServer,
    features: u64,
    start: Instant,
    /// How many vCPUs the VM has.
    count: u32,
    /// A sandbox runs the VM: embedding calls end the loop (`Ending::embed`).
    embed: bool,
    /// The running sandbox call's deadline.
    deadline: Option<Instant>,
    /// Where each vCPU's counters go when its loop ends (`--stats`).
    rec: &'v std::sync::Mutex<crate::stats::Recorder>,
    /// `--gdb`: where vCPUs park while the debugger holds the VM.
    debug: Option<&'v crate::debug::Hook>,
    /// `--core-dump`: a crashed vCPU's registers go back to the fault.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    core: bool,
}

/// Where a sandbox's run stopped: the guest's end, or an embedding call.
pub(crate) enum Step {
    /// The guest ended.
    End(Outcome),
    /// An unanswered embedding call; its frame is at `frame`.
    Embed {
        /// The frame's guest address.
        frame: u64,
        /// The call.
        call: vessel_abi::Call,
    },
}

/// How one vCPU's loop ended.
pub(crate) struct Ending {
    /// How this vCPU ended the VM (or the stop request it saw); None:
    /// another vCPU ended it first.
    pub outcome: Option<Outcome>,
    /// A console write of this vCPU's failed (reported on stderr then).
    pub output_lost: bool,
    /// (Sandboxes) the embedding call that paused the loop.
    pub embed: Option<(u64, vessel_abi::Call)>,
}

/// What hypercalls may ask of the vCPU that made them.
struct VcpuOps<'v> {
    vcpu: &'v mut Vcpu,
    sh: &'v Shared<'v>,
}

impl hypercall::Vcpu for VcpuOps<'_> {
    fn enable_apf(&mut self, area: u64, vector: u32) -> Result<()> {
        arch::apf_enable(&self.vcpu.fd, area, vector)?;
        self.sh.lazy.async_enabled();
        if arch::SOFT_APF {
            let sh = self.sh;
            crate::softapf::enable(&mut self.vcpu.soft, sh.ram, sh.lazy, area, sh.parker)?;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>, watch: u64, expect: u64) -> Result<()> {
        let sh = self.sh;
        if arch::LAUNCHER_WAITS {
            sh.parker.wait(sh.ram, watch, expect, timeout, &|| {
                sh.stop.reason().is_some() || sh.stop.ended() || sh.lazy.failed().is_some()
            });
            return Ok(());
        }
        if let Some(t) = timeout {
            self.vcpu.waker.arm(t)?;
        }
        arch::halt(&self.vcpu.fd)
    }

    fn index(&self) -> usize {
        self.vcpu.id as usize
    }

    fn stopping(&self) -> bool {
        self.sh.stop.reason().is_some() || self.sh.stop.ended()
    }

    fn wake(&mut self, vcpus: u64) -> Result<u64> {
        let sh = self.sh;
        let mut n = 0;
        for id in crate::vcpu::ids_in_mask(vcpus, sh.count) {
            if !arch::LAUNCHER_WAITS {
                arch::wake(sh.vm, id)?;
            }
            n += 1;
        }
        if arch::LAUNCHER_WAITS && n > 0 {
            sh.parker.notify();
        }
        Ok(n)
    }
}

impl Vm<'_> {
    /// Run the guest until it exits, crashes or is stopped: every vCPU on
    /// its own thread (vCPU 0 on this one); the first vCPU to end the VM
    /// decides the outcome and the others are stopped before this returns.
    pub fn run(&mut self, io: &mut dyn HostIo) -> Result<Outcome> {
        let outcome = self.run_all(io);
        if let Ok(Outcome::Fault(_) | Outcome::Stopped(..)) = &outcome {
            self.recover_stdout(io);
        }
        #[cfg(target_arch = "x86_64")]
        if let (Ok(Outcome::Fault(_)), Some((dir, args))) = (&outcome, &self.core_dump) {
            crate::debug::write_core(dir, args, &self.vcpus, &self.ram);
        }
        if self.dump_regs {
            for v in &self.vcpus {
                eprint!("{}", arch::dump_regs(&v.fd, v.id, self.vector_bits));
            }
        }
        outcome
    }

    /// Print what the guest had buffered for stdout but could not flush
    /// (it crashed or was stopped). Best effort: a corrupt buffer loses
    /// that output.
    fn recover_stdout(&self, io: &mut dyn HostIo) {
        let addr = self.stdout_buffer;
        if let Ok(b) = self.ram.read_pod::<vessel_abi::ConsoleBuffer>(addr) {
            if b.len > 0 && b.len as usize <= vessel_abi::console::BUFFER {
                let _ = io.write_final(1, &b.data[..b.len as usize]);
            }
        }
    }

    fn run_all(&mut self, io: &mut dyn HostIo) -> Result<Outcome> {
        let _watchdog = Watchdog::start(self.timeout, &self.stop)?;
        let gdb = crate::debug::Session::bind(self.gdb.as_ref(), &self.vcpus, &self.stop)?;
        let sh = Shared {
            ram: &self.ram,
            lazy: &self.lazy,
            image: &self.image,
            stop: &self.stop,
            vm: &self.vm,
            parker: &self.parker,
            io_server: &self.io,
            features: self.features,
            start: Instant::now(),
            count: self.vcpus.len() as u32,
            embed: false,
            deadline: None,
            rec: &self.rec,
            debug: gdb.hook(),
            core: self.core_dump.is_some(),
        };
        let vcpus = &mut self.vcpus;
        std::thread::scope(|scope| {
            let server = gdb.start(scope, &self.ram, &self.tables)?;
            let outcome = run_set(&sh, vcpus, io);
            crate::debug::Session::finish(server);
            outcome
        })
    }
}

impl Vm<'_> {
    /// Run vCPU 0 (a sandbox's only one) until the guest ends or makes an
    /// embedding call.
    pub(crate) fn run_steps(&mut self, io: &mut dyn HostIo) -> Result<Step> {
        let sh = Shared {
            ram: &self.ram,
            lazy: &self.lazy,
            image: &self.image,
            stop: &self.stop,
            vm: &self.vm,
            parker: &self.parker,
            io_server: &self.io,
            features: self.features,
            start: self.epoch,
            count: 1,
            embed: true,
            deadline: self.deadline,
            rec: &self.rec,
            debug: None,
            core: false,
        };
        let ending = vcpu_loop(&sh, &mut self.vcpus[0], io)?;
        match (ending.embed, ending.outcome) {
            (Some((frame, call)), _) => Ok(Step::Embed { frame, call }),
            (None, Some(o)) => Ok(Step::End(o)),
            (None, None) => Err(Error::NoOutcome),
        }
    }
}

/// Run every vCPU of `vcpus` (vCPU 0 on this thread) until the VM ends.
fn run_set(sh: &Shared, vcpus: &mut [Vcpu], io: &mut dyn HostIo) -> Result<Outcome> {
    if let [only] = vcpus {
        return vcpu_loop(sh, only, io)?.outcome.ok_or(Error::NoOutcome);
    }
    crate::smp::run_threads(&sh.stop.clone(), vcpus, io, |v, io| vcpu_loop(sh, v, io))
}

/// Whether a sandbox call's deadline has passed.
fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Run one vCPU until the VM ends (the outcome is None when another vCPU
/// ended it first).
fn vcpu_loop(sh: &Shared, vcpu: &mut Vcpu, io: &mut dyn HostIo) -> Result<Ending> {
    let mut ctx = hypercall::Ctx {
        ram: sh.ram,
        io,
        start: sh.start,
        features: sh.features,
        output_lost: false,
        io_server: sh.io_server,
        embed: sh.embed,
        counts: Default::default(),
    };
    let mut counts = VcpuCounts::default();
    let end = serve_vcpu(sh, vcpu, &mut ctx, &mut counts);
    if let Some(d) = sh.debug {
        d.vcpu_ended(vcpu.id, end.as_ref().ok().and_then(|e| e.outcome.as_ref()));
    }
    if let Ok(mut r) = sh.rec.lock() {
        r.merge(counts, &ctx.counts);
    }
    end
}

/// [`vcpu_loop`]'s loop, counting for `--stats`.
fn serve_vcpu(
    sh: &Shared,
    vcpu: &mut Vcpu,
    ctx: &mut hypercall::Ctx,
    counts: &mut VcpuCounts,
) -> Result<Ending> {
    if !sh.embed {
        crate::seccomp::enter(crate::seccomp::Role::Vcpu);
    }
    let _attached = sh.stop.attach(&mut vcpu.fd)?;
    let end = |o: Option<Outcome>, lost: bool| {
        Ok(Ending {
            outcome: o,
            output_lost: lost,
            embed: None,
        })
    };
    // A kick that came while no vCPU was attached (the host was serving an
    // embedding call) is gone: look at the deadline here too.
    if past(sh.deadline) {
        let o = Outcome::Stopped(crate::outcome::StopReason::Timeout, Duration::ZERO);
        return end(Some(o), false);
    }
    loop {
        if let Some(d) = sh.debug {
            d.checkpoint(vcpu)?;
        }
        if let Some(why) = sh.stop.reason() {
            return end(
                Some(Outcome::Stopped(why, sh.start.elapsed())),
                ctx.output_lost,
            );
        }
        if sh.stop.ended() {
            return end(None, ctx.output_lost);
        }
        if let Some(e) = sh.lazy.failed() {
            let o = Outcome::Fault(Fault::new(FaultKind::Lazy, e));
            return end(Some(o), ctx.output_lost);
        }
        let fd = &mut vcpu.fd;
        let ev = match counts.kvm_run(|| fd.run().map(event)) {
            Ok(ev) => ev,
            // A lazy page in SIGBUS mode: a launcher-served async PF.
            Err(e) if e.errno() == libc::EFAULT && vcpu.soft.is_some() => {
                counts.exits.lazy_fault += 1;
                match soft_fault(&vcpu.fd, vcpu.soft.as_ref()) {
                    Ok(()) => continue,
                    Err(m) => Event::Crash(FaultKind::Lazy, m),
                }
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Event::Again,
            Err(e) => {
                return Err(Error::Kvm {
                    what: format!("KVM_RUN (vCPU {})", vcpu.id),
                    source: e,
                })
            }
        };
        count(&mut counts.exits, &ev);
        let served = match ev {
            // A kick: a sandbox call's deadline may have passed.
            Event::Again if past(sh.deadline) => Served::Done(Outcome::Stopped(
                crate::outcome::StopReason::Timeout,
                sh.start.elapsed(),
            )),
            Event::Again => Served::Resume,
            Event::Crash(kind, what) => Served::Done(crash(sh, vcpu, kind, what)),
            #[cfg(target_arch = "x86_64")]
            Event::Debug(exit) => crate::debug::on_exit(sh.debug, vcpu.id, &exit).map_or_else(
                |what| Served::Done(crash(sh, vcpu, FaultKind::Vcpu, what)),
                |()| Served::Resume,
            ),
            Event::Ring(Doorbell::Fault, frame) => match debug_trap(sh, vcpu, frame) {
                Ok(true) => Served::Resume,
                Ok(false) => {
                    #[cfg(target_arch = "x86_64")]
                    if sh.core && arch::fault_report_trusted(&vcpu.fd, sh.image) {
                        arch::debug::rewind_to_fault(&vcpu.fd, sh.ram, frame);
                    }
                    Served::Done(fault_report(sh, vcpu, frame))
                }
                Err(e) => return Err(e),
            },
            Event::Ring(Doorbell::Call, frame) => {
                let mut ops = VcpuOps { vcpu, sh };
                hypercall::serve(ctx, &mut ops, frame)
            }
        };
        match served {
            Served::Resume => {}
            Served::Done(o) => return end(Some(o), ctx.output_lost),
            Served::Embed { frame, call } => {
                return Ok(Ending {
                    outcome: None,
                    output_lost: ctx.output_lost,
                    embed: Some((frame, call)),
                })
            }
        }
    }
}

/// Count one KVM_RUN return for the stats.
fn count(exits: &mut crate::stats::Exits, ev: &Event) {
    match ev {
        Event::Ring(Doorbell::Call, _) => exits.hypercall += 1,
        Event::Ring(Doorbell::Fault, _) => exits.fault_report += 1,
        Event::Again => exits.interrupted += 1,
        Event::Crash(..) => exits.fatal += 1,
        #[cfg(target_arch = "x86_64")]
        Event::Debug(_) => exits.interrupted += 1,
    }
}

/// A crash report names the vCPU when the VM has more than one.
fn on_vcpu(sh: &Shared, vcpu: &Vcpu, kind: FaultKind, text: String) -> Outcome {
    let text = if sh.count > 1 {
        format!("vCPU {}: {text}", vcpu.id)
    } else {
        text
    };
    Outcome::Fault(Fault::new(kind, text))
}

/// With a debugger: a fault report that is a debug trap (x86_64: a #DB or
/// #BP from CPL3) resumes the code and stops the VM for the debugger.
fn debug_trap(sh: &Shared, vcpu: &mut Vcpu, frame: u64) -> Result<bool> {
    #[cfg(target_arch = "x86_64")]
    if let Some(d) = sh.debug {
        if arch::fault_report_trusted(&vcpu.fd, sh.image) {
            return d.reflected_trap(vcpu, sh.ram, frame);
        }
    }
    let _ = (sh, vcpu, frame);
    Ok(false)
}

/// A store to the fault doorbell: the ring-0 / vector stub's report, or
/// (from unprivileged code) a forged one, itself a crash.
fn fault_report(sh: &Shared, vcpu: &Vcpu, frame: u64) -> Outcome {
    if !arch::fault_report_trusted(&vcpu.fd, sh.image) {
        return crash(
            sh,
            vcpu,
            FaultKind::ForgedReport,
            "store to the fault-report doorbell from outside the exception stubs".into(),
        );
    }
    let text = arch::fault_report(sh.ram, &vcpu.fd, sh.image, frame);
    on_vcpu(sh, vcpu, FaultKind::Exception, text)
}

fn crash(sh: &Shared, vcpu: &Vcpu, kind: FaultKind, what: String) -> Outcome {
    let text = format!("{what}: {}", arch::crash_report(&vcpu.fd, sh.image));
    on_vcpu(sh, vcpu, kind, text)
}

/// KVM_RUN failed with EFAULT while lazy regions are in SIGBUS mode:
/// deliver "page not present" for the faulting address. Err: a one-line
/// reason the guest cannot go on.
fn soft_fault(vcpu: &VcpuFd, soft: Option<&SoftApf>) -> std::result::Result<(), String> {
    let Some(soft) = soft else {
        return Err("KVM_RUN: EFAULT".into());
    };
    let addr = arch::inject_lazy_fault(vcpu)
        .map_err(|e| format!("KVM_RUN: EFAULT, and delivering it failed: {e}"))?;
    if !soft.is_lazy(addr) {
        return Err(format!(
            "KVM_RUN: EFAULT at guest address {addr:#x}, outside every lazy region"
        ));
    }
    soft.fault(addr)
        .map(|_| ())
        .map_err(|e| format!("async page fault at {addr:#x}: {e}"))
}
