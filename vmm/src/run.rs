//! Running a built VM: the vCPU loop, the doorbell, and how each KVM exit
//! ends or continues the guest.

use std::time::{Duration, Instant};

use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::arch;
use crate::console::HostIo;
use crate::error::{Error, Result};
use crate::hypercall::{self, Served};
use crate::lazy::LazyMemory;
use crate::memory::GuestRam;
use crate::outcome::{Fault, FaultKind, Outcome};
use crate::softapf::SoftApf;
use crate::stop::{StopHandle, Watchdog};
use crate::vm::Vm;
use crate::wake::WakeTimer;

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
        other => Event::Crash(FaultKind::Vcpu, format!("unexpected vCPU exit {other:?}")),
    }
}

/// What hypercalls may ask of the vCPU that made them.
struct VcpuOps<'v> {
    vcpu: &'v VcpuFd,
    ram: &'v GuestRam,
    lazy: &'v LazyMemory,
    soft: &'v mut Option<SoftApf>,
    waker: &'v mut WakeTimer,
    stop: &'v StopHandle,
}

impl hypercall::Vcpu for VcpuOps<'_> {
    fn enable_apf(&mut self, area: u64, vector: u32) -> Result<()> {
        arch::apf_enable(self.vcpu, area, vector)?;
        self.lazy.async_enabled();
        if arch::SOFT_APF {
            crate::softapf::enable(self.soft, self.ram, self.lazy, area)?;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>, watch: u64, expect: u64) -> Result<()> {
        if let Some(soft) = &self.soft {
            let (lazy, stop) = (self.lazy, self.stop);
            soft.wait(watch, expect, timeout, &|| {
                stop.reason().is_some() || lazy.failed().is_some()
            });
            return Ok(());
        }
        if let Some(t) = timeout {
            self.waker.arm(t)?;
        }
        arch::halt(self.vcpu)
    }
}

impl Vm<'_> {
    /// Run the guest until it exits, crashes or is stopped.
    pub fn run(&mut self, io: &mut dyn HostIo) -> Result<Outcome> {
        let outcome = self.run_loop(io);
        if let Ok(Outcome::Fault(_) | Outcome::Stopped(..)) = &outcome {
            self.recover_stdout(io);
        }
        if self.dump_regs {
            eprint!("{}", arch::dump_regs(&self.vcpu, 0, self.vector_bits));
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

    fn run_loop(&mut self, io: &mut dyn HostIo) -> Result<Outcome> {
        let start = Instant::now();
        let _attached = self.stop.attach(&mut self.vcpu)?;
        let _watchdog = Watchdog::start(self.timeout, &self.stop)?;
        let mut ctx = hypercall::Ctx {
            ram: &self.ram,
            io,
            start,
            features: self.features,
            output_lost: false,
            counts: Default::default(),
        };
        let end = loop {
            if let Some(why) = self.stop.reason() {
                break Ok(Outcome::Stopped(why, start.elapsed()));
            }
            if let Some(e) = self.lazy.failed() {
                break Ok(Outcome::Fault(Fault::new(FaultKind::Lazy, e)));
            }
            let vcpu = &mut self.vcpu;
            let ran = self.rec.kvm_run(|| vcpu.run().map(event));
            let exits = &mut self.rec.exits;
            let ev = match ran {
                Ok(ev) => ev,
                // A lazy page in SIGBUS mode: a launcher-served async PF.
                Err(e) if e.errno() == libc::EFAULT && self.soft.is_some() => {
                    exits.lazy_fault += 1;
                    match soft_fault(&self.vcpu, self.soft.as_ref()) {
                        Ok(()) => continue,
                        Err(m) => Event::Crash(FaultKind::Lazy, m),
                    }
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Event::Again,
                Err(e) => {
                    break Err(Error::Kvm {
                        what: "KVM_RUN".into(),
                        source: e,
                    })
                }
            };
            count(exits, &ev);
            let served = match ev {
                Event::Again => Served::Resume,
                Event::Crash(kind, what) => Served::Done(self.crash(kind, what)),
                Event::Ring(Doorbell::Fault, frame) => Served::Done(self.fault_report(frame)),
                Event::Ring(Doorbell::Call, frame) => {
                    let mut ops = VcpuOps {
                        vcpu: &self.vcpu,
                        ram: &self.ram,
                        lazy: &self.lazy,
                        soft: &mut self.soft,
                        waker: &mut self.waker,
                        stop: &self.stop,
                    };
                    hypercall::serve(&mut ctx, &mut ops, frame)
                }
            };
            if let Served::Done(o) = served {
                break Ok(o);
            }
        };
        self.rec.end(ctx.counts);
        end
    }

    /// A store to the fault doorbell: the ring-0 / vector stub's report, or
    /// (from unprivileged code) a forged one, itself a crash.
    fn fault_report(&self, frame: u64) -> Outcome {
        if !arch::fault_report_trusted(&self.vcpu, self.image) {
            return self.crash(
                FaultKind::ForgedReport,
                "store to the fault-report doorbell from outside the exception stubs".into(),
            );
        }
        let text = arch::fault_report(&self.ram, &self.vcpu, self.image, frame);
        Outcome::Fault(Fault::new(FaultKind::Exception, text))
    }

    fn crash(&self, kind: FaultKind, what: String) -> Outcome {
        let text = format!("{what}: {}", arch::crash_report(&self.vcpu, self.image));
        Outcome::Fault(Fault::new(kind, text))
    }
}

/// Count one KVM_RUN return for the stats.
fn count(exits: &mut crate::stats::Exits, ev: &Event) {
    match ev {
        Event::Ring(Doorbell::Call, _) => exits.hypercall += 1,
        Event::Ring(Doorbell::Fault, _) => exits.fault_report += 1,
        Event::Again => exits.interrupted += 1,
        Event::Crash(..) => exits.fatal += 1,
    }
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
