//! Embedding: a host program calls functions the guest exports, and the
//! guest calls functions the host registered.
//!
//! Protocol (each step is one doorbell exit):
//! 1. After its set-up the guest calls [`crate::Call::Serve`] with status
//!    [`status::READY`] and its export list ([`encode_exports`]) in `done`;
//!    this is the point a sandbox snapshots.
//! 2. Every answer to `Serve`, `HostCall` or `Again` is a reply: the frame's
//!    `ret` is a [`reply`] kind and `ret2` a length; the reply's bytes are
//!    at the start of the `free` region the guest named in that call (its
//!    shared buffer). [`reply::CALL`]: a request ([`encode_request`]) to
//!    run an exported function; the guest answers with `Serve` again,
//!    status [`status::RESULT`] (`done` = the encoded value) or
//!    [`status::ERROR`] (`done` = [`encode_error`]).
//! 3. `HostCall` sends a request for a host function; its reply is
//!    [`reply::RESULT`] / [`reply::ERROR`], or a nested [`reply::CALL`]
//!    (host -> guest -> host -> guest re-entry, at most [`MAX_DEPTH`]
//!    guest calls deep). [`reply::MORE`]: the reply needs `ret2` bytes and
//!    `free` was smaller; the guest names a region that large with
//!    [`crate::Call::Again`] and gets the same reply there. So arguments
//!    are limited by guest memory, not by the shared buffer.

use alloc::vec::Vec;

use crate::value::{put_run, Reader, ValueError};

/// `status` of [`crate::Call::Serve`].
pub mod status {
    /// Set-up done, nothing was running; `done` is the export list.
    pub const READY: u32 = 0;
    /// The running guest function returned; `done` is its encoded value.
    pub const RESULT: u32 = 1;
    /// The running guest function did not run; `done` is an error.
    pub const ERROR: u32 = 2;
}

/// Reply kinds (a reply's `ret`).
pub mod reply {
    /// Run a guest function: the request is in `free`.
    pub const CALL: u64 = 1;
    /// The host function returned: its encoded value is in `free`.
    pub const RESULT: u64 = 2;
    /// The host function failed: an error is in `free`.
    pub const ERROR: u64 = 3;
    /// The reply needs `ret2` bytes: call `Again` with a region that large.
    pub const MORE: u64 = 4;
}

/// Error codes (the first byte of an error).
pub mod error {
    /// No function of that name.
    pub const UNKNOWN_FUNCTION: u8 = 1;
    /// The arguments did not decode as the function's parameters.
    pub const BAD_ARGUMENTS: u8 = 2;
    /// The host function returned an error.
    pub const FAILED: u8 = 3;
    /// The call would nest deeper than [`super::MAX_DEPTH`].
    pub const TOO_DEEP: u8 = 4;
    /// The guest could not allocate room for the request.
    pub const NO_MEMORY: u8 = 5;
    /// A message the protocol does not allow here.
    pub const PROTOCOL: u8 = 6;
}

/// Guest calls in flight at once, the outermost included: host -> guest
/// (1) -> host -> guest (2) ... A call deeper than this is refused with
/// [`error::TOO_DEEP`].
pub const MAX_DEPTH: u32 = 8;

/// The largest request, result or error either side accepts (bytes).
pub const MAX_MESSAGE: u64 = 64 << 20;

/// The longest function name.
pub const MAX_NAME: usize = 256;

/// The shared buffer the guest runtime offers for replies (bytes).
pub const SHARED_BUFFER: usize = 256 << 10;

/// A request: function `name` and the encoded argument tuple `args`.
pub fn encode_request(name: &str, args: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + name.len() + args.len());
    put_run(&mut out, name.as_bytes());
    out.extend_from_slice(args);
    out
}

/// Why a request did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The name's length or bytes are missing.
    Value(ValueError),
    /// The name is longer than [`MAX_NAME`].
    NameTooLong(usize),
}

/// Split a request into its name and encoded arguments.
pub fn decode_request(bytes: &[u8]) -> Result<(&str, &[u8]), RequestError> {
    let mut r = Reader::new(bytes);
    let n = r.u32_raw().map_err(RequestError::Value)? as usize;
    if n > MAX_NAME {
        return Err(RequestError::NameTooLong(n));
    }
    let name = r.take(n).map_err(RequestError::Value)?;
    let name = core::str::from_utf8(name).map_err(|_| RequestError::Value(ValueError::BadUtf8))?;
    Ok((name, r.rest()))
}

/// An error: its code and a UTF-8 message.
pub fn encode_error(code: u8, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.len());
    out.push(code);
    out.extend_from_slice(message.as_bytes());
    out
}

/// An error's code and message (`None`: empty); bad UTF-8 is kept lossily
/// by the caller.
pub fn decode_error(bytes: &[u8]) -> Option<(u8, &[u8])> {
    bytes.split_first().map(|(c, m)| (*c, m))
}

/// The export list: each name as a `u32` length and its bytes.
pub fn encode_exports<'a>(names: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        put_run(&mut out, n.as_bytes());
    }
    out
}

/// Read an export list.
pub fn decode_exports(bytes: &[u8]) -> Result<Vec<&str>, RequestError> {
    let mut r = Reader::new(bytes);
    let mut names = Vec::new();
    while !r.rest().is_empty() {
        let n = r.u32_raw().map_err(RequestError::Value)? as usize;
        if n > MAX_NAME {
            return Err(RequestError::NameTooLong(n));
        }
        let b = r.take(n).map_err(RequestError::Value)?;
        names.push(core::str::from_utf8(b).map_err(|_| RequestError::Value(ValueError::BadUtf8))?);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::to_bytes;

    #[test]
    fn request_error_and_exports_round_trip() {
        let args = to_bytes(&(1i32, "x"));
        let req = encode_request("add", &args);
        assert_eq!(decode_request(&req), Ok(("add", &args[..])));
        let e = encode_error(error::FAILED, "no");
        assert_eq!(decode_error(&e), Some((error::FAILED, &b"no"[..])));
        assert_eq!(decode_error(&[]), None);
        let list = encode_exports(["a", "bc"].into_iter());
        assert_eq!(decode_exports(&list).unwrap(), ["a", "bc"]);
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(decode_request(&[1, 0]).is_err());
        assert_eq!(
            decode_request(&[1, 1, 0, 0]),
            Err(RequestError::NameTooLong(257))
        );
        assert!(decode_request(&[5, 0, 0, 0, b'a']).is_err());
        assert!(decode_exports(&[3, 0, 0, 0, b'a']).is_err());
        assert!(decode_exports(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
