//! Running a VM's vCPUs on threads of their own: vCPU 0 on the calling
//! thread, each other vCPU on a scoped thread, so none outlives the run.
//!
//! The first vCPU whose loop ends (the app exited or aborted on it, it
//! crashed, or it saw a stop request) decides the outcome; it then ends the
//! run for the others ([`StopHandle::end`] kicks their threads out of
//! KVM_RUN), and every thread is joined before the outcome is returned.
//! The guest's console is shared: each vCPU writes through a lock, so a
//! write is never interleaved with another vCPU's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::console::HostIo;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::run::Ending;
use crate::stop::StopHandle;
use crate::vcpu::Vcpu;

/// Stack of each secondary vCPU thread (the vCPU loop and its hypercall
/// handlers keep large buffers on the heap).
const VCPU_THREAD_STACK: usize = 512 << 10;

/// One vCPU's handle on the shared console: every call takes the lock.
struct LockedIo<'a, 'b> {
    io: &'a Mutex<&'b mut dyn HostIo>,
}

impl LockedIo<'_, '_> {
    fn with<R>(&self, f: impl FnOnce(&mut dyn HostIo) -> R) -> R {
        let mut g = self.io.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **g)
    }
}

impl HostIo for LockedIo<'_, '_> {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        self.with(|io| io.write(fd, data))
    }
    fn read_stdin(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.with(|io| io.read_stdin(buf))
    }
    fn write_final(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        self.with(|io| io.write_final(fd, data))
    }
}

/// The first ending recorded, and whether any vCPU lost output.
#[derive(Default)]
struct First {
    result: Mutex<Option<Result<Outcome>>>,
    output_lost: AtomicBool,
}

impl First {
    /// Record how a vCPU's loop ended; the first outcome (or error) wins,
    /// and the run ends for every other vCPU.
    fn finish(&self, stop: &StopHandle, r: Result<Ending>) {
        let r = match r {
            Ok(e) => {
                if e.output_lost {
                    self.output_lost.store(true, Ordering::SeqCst);
                }
                match e.outcome {
                    Some(o) => Ok(o),
                    None => return,
                }
            }
            Err(e) => Err(e),
        };
        let mut g = self.result.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(r);
        }
        drop(g);
        stop.end();
    }

    fn outcome(self) -> Result<Outcome> {
        let lost = self.output_lost.load(Ordering::SeqCst);
        let r = self
            .result
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(Err(Error::NoOutcome));
        match r {
            Ok(Outcome::Exited(c)) if lost => Ok(Outcome::OutputLost(c)),
            other => other,
        }
    }
}

/// Run `vcpu_loop` for every vCPU of `vcpus` (at least two), each on its
/// own thread, and return the first outcome once all have stopped.
pub(crate) fn run_threads<F>(
    stop: &StopHandle,
    vcpus: &mut [Vcpu],
    io: &mut dyn HostIo,
    vcpu_loop: F,
) -> Result<Outcome>
where
    F: Fn(&mut Vcpu, &mut dyn HostIo) -> Result<Ending> + Sync,
{
    let shared_io = Mutex::new(io);
    let first = First::default();
    let Some((v0, rest)) = vcpus.split_first_mut() else {
        return Err(Error::NoOutcome);
    };
    let spawn_error = std::thread::scope(|s| {
        // Secondary vCPU threads block SIGINT/SIGTERM: the process's
        // signal reaches vCPU 0's thread (see stop.rs).
        let quiet = crate::stop::quiet();
        for v in rest {
            let (first, shared_io, vcpu_loop) = (&first, &shared_io, &vcpu_loop);
            let spawned = std::thread::Builder::new()
                .name(format!("vessel-vcpu{}", v.id))
                .stack_size(VCPU_THREAD_STACK)
                .spawn_scoped(s, move || {
                    let mut io = LockedIo { io: shared_io };
                    first.finish(stop, vcpu_loop(v, &mut io));
                });
            if let Err(e) = spawned {
                // End the threads already started; the scope joins them.
                stop.end();
                return Some(e);
            }
        }
        drop(quiet);
        let mut io = LockedIo { io: &shared_io };
        first.finish(stop, vcpu_loop(v0, &mut io));
        None
    });
    if let Some(e) = spawn_error {
        return Err(Error::thread("a vCPU thread")(e));
    }
    first.outcome()
}
