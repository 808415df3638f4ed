//! One HTTP function call: what goes to the guest, and how its result or
//! failure becomes a response.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use vessel_abi::http::{self, Response};
use vessel_abi::value::from_bytes;

use super::FnError;
use crate::sandbox::SandboxError;

/// A request as a function gets it.
pub struct Exchange {
    /// `GET`, `POST`...
    pub method: String,
    /// The query string, without `?`.
    pub query: String,
    /// Header lines (`vessel_abi::http`).
    pub headers: String,
    /// The body.
    pub body: Bytes,
}

/// A checked response from a function.
#[derive(Debug)]
pub struct HttpReply {
    /// Status code, 100..=599.
    pub status: u16,
    /// Headers, each a valid name and value.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A function's answer or why there is none.
pub type Reply = Result<HttpReply, FnError>;

/// What one call came to: the reply, the reason counted in
/// `vessel_guest_exits_total`, and whether the VM must be thrown away.
pub struct Outcome {
    /// The response (or error) for the client.
    pub reply: Reply,
    /// `ok`, `timeout`, `crash`, `panic`, `garbage`...
    pub reason: &'static str,
    /// The guest misbehaved: its VM is not used again.
    pub discard: bool,
}

/// Decode a function's result as an HTTP [`Response`].
pub fn decode(func: &str, bytes: &[u8]) -> Result<Response, SandboxError> {
    from_bytes::<Response>(bytes).map_err(|source| SandboxError::BadResult {
        function: func.to_string(),
        source,
    })
}

/// Turn a call's result into an [`Outcome`].
pub fn finish(r: Result<Response, SandboxError>, max_response: usize) -> Outcome {
    match r
        .map_err(failure)
        .and_then(|resp| check(resp, max_response))
    {
        Ok(reply) => Outcome {
            reply: Ok(reply),
            reason: "ok",
            discard: false,
        },
        Err((e, discard)) => Outcome {
            reason: e.kind,
            reply: Err(e),
            discard,
        },
    }
}

/// A result the guest returned, checked: status in range, every header a
/// valid name and value, the body within the limit. Anything else is
/// garbage (500) and the VM is discarded.
pub fn check(resp: Response, max_response: usize) -> Result<HttpReply, (FnError, bool)> {
    let (status, headers, body) = resp;
    let garbage = |d: String| (FnError::new(500, "garbage", d), true);
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| garbage(format!("status {status} is not in 100..=599")))?;
    if body.len() > max_response {
        let e = FnError::new(
            500,
            "response_too_large",
            format!("{} bytes; the limit is {max_response}", body.len()),
        );
        return Err((e, false));
    }
    let mut out = Vec::new();
    for line in http::headers(&headers) {
        let (n, v) = line.map_err(|l| garbage(format!("header line {l:?} has no `: `")))?;
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| garbage(format!("bad header name {n:?}")))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| garbage(format!("bad value for header {n}")))?;
        out.push((name, value));
    }
    Ok(HttpReply {
        status,
        headers: out,
        body,
    })
}

/// The response for a failed call, and whether the VM is discarded.
fn failure(e: SandboxError) -> (FnError, bool) {
    use SandboxError as S;
    let detail = e.to_string();
    let (status, kind) = match &e {
        S::TimedOut(_) => (504, "timeout"),
        S::UnknownFunction(_) => (404, "unknown_function"),
        S::BadArguments(_) => (500, "not_an_http_function"),
        S::GuestPanicked(_) => (500, "panic"),
        S::GuestFaulted(_) => (500, "crash"),
        S::GuestAborted(_) => (500, "abort"),
        S::GuestExited(_) => (500, "exit"),
        S::BadResult { .. } | S::Protocol(_) => (500, "garbage"),
        S::GuestError(_) => (500, "guest_error"),
        _ => (500, "vmm"),
    };
    // A refusal by the guest keeps the VM; any misbehaviour discards it.
    let discard = !matches!(e, S::UnknownFunction(_) | S::BadArguments(_));
    (FnError::new(status, kind, detail), discard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_result_is_checked_before_it_is_sent() {
        let ok = check((201, "x-a: b\n".into(), b"hi".to_vec()), 10).expect("valid");
        assert_eq!(ok.status, 201);
        assert_eq!(ok.headers.len(), 1);
        let e = |r: Result<HttpReply, (FnError, bool)>| r.expect_err("refused").0.kind;
        assert_eq!(e(check((99, String::new(), vec![]), 10)), "garbage");
        assert_eq!(e(check((600, String::new(), vec![]), 10)), "garbage");
        assert_eq!(e(check((200, "nosep\n".into(), vec![]), 10)), "garbage");
        assert_eq!(
            e(check((200, "bad name: v\n".into(), vec![]), 10)),
            "garbage"
        );
        assert_eq!(e(check((200, "a: \u{1}\n".into(), vec![]), 10)), "garbage");
        assert_eq!(
            e(check((200, String::new(), vec![0; 11]), 10)),
            "response_too_large"
        );
    }

    #[test]
    fn failures_map_to_status_and_discard() {
        let (e, d) = failure(SandboxError::TimedOut(std::time::Duration::from_secs(1)));
        assert_eq!((e.status, e.kind, d), (504, "timeout", true));
        let (e, d) = failure(SandboxError::UnknownFunction("x".into()));
        assert_eq!((e.status, d), (404, false));
        let (e, d) = failure(SandboxError::GuestPanicked("boom".into()));
        assert_eq!((e.status, e.kind, d), (500, "panic", true));
    }
}
