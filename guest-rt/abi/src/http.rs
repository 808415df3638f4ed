//! HTTP functions: what `vessel serve` passes a guest function for a
//! request and what it reads back, shared by the server and the guest.
//!
//! A guest function `NAME` exported with `guest_rt::exports!` serves
//! `POST /fn/NAME` when its signature is
//! `fn NAME(method: &str, query: &str, headers: &str, body: &[u8]) -> (u32, String, Vec<u8>)`:
//! the arguments are a [`Request`], the result a [`Response`] (status,
//! headers, body). Headers travel as text, one `name: value` line each
//! ending in `\n`, names in lower case ([`push_header`], [`headers`]).

use alloc::string::String;
use alloc::vec::Vec;

/// The argument tuple of an HTTP function: method, query string (without
/// `?`, possibly empty), header lines, body.
pub type Request<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

/// The result of an HTTP function: status (100..=599), header lines, body.
pub type Response = (u32, String, Vec<u8>);

/// Append the header line `name: value\n` to `out`.
pub fn push_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

/// The `(name, value)` pairs of header lines; a line without `: ` yields
/// `Err` with the line (the server answers it as a bad response).
pub fn headers(text: &str) -> impl Iterator<Item = Result<(&str, &str), &str>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once(": ").ok_or(l))
}

/// The value of header `name` (ASCII case ignored) in header lines.
pub fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    headers(text)
        .filter_map(Result::ok)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_round_trip() {
        let mut s = String::new();
        push_header(&mut s, "content-type", "application/json");
        push_header(&mut s, "x-a", "b: c");
        let all: Vec<_> = headers(&s).collect();
        assert_eq!(
            all,
            [
                Ok(("content-type", "application/json")),
                Ok(("x-a", "b: c"))
            ]
        );
        assert_eq!(header(&s, "Content-Type"), Some("application/json"));
        assert_eq!(header(&s, "x-b"), None);
        assert_eq!(headers("bad line\n").next(), Some(Err("bad line")));
    }
}
