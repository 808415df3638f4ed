//! The host side of the embedding protocol (`vessel_abi::embed`): answer
//! the guest's pending exit, run the vCPU to its next embedding call, and
//! serve host calls (recursively, for re-entry) until the guest returns.

use vessel_abi::embed::{self, error, reply, status, MAX_MESSAGE};
use vessel_abi::{Call, Frame, GuestSlice};

use super::error::SandboxError;
use super::host_fn::{HostFnError, Registry};
use super::io::SandboxIo;
use super::Caller;
use crate::outcome::{Outcome, StopReason};
use crate::run::Step;
use crate::vm::Vm;

/// The embedding exit the guest waits in: its frame, and where the reply goes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub(crate) frame: u64,
    pub(crate) free: GuestSlice,
}

/// A guest function's end, as its `Serve` reported it.
pub(crate) struct Returned {
    pub(crate) status: u32,
    pub(crate) bytes: Vec<u8>,
}

/// The VM, its console and the protocol state; what a [`Caller`] borrows.
pub(crate) struct Core {
    pub(crate) vm: Vm<'static>,
    pub(crate) io: SandboxIo,
    pub(crate) pending: Option<Pending>,
    /// Why the sandbox is poisoned, if it is.
    pub(crate) poisoned: Option<String>,
    /// The timeout of the running call (for its error).
    pub(crate) timeout: Option<std::time::Duration>,
}

fn protocol(what: impl Into<String>) -> SandboxError {
    SandboxError::Protocol(what.into())
}

impl Core {
    /// Record a poisoning failure; hand the error on.
    pub(crate) fn fail(&mut self, e: SandboxError) -> SandboxError {
        if e.poisons() && self.poisoned.is_none() {
            self.poisoned = Some(e.to_string());
        }
        e
    }

    /// Read a guest buffer the guest named in an embedding call.
    fn read(&self, s: GuestSlice, what: &str) -> Result<Vec<u8>, SandboxError> {
        if s.len > MAX_MESSAGE {
            return Err(protocol(format!(
                "{what} at {:#x}+{:#x}: over the limit of {MAX_MESSAGE} bytes",
                s.addr, s.len
            )));
        }
        self.vm
            .ram
            .read_vec(s.addr, s.len, MAX_MESSAGE)
            .map_err(|e| protocol(format!("{what} at {:#x}+{:#x}: {e}", s.addr, s.len)))
    }

    /// Answer the frame at `frame` with a reply of `kind`, `len`.
    fn answer_frame(&self, frame: u64, kind: u64, len: u64) -> Result<(), SandboxError> {
        let mut f: Frame = self.vm.ram.read_pod(frame)?;
        f.status = 0;
        f.ret = kind;
        f.ret2 = len;
        self.vm.ram.write_pod(frame, &f)?;
        Ok(())
    }

    /// Reply `kind` with `bytes` to the pending exit; when they do not fit
    /// its free region, ask for room (MORE) and write them where the
    /// guest's `Again` says.
    pub(crate) fn reply(&mut self, kind: u64, bytes: &[u8]) -> Result<(), SandboxError> {
        let p = self
            .pending
            .take()
            .ok_or_else(|| protocol("no exit waits for a reply"))?;
        let len = bytes.len() as u64;
        let p = if len <= p.free.len {
            p
        } else {
            self.answer_frame(p.frame, reply::MORE, len)?;
            match self.vm.run_steps(&mut self.io)? {
                Step::Embed {
                    frame,
                    call: Call::Again { free },
                } if free.len >= len => Pending { frame, free },
                Step::Embed { call, .. } => {
                    return Err(protocol(format!(
                        "{call:?} where Again for {len} bytes was due"
                    )))
                }
                Step::End(o) => return Err(self.ended(o)),
            }
        };
        self.vm
            .ram
            .write(p.free.addr, bytes)
            .map_err(|e| protocol(format!("reply region: {e}")))?;
        self.answer_frame(p.frame, kind, len)
    }

    /// The error for a guest that ended during a call.
    pub(crate) fn ended(&mut self, o: Outcome) -> SandboxError {
        match o {
            Outcome::Exited(c) if c == vessel_abi::exit::PANIC => {
                SandboxError::GuestPanicked(self.io.take_stderr())
            }
            Outcome::Exited(c) | Outcome::OutputLost(c) => SandboxError::GuestExited(c),
            Outcome::Aborted(m) => SandboxError::GuestAborted(crate::outcome::escape(&m)),
            Outcome::Fault(f) => SandboxError::GuestFaulted(f),
            Outcome::Stopped(StopReason::Timeout, d) => {
                SandboxError::TimedOut(self.timeout.unwrap_or(d))
            }
            Outcome::Stopped(StopReason::BrokenPipe, _) => {
                SandboxError::GuestExited(vessel_abi::exit::BROKEN_PIPE)
            }
            Outcome::Stopped(StopReason::Interrupted | StopReason::Signal(_), _) => {
                SandboxError::Interrupted
            }
        }
    }

    /// Run the vCPU, serving host calls, until the running guest function
    /// (at `depth`) ends with a `Serve`.
    pub(crate) fn run_guest(
        &mut self,
        fns: &Registry,
        depth: u32,
    ) -> Result<Returned, SandboxError> {
        loop {
            match self.vm.run_steps(&mut self.io)? {
                Step::End(o) => return Err(self.ended(o)),
                Step::Embed {
                    frame,
                    call: Call::Serve { status, done, free },
                } => {
                    self.pending = Some(Pending { frame, free });
                    let bytes = self.read(done, "a guest function's result")?;
                    return Ok(Returned { status, bytes });
                }
                Step::Embed {
                    frame,
                    call: Call::HostCall { req, free },
                } => {
                    self.pending = Some(Pending { frame, free });
                    let req = self.read(req, "a host call request")?;
                    let (kind, bytes) = self.host_call(fns, &req, depth)?;
                    self.reply(kind, &bytes)?;
                }
                Step::Embed { call, .. } => {
                    return Err(protocol(format!("{call:?} outside a reply for more room")))
                }
            }
        }
    }

    /// Run the host function the guest asked for; the reply for it.
    fn host_call(
        &mut self,
        fns: &Registry,
        req: &[u8],
        depth: u32,
    ) -> Result<(u64, Vec<u8>), SandboxError> {
        let fail = |code, msg: &str| Ok((reply::ERROR, embed::encode_error(code, msg)));
        let Ok((name, args)) = embed::decode_request(req) else {
            return fail(error::PROTOCOL, "malformed host call request");
        };
        let Some(f) = fns.get(name).cloned() else {
            return fail(
                error::UNKNOWN_FUNCTION,
                &format!("no host function {name:?}"),
            );
        };
        let mut caller = Caller {
            core: self,
            fns,
            depth,
        };
        match f(&mut caller, args) {
            Ok(v) => Ok((reply::RESULT, v)),
            Err(HostFnError::BadArguments(e)) => {
                fail(error::BAD_ARGUMENTS, &format!("{name}: {e}"))
            }
            Err(HostFnError::Failed(m)) => fail(error::FAILED, &m),
            // A nested guest call failed: if it poisoned, nothing more runs.
            Err(HostFnError::Guest(e)) if e.poisons() || self.poisoned.is_some() => Err(e),
            Err(HostFnError::Guest(e)) => fail(error::FAILED, &e.to_string()),
        }
    }

    /// Call guest function `req` (an encoded request) at `depth` (0: the
    /// host program's own call); its encoded result.
    pub(crate) fn guest_call(
        &mut self,
        fns: &Registry,
        name: &str,
        req: &[u8],
        depth: u32,
    ) -> Result<Vec<u8>, SandboxError> {
        if depth >= embed::MAX_DEPTH {
            return Err(SandboxError::TooDeep);
        }
        if let Some(p) = &self.poisoned {
            return Err(SandboxError::Poisoned(p.clone()));
        }
        let r = self
            .reply(reply::CALL, req)
            .and_then(|()| self.run_guest(fns, depth + 1));
        let r = match r {
            Ok(Returned {
                status: status::RESULT,
                bytes,
            }) => Ok(bytes),
            Ok(Returned {
                status: status::ERROR,
                bytes,
            }) => Err(guest_error(name, &bytes)),
            Ok(Returned { status, .. }) => {
                Err(protocol(format!("Serve status {status} ends a call")))
            }
            Err(e) => Err(e),
        };
        r.map_err(|e| self.fail(e))
    }
}

/// The error a guest reported for a call of `name`.
fn guest_error(name: &str, bytes: &[u8]) -> SandboxError {
    let (code, msg) = embed::decode_error(bytes).unwrap_or((0, &[]));
    let msg = crate::outcome::escape(&String::from_utf8_lossy(msg));
    match code {
        error::UNKNOWN_FUNCTION => SandboxError::UnknownFunction(name.to_string()),
        error::BAD_ARGUMENTS => SandboxError::BadArguments(msg),
        error::PROTOCOL => protocol(msg),
        error::TOO_DEEP => SandboxError::TooDeep,
        _ => SandboxError::GuestError(msg),
    }
}
