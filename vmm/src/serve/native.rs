//! `--native`: the example handlers compiled into the server itself, run
//! by the same workers through the same queue, without a VM: the baseline
//! `cargo xtask bench serve` compares every lifecycle with.

use vessel_abi::http::{header, push_header};

use super::call::{check, Exchange, Reply};
use super::FnError;

/// Run native handler `func` (`echo`, as apps/fn-echo's `echo`).
pub fn handle(func: &str, req: &Exchange) -> Reply {
    match func {
        "echo" => {
            let mut h = String::new();
            let ct = header(&req.headers, "content-type").unwrap_or("application/octet-stream");
            push_header(&mut h, "content-type", ct);
            check((200, h, req.body.to_vec()), usize::MAX).map_err(|(e, _)| e)
        }
        _ => Err(FnError::new(
            404,
            "unknown_function",
            format!("no native handler {func:?} (there is `echo`)"),
        )),
    }
}
