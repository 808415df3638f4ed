//! What the run loop sees of `--gdb`: a [`Session`] bound before the vCPUs
//! start, the [`Hook`] each vCPU thread calls, and the debug-exit handler.
//! Without `--gdb` the session is empty and the hook is `None`.

use std::thread::Scope;

use super::GdbAddr;
use crate::error::Result;
use crate::memory::GuestRam;
use crate::stop::StopHandle;
use crate::vcpu::Vcpu;

#[cfg(target_arch = "x86_64")]
pub use super::hub::Hub as Hook;
#[cfg(target_arch = "x86_64")]
use super::server::Listener;
#[cfg(target_arch = "x86_64")]
pub use super::server::Server;

/// No debugger on this architecture: the hook cannot exist.
#[cfg(not(target_arch = "x86_64"))]
pub enum Hook {}

#[cfg(not(target_arch = "x86_64"))]
impl Hook {
    /// See the x86_64 hub.
    pub fn checkpoint(&self, _vcpu: &mut Vcpu) -> Result<()> {
        match *self {}
    }
    /// See the x86_64 hub.
    pub fn vcpu_ended(&self, _id: u32, _o: Option<&crate::outcome::Outcome>) {
        match *self {}
    }
}

#[cfg(not(target_arch = "x86_64"))]
type Listener = std::convert::Infallible;
#[cfg(not(target_arch = "x86_64"))]
/// Nothing runs without a debugger.
pub struct Server<'s>(std::marker::PhantomData<&'s ()>);

/// A run's debugger, if `--gdb` asked for one.
pub struct Session {
    hub: Option<Hook>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    listener: std::cell::Cell<Option<(Listener, String)>>,
}

impl Session {
    /// Bind the socket (a busy port fails here, before any vCPU runs).
    #[cfg(target_arch = "x86_64")]
    pub fn bind(addr: Option<&GdbAddr>, vcpus: &[Vcpu], stop: &StopHandle) -> Result<Session> {
        let Some(addr) = addr else {
            return Ok(Session::none());
        };
        let l = Listener::bind(addr)?;
        Ok(Session {
            hub: Some(Hook::new(vcpus.len() as u32, stop.clone())),
            listener: std::cell::Cell::new(Some((l, addr.to_string()))),
        })
    }

    /// `--gdb` is refused on this architecture.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn bind(addr: Option<&GdbAddr>, _vcpus: &[Vcpu], _stop: &StopHandle) -> Result<Session> {
        match addr {
            None => Ok(Session::none()),
            Some(_) => Err(super::DebugError::Unsupported(crate::arch::debug::NAME).into()),
        }
    }

    fn none() -> Session {
        Session {
            hub: None,
            listener: std::cell::Cell::new(None),
        }
    }

    /// The vCPUs' hook (None without a debugger).
    pub fn hook(&self) -> Option<&Hook> {
        self.hub.as_ref()
    }

    /// Start the debugger's thread in `scope` (once).
    #[cfg(target_arch = "x86_64")]
    pub fn start<'s, 'e: 's>(
        &'e self,
        scope: &'s Scope<'s, 'e>,
        ram: &'e GuestRam,
        tables: &'e GuestRam,
    ) -> Result<Option<Server<'s>>> {
        let (Some(hub), Some((l, addr))) = (self.hub.as_ref(), self.listener.take()) else {
            return Ok(None);
        };
        super::server::start(scope, l, addr, hub, ram, tables)
            .map(Some)
            .map_err(crate::error::Error::thread("the debugger thread"))
    }

    /// Nothing to start on this architecture.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn start<'s, 'e: 's>(
        &'e self,
        _scope: &'s Scope<'s, 'e>,
        _ram: &'e GuestRam,
        _tables: &'e GuestRam,
    ) -> Result<Option<Server<'s>>> {
        Ok(None)
    }

    /// The run is over: close the debugger's connection, join its thread.
    pub fn finish(server: Option<Server<'_>>) {
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = server {
            s.finish();
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = server;
    }
}

/// A KVM_EXIT_DEBUG on vCPU `id`: the debugger's stop, or (no debugger)
/// an error naming it.
#[cfg(target_arch = "x86_64")]
pub fn on_exit(
    hook: Option<&Hook>,
    id: u32,
    exit: &kvm_bindings::kvm_debug_exit_arch,
) -> std::result::Result<(), String> {
    match hook {
        Some(h) => {
            h.debug_exit(id, exit);
            Ok(())
        }
        None => Err(format!(
            "debug exit (exception {}) with no debugger attached",
            exit.exception
        )),
    }
}
