//! The debugger's side of a `--gdb` run: the listening socket, the thread
//! that serves one debugger connection, and gdbstub's event loop.
//!
//! One debugger at a time: the socket stops listening once one has
//! connected (a second `target remote` is refused by the OS). When the
//! debugger detaches, disconnects, or sends garbage gdbstub cannot go on
//! with, its breakpoints are cleared and the guest runs on to its end;
//! `kill` stops the guest.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::breakpoints::WatchKind;

use super::hub::{Hub, Stop};
use super::target::{tid_of, VmTarget};
use super::{DebugError, GdbAddr};
use crate::arch::debug::HwKind;
use crate::memory::GuestRam;

/// A bound `--gdb` socket.
pub enum Listener {
    /// TCP on loopback.
    Tcp(TcpListener),
    /// A Unix socket; the path is removed when the listener goes.
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    /// Listen at `addr` (before any vCPU runs: a busy port is a launcher error).
    pub fn bind(addr: &GdbAddr) -> Result<Listener, DebugError> {
        let err = |source| DebugError::Listen {
            what: addr.to_string(),
            source,
        };
        let l = match addr {
            GdbAddr::Tcp(a) => Listener::Tcp(TcpListener::bind(a).map_err(err)?),
            GdbAddr::Unix(p) => Listener::Unix(UnixListener::bind(p).map_err(err)?, p.clone()),
        };
        match &l {
            Listener::Tcp(t) => t.set_nonblocking(true),
            Listener::Unix(u, _) => u.set_nonblocking(true),
        }
        .map_err(err)?;
        Ok(l)
    }

    /// One connection, or None when `give_up` says so first.
    fn accept(&self, give_up: &dyn Fn() -> bool) -> Option<Peer> {
        loop {
            let r = match self {
                Listener::Tcp(t) => t.accept().map(|(s, _)| Peer::Tcp(s)),
                Listener::Unix(u, _) => u.accept().map(|(s, _)| Peer::Unix(s)),
            };
            match r {
                Ok(p) if p.blocking().is_ok() => return Some(p),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    eprintln!("vessel: gdb: accept: {e}");
                    return None;
                }
            }
            if give_up() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The debugger's connection.
enum Peer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Peer {
    fn blocking(&self) -> io::Result<()> {
        match self {
            Peer::Tcp(s) => s.set_nonblocking(false),
            Peer::Unix(s) => s.set_nonblocking(false),
        }
    }

    fn try_clone(&self) -> io::Result<Peer> {
        Ok(match self {
            Peer::Tcp(s) => Peer::Tcp(s.try_clone()?),
            Peer::Unix(s) => Peer::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self) {
        let _ = match self {
            Peer::Tcp(s) => s.shutdown(Shutdown::Both),
            Peer::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn into_conn(self) -> Box<dyn ConnectionExt<Error = io::Error>> {
        match self {
            Peer::Tcp(s) => Box::new(s),
            Peer::Unix(s) => Box::new(s),
        }
    }
}

/// What the run loop keeps of the debugger's thread.
pub struct Server<'s> {
    thread: ScopedJoinHandle<'s, ()>,
    /// Set when the VM's run is over: the thread stops waiting.
    done: Arc<AtomicBool>,
    /// The debugger was told how the guest ended.
    told_end: Arc<AtomicBool>,
    peer: Arc<std::sync::Mutex<Option<Peer>>>,
}

/// Start the debugger's thread in `scope`: it accepts one connection on
/// `listener` and serves it against `hub`'s vCPUs and this memory.
pub fn start<'s, 'e: 's>(
    scope: &'s Scope<'s, 'e>,
    listener: Listener,
    addr: String,
    hub: &'e Hub,
    ram: &'e GuestRam,
    tables: &'e GuestRam,
) -> io::Result<Server<'s>> {
    let done = Arc::new(AtomicBool::new(false));
    let told_end = Arc::new(AtomicBool::new(false));
    let peer = Arc::new(std::sync::Mutex::new(None));
    let (d, t, p) = (done.clone(), told_end.clone(), peer.clone());
    let _quiet = crate::stop::quiet();
    let thread = std::thread::Builder::new()
        .name("vessel-gdb".into())
        .spawn_scoped(scope, move || {
            serve(listener, &addr, hub, ram, tables, &d, &t, &p);
            hub.detach();
        })?;
    Ok(Server {
        thread,
        done,
        told_end,
        peer,
    })
}

impl Server<'_> {
    /// The VM's run is over: give the debugger a moment to hear how it
    /// ended, then close its connection and join the thread.
    pub fn finish(self) {
        let limit = Instant::now() + Duration::from_secs(2);
        while !self.told_end.load(Ordering::SeqCst) && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.done.store(true, Ordering::SeqCst);
        if let Some(p) = self.peer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            p.shutdown();
        }
        let _ = self.thread.join();
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    listener: Listener,
    addr: &str,
    hub: &Hub,
    ram: &GuestRam,
    tables: &GuestRam,
    done: &AtomicBool,
    told_end: &AtomicBool,
    peer: &std::sync::Mutex<Option<Peer>>,
) {
    eprintln!("vessel: gdb: waiting for a debugger on {addr} (the guest is stopped at its entry)");
    let give_up = || done.load(Ordering::SeqCst) || hub.ending();
    let Some(conn) = listener.accept(&give_up) else {
        return;
    };
    // One debugger: a second connection is refused from now on.
    drop(listener);
    if let Ok(c) = conn.try_clone() {
        *peer.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
    }
    while !hub.wait_parked(Duration::from_millis(100)).0 {
        if give_up() {
            return;
        }
    }
    let mut target = VmTarget::new(hub, ram, tables, told_end);
    let ended = session(conn, &mut target);
    target.remove_all_sw();
    match ended {
        Ok(DisconnectReason::Kill) => {
            eprintln!("vessel: gdb: the debugger killed the guest");
            hub.kill();
        }
        Ok(_) => eprintln!("vessel: gdb: debugger detached; the guest runs on"),
        Err(_) if done.load(Ordering::SeqCst) => {}
        Err(e) => eprintln!("vessel: gdb: debugger connection ended ({e}); the guest runs on"),
    }
}

/// Most protocol errors (bad checksums, malformed packets) one session survives.
const PROTOCOL_ERRORS: u32 = 100;

/// Serve the connection until the debugger leaves. A malformed packet
/// ends gdbstub's state machine: it is nacked and a new one takes the same
/// connection (the VM stays as it was); only a connection error ends it.
fn session(conn: Peer, target: &mut VmTarget<'_>) -> Result<DisconnectReason, String> {
    for _ in 0..PROTOCOL_ERRORS {
        let stream = conn.try_clone().map_err(|e| e.to_string())?;
        let mut c = stream.into_conn();
        match GdbStub::new(stream_of(&conn)?).run_blocking::<EventLoop<'_>>(target) {
            Ok(r) => return Ok(r),
            Err(e) if e.is_connection_error() => return Err(e.to_string()),
            Err(e) => {
                eprintln!("vessel: gdb: bad packet ({e}); the session goes on");
                let _ = c.write(b'-');
                let _ = c.flush();
            }
        }
    }
    Err(format!("{PROTOCOL_ERRORS} protocol errors"))
}

fn stream_of(p: &Peer) -> Result<Box<dyn ConnectionExt<Error = io::Error>>, String> {
    p.try_clone()
        .map(Peer::into_conn)
        .map_err(|e| e.to_string())
}

/// gdbstub's blocking event loop over a [`VmTarget`].
struct EventLoop<'a>(std::marker::PhantomData<&'a ()>);

impl<'a> BlockingEventLoop for EventLoop<'a> {
    type Target = VmTarget<'a>;
    type Connection = Box<dyn ConnectionExt<Error = io::Error>>;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut VmTarget<'a>,
        conn: &mut Self::Connection,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<std::convert::Infallible, io::Error>>
    {
        loop {
            if let (_, Some(stop)) = target.hub.wait_parked(Duration::from_millis(20)) {
                return Ok(Event::TargetStopped(stop_reason(target, stop)));
            }
            if conn
                .peek()
                .map_err(WaitForStopReasonError::Connection)?
                .is_some()
            {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(byte));
            }
        }
    }

    fn on_interrupt(
        target: &mut VmTarget<'a>,
    ) -> Result<Option<Self::StopReason>, std::convert::Infallible> {
        target.hub.interrupt();
        Ok(None)
    }
}

/// The stop as gdbstub reports it.
fn stop_reason(target: &VmTarget<'_>, stop: Stop) -> MultiThreadStopReason<u64> {
    let signal = |id: u32, signal| MultiThreadStopReason::SignalWithThread {
        tid: tid_of(id),
        signal,
    };
    match stop {
        Stop::Step(id) | Stop::Trap(id) => signal(id, Signal::SIGTRAP),
        Stop::Break { id, sw: true } => MultiThreadStopReason::SwBreak(tid_of(id)),
        Stop::Break { id, sw: false } => MultiThreadStopReason::HwBreak(tid_of(id)),
        Stop::Watch { id, slot } => match target.hub.slot(slot) {
            Some(u) => MultiThreadStopReason::Watch {
                tid: tid_of(id),
                kind: match u.hw.kind {
                    HwKind::Write => WatchKind::Write,
                    _ => WatchKind::ReadWrite,
                },
                addr: u.hw.addr,
            },
            None => signal(id, Signal::SIGTRAP),
        },
        Stop::Interrupt => {
            let id = (0..target.hub.count())
                .find(|&i| target.hub.alive(i))
                .unwrap_or(0);
            signal(id, Signal::SIGINT)
        }
        Stop::Exited(code) => {
            target.told_end.store(true, Ordering::SeqCst);
            MultiThreadStopReason::Exited(code.to_le_bytes()[0])
        }
        Stop::Ended { crashed } => {
            target.told_end.store(true, Ordering::SeqCst);
            MultiThreadStopReason::Terminated(if crashed {
                Signal::SIGSEGV
            } else {
                Signal::SIGKILL
            })
        }
    }
}
