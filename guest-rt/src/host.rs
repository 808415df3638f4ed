//! Calling functions the host program registered (`vmm::Sandbox::register`).
//!
//! ```ignore
//! let sum: i64 = guest_rt::host::call("add", (2i64, 3i64))?;
//! ```
//!
//! A host call is one exit. While it runs the host may call exported guest
//! functions again (re-entry, `vessel_abi::embed::MAX_DEPTH` deep); they
//! run here, inside this call, before it returns.

pub use crate::export::HostError;
use vessel_abi::value::{to_bytes, Decode, Encode};

/// Call host function `name` with the argument tuple `args`; the value
/// decodes as `R`.
pub fn call<R>(name: &str, args: impl Encode) -> Result<R, HostError>
where
    R: for<'a> Decode<'a>,
{
    let req = vessel_abi::embed::encode_request(name, &to_bytes(&args));
    let next = crate::export::host_exchange(&req);
    crate::export::host_result(&next)
}
