//! Functions the guest exports to a host program (a `vmm::Sandbox`), and
//! the guest side of the embedding protocol (`vessel_abi::embed`).
//!
//! ```ignore
//! guest_rt::entry!(main);
//! fn main() { guest_rt::export::serve(EXPORTS) }
//! guest_rt::exports! {
//!     EXPORTS:
//!     fn add(a: i32, b: i32) -> i32 { a + b }
//!     fn len(data: &[u8]) -> u64 { data.len() as u64 }   // no copy: points into the shared buffer
//! }
//! ```
//!
//! Requests arrive in one shared buffer ([`SHARED_BUFFER`] bytes, in the
//! guest's `.bss`); a guest function's `&[u8]` / `&str` arguments borrow
//! it. A nested call (the function calls the host, which calls the guest
//! again) gets the buffer's free part after the outer request; a request
//! larger than what is free gets a heap buffer of its own.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use vessel_abi::embed::{self, error, reply, status, MAX_DEPTH, SHARED_BUFFER};
use vessel_abi::{Call, GuestSlice};

use crate::cell::Global;
use crate::hypercall::slice;

/// A guest function as the protocol runs it: encoded arguments in, the
/// encoded value (Ok) or an encoded error (`embed::encode_error`) out.
pub type Thunk = fn(&[u8]) -> Result<Vec<u8>, Vec<u8>>;

/// One exported function (made by [`crate::exports!`]).
pub struct Export {
    /// The name the host calls it by.
    pub name: &'static str,
    /// Decodes the arguments, runs the function, encodes its value.
    pub run: Thunk,
}

#[repr(C, align(4096))]
struct Shared {
    buf: UnsafeCell<[u8; SHARED_BUFFER]>,
}

// SAFETY: the buffer is only reached through `free` and `Reply::bytes`,
// which hand out disjoint ranges (below and above `TOP`), on the one vCPU.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    buf: UnsafeCell::new([0; SHARED_BUFFER]),
};
/// Where the shared buffer's free part starts.
static TOP: AtomicUsize = AtomicUsize::new(0);
/// Guest functions running now (nested calls included).
static DEPTH: AtomicU32 = AtomicU32::new(0);
static TABLE: Global<&'static [Export]> = Global::new("export table borrowed twice", || &[]);

fn base() -> usize {
    SHARED.buf.get() as usize
}

/// The free part of the shared buffer, for the next reply.
fn free() -> GuestSlice {
    let top = TOP.load(Ordering::Relaxed);
    GuestSlice {
        addr: (base() + top) as u64,
        len: (SHARED_BUFFER - top) as u64,
    }
}

/// A reply: its kind and where its bytes are.
pub(crate) struct Reply {
    kind: u64,
    /// Offset and length in the shared buffer, or a buffer of its own.
    at: (usize, usize),
    own: Option<Vec<u8>>,
}

impl Reply {
    fn bytes(&self) -> &[u8] {
        match &self.own {
            Some(v) => v,
            // SAFETY: the host wrote `len` bytes at `off` (checked against
            // the free part in `exchange`); nothing writes that range while
            // this reply lives, since TOP moves past it for nested calls.
            None => unsafe {
                core::slice::from_raw_parts((base() + self.at.0) as *const u8, self.at.1)
            },
        }
    }
}

/// One protocol step: make `call`, and follow a MORE reply into a buffer
/// of its own.
fn exchange(call: Call) -> Reply {
    let room = free();
    let (kind, len) = step(call);
    if kind != reply::MORE {
        if len > room.len {
            crate::process::abort("embedding: the host's reply overran the shared buffer");
        }
        let off = room.addr as usize - base();
        return Reply {
            kind,
            at: (off, len as usize),
            own: None,
        };
    }
    let mut own = Vec::new();
    if own.try_reserve_exact(len as usize).is_err() {
        crate::process::abort("embedding: no guest memory for a large request");
    }
    own.resize(len as usize, 0);
    let (kind, got) = step(Call::Again { free: slice(&own) });
    own.truncate(got.min(len) as usize);
    Reply {
        kind,
        at: (0, 0),
        own: Some(own),
    }
}

fn step(call: Call) -> (u64, u64) {
    match crate::hypercall::call(call) {
        Ok(r) => r,
        Err(vessel_abi::Errno::NotSupported) => crate::process::abort(
            "this app exports functions for a host program: load it with vmm::Sandbox",
        ),
        Err(_) => crate::process::abort("embedding: the host refused a protocol step"),
    }
}

/// Run the requested function; the status and bytes for the next Serve.
fn run(req: &Reply) -> (u32, Vec<u8>) {
    let bytes = req.bytes();
    let Ok((name, args)) = embed::decode_request(bytes) else {
        let e = embed::encode_error(error::PROTOCOL, "malformed request");
        return (status::ERROR, e);
    };
    let table = TABLE.with(|t| *t);
    let Some(f) = table.iter().find(|e| e.name == name) else {
        let e = embed::encode_error(error::UNKNOWN_FUNCTION, name);
        return (status::ERROR, e);
    };
    if DEPTH.load(Ordering::Relaxed) >= MAX_DEPTH {
        return (status::ERROR, embed::encode_error(error::TOO_DEEP, name));
    }
    let saved = TOP.load(Ordering::Relaxed);
    if req.own.is_none() {
        TOP.store(
            (req.at.0 + req.at.1).next_multiple_of(16),
            Ordering::Relaxed,
        );
    }
    DEPTH.fetch_add(1, Ordering::Relaxed);
    let out = (f.run)(args);
    DEPTH.fetch_sub(1, Ordering::Relaxed);
    TOP.store(saved, Ordering::Relaxed);
    match out {
        Ok(v) => (status::RESULT, v),
        Err(e) => (status::ERROR, e),
    }
}

/// Answer a running guest function's end and wait for the next reply.
fn finish(status: u32, out: &[u8]) -> Reply {
    crate::console::flush_all();
    exchange(Call::Serve {
        status,
        done: slice(out),
        free: free(),
    })
}

/// Offer `exports` to the host and run what it calls, forever. Called
/// from `main` after the app's own set-up: the state at this point is what
/// a sandbox snapshots and restores to.
pub fn serve(exports: &'static [Export]) -> ! {
    TABLE.with(|t| *t = exports);
    let list = embed::encode_exports(exports.iter().map(|e| e.name));
    let mut next = finish(status::READY, &list);
    loop {
        let (st, out) = match next.kind {
            reply::CALL => run(&next),
            _ => (
                status::ERROR,
                embed::encode_error(error::PROTOCOL, "a reply outside a host call"),
            ),
        };
        drop(next);
        next = finish(st, &out);
    }
}

/// A host function's failure as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The host answered with an error (`embed::error` code, message).
    Failed(u8, alloc::string::String),
    /// The host's value did not decode as the expected type.
    BadResult(vessel_abi::value::ValueError),
    /// The host sent something the protocol does not allow here.
    Protocol(u64),
}

/// The host's reply to a host call, after running any guest functions it
/// asked for meanwhile (re-entry).
pub(crate) fn host_exchange(req: &[u8]) -> Reply {
    let mut next = exchange(Call::HostCall {
        req: slice(req),
        free: free(),
    });
    while next.kind == reply::CALL {
        let (st, out) = run(&next);
        drop(next);
        next = finish(st, &out);
    }
    next
}

/// Decode a host call's final reply.
pub(crate) fn host_result<R>(next: &Reply) -> Result<R, HostError>
where
    R: for<'a> vessel_abi::value::Decode<'a>,
{
    match next.kind {
        reply::RESULT => vessel_abi::value::from_bytes(next.bytes()).map_err(HostError::BadResult),
        reply::ERROR => {
            let (code, msg) = embed::decode_error(next.bytes()).unwrap_or((error::PROTOCOL, &[]));
            let msg = alloc::string::String::from_utf8_lossy(msg).into_owned();
            Err(HostError::Failed(code, msg))
        }
        other => Err(HostError::Protocol(other)),
    }
}

/// Define guest functions and a table `NAME` that exports them, for
/// [`serve`]. Parameters may be `i32`, `u32`, `i64`, `u64`, `f32`, `f64`,
/// `bool`, `&str`, `String`, `&[u8]`, `Vec<u8>`; results the same (or
/// `()`). Wrong argument types or counts reach the host as a
/// bad-arguments error; the function does not run.
#[macro_export]
macro_rules! exports {
    ($table:ident: $(
        $(#[$meta:meta])*
        fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? $body:block
    )*) => {
        $(
            $(#[$meta])*
            fn $name($($arg: $ty),*) $(-> $ret)? $body
        )*
        static $table: &[$crate::export::Export] = &[$(
            $crate::export::Export {
                name: stringify!($name),
                run: {
                    fn thunk(
                        args: &[u8],
                    ) -> ::core::result::Result<$crate::__alloc::vec::Vec<u8>, $crate::__alloc::vec::Vec<u8>> {
                        #[allow(unused_parens)]
                        let ($($arg,)*): ($($ty,)*) = match $crate::abi::value::from_bytes(args) {
                            Ok(v) => v,
                            Err(e) => return Err($crate::export::bad_arguments(stringify!($name), e)),
                        };
                        let out = $name($($arg),*);
                        Ok($crate::abi::value::to_bytes(&out))
                    }
                    thunk
                },
            }
        ),*];
    };
}

/// The error for arguments that did not decode.
#[doc(hidden)]
pub fn bad_arguments(name: &str, e: vessel_abi::value::ValueError) -> Vec<u8> {
    let msg = alloc::format!("{name}: {e}");
    embed::encode_error(error::BAD_ARGUMENTS, &msg)
}
