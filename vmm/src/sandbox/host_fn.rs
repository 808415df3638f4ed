//! Host functions: Rust closures a guest calls by name, with typed
//! arguments and results in the `vessel_abi::value` encoding.
//!
//! `|a: i64, b: i64| Ok::<_, String>(a + b)` is a host function of two
//! `i64`s; with a first parameter `&mut Caller` it may call the guest back
//! (re-entry). Arguments are owned (`String`, `Vec<u8>`, numbers, `bool`);
//! a result is any encodable value; `Err(text)` reaches the guest as a
//! failed host call, never as a crash.

use std::collections::HashMap;
use std::sync::Arc;

use vessel_abi::value::{from_bytes, to_bytes, Decode, Encode, ValueError};

use super::Caller;

/// Why a host function did not give a value.
#[derive(Debug)]
pub enum HostFnError {
    /// The guest's arguments do not decode as the function's parameters.
    BadArguments(ValueError),
    /// The function returned this error.
    Failed(String),
    /// A guest call it made failed (and may have poisoned the sandbox).
    Guest(super::SandboxError),
}

/// What the registry keeps per function.
pub(crate) type Erased =
    dyn Fn(&mut Caller<'_>, &[u8]) -> Result<Vec<u8>, HostFnError> + Send + Sync;

/// The host functions of a sandbox, by name.
pub(crate) type Registry = HashMap<String, Arc<Erased>>;

/// A closure that can be a host function taking `Args`.
pub trait HostFn<Args>: Send + Sync + 'static {
    /// Decode `args`, run, encode the result.
    fn invoke(&self, args: &[u8]) -> Result<Vec<u8>, HostFnError>;
}

/// A host function that gets the [`Caller`] first, to call the guest back.
pub trait HostFnWithCaller<Args>: Send + Sync + 'static {
    /// Decode `args`, run with `caller`, encode the result.
    fn invoke(&self, caller: &mut Caller<'_>, args: &[u8]) -> Result<Vec<u8>, HostFnError>;
}

macro_rules! host_fn {
    ($($a:ident),*) => {
        impl<F, R, E, $($a),*> HostFn<($($a,)*)> for F
        where
            F: Fn($($a),*) -> Result<R, E> + Send + Sync + 'static,
            R: Encode,
            E: std::fmt::Display,
            $($a: for<'x> Decode<'x>,)*
        {
            #[allow(non_snake_case)]
            fn invoke(&self, args: &[u8]) -> Result<Vec<u8>, HostFnError> {
                let ($($a,)*): ($($a,)*) = from_bytes(args).map_err(HostFnError::BadArguments)?;
                match self($($a),*) {
                    Ok(r) => Ok(to_bytes(&r)),
                    Err(e) => Err(HostFnError::Failed(e.to_string())),
                }
            }
        }

        impl<F, R, E, $($a),*> HostFnWithCaller<($($a,)*)> for F
        where
            F: Fn(&mut Caller<'_>, $($a),*) -> Result<R, E> + Send + Sync + 'static,
            R: Encode,
            E: std::fmt::Display,
            $($a: for<'x> Decode<'x>,)*
        {
            #[allow(non_snake_case)]
            fn invoke(&self, caller: &mut Caller<'_>, args: &[u8]) -> Result<Vec<u8>, HostFnError> {
                let ($($a,)*): ($($a,)*) = from_bytes(args).map_err(HostFnError::BadArguments)?;
                match self(caller, $($a),*) {
                    Ok(r) => Ok(to_bytes(&r)),
                    Err(e) => Err(HostFnError::Failed(e.to_string())),
                }
            }
        }
    };
}

host_fn!();
host_fn!(A);
host_fn!(A, B);
host_fn!(A, B, C);
host_fn!(A, B, C, D);
host_fn!(A, B, C, D, G);
host_fn!(A, B, C, D, G, H);

/// Type-erase a plain host function.
pub(crate) fn erase<Args: 'static, F: HostFn<Args>>(f: F) -> Arc<Erased> {
    Arc::new(move |_: &mut Caller<'_>, args: &[u8]| f.invoke(args))
}

/// Type-erase a host function that takes the caller.
pub(crate) fn erase_with_caller<Args: 'static, F: HostFnWithCaller<Args>>(f: F) -> Arc<Erased> {
    Arc::new(move |c: &mut Caller<'_>, args: &[u8]| f.invoke(c, args))
}
