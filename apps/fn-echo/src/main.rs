//! HTTP functions for `vessel serve` (`POST /fn/NAME`): an echo, a view of
//! what arrived, a counter that shows each lifecycle's reset, and hostile
//! functions (crash, panic, spin, garbage, huge) that the server must
//! survive. Signature of each: `vessel_abi::http::Request` in,
//! `vessel_abi::http::Response` out.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::abi::http::{header, push_header, Response};

guest_rt::entry!(main);

/// Counts `count` calls since the snapshot (each lifecycle resets it, or not).
static COUNT: AtomicU64 = AtomicU64::new(0);

fn main() {
    guest_rt::export::serve(EXPORTS)
}

fn text(status: u32, body: String) -> Response {
    let mut h = String::new();
    push_header(&mut h, "content-type", "text/plain");
    (status, h, body.into_bytes())
}

guest_rt::exports! {
    EXPORTS:
    /// The body back, with the request's content type.
    fn echo(_method: &str, _query: &str, headers: &str, body: &[u8]) -> Response {
        let mut h = String::new();
        let ct = header(headers, "content-type").unwrap_or("application/octet-stream");
        push_header(&mut h, "content-type", ct);
        (200, h, body.to_vec())
    }

    /// What the guest received: method, query, header lines, body length;
    /// status and a header chosen by the request (`x-status`, `x-reply`).
    fn inspect(method: &str, query: &str, headers: &str, body: &[u8]) -> Response {
        let status = header(headers, "x-status").and_then(|s| s.parse().ok()).unwrap_or(200);
        let mut h = String::new();
        if let Some(v) = header(headers, "x-reply") {
            push_header(&mut h, "x-guest-reply", v);
        }
        let out = alloc::format!("{method} {query} {}\n{headers}", body.len());
        (status, h, out.into_bytes())
    }

    /// Calls since the snapshot, this one included.
    fn count(_m: &str, _q: &str, _h: &str, _b: &[u8]) -> Response {
        text(200, alloc::format!("{}", COUNT.fetch_add(1, Ordering::Relaxed) + 1))
    }

    /// A body of `query` bytes (a response over the server's limit).
    fn huge(_m: &str, query: &str, _h: &str, _b: &[u8]) -> Response {
        let n: usize = query.parse().unwrap_or(0);
        (200, String::new(), alloc::vec![b'x'; n])
    }

    /// Answer after `query` milliseconds (a request in flight at shutdown).
    fn slow(_m: &str, query: &str, _h: &str, _b: &[u8]) -> Response {
        let ms: u64 = query.parse().unwrap_or(0);
        let end = guest_rt::time::host_monotonic_ns().saturating_add(ms.saturating_mul(1_000_000));
        while guest_rt::time::host_monotonic_ns() < end {
            core::hint::spin_loop()
        }
        text(200, alloc::format!("slept {ms} ms"))
    }

    /// A page fault: a write to an unmapped address.
    fn crash(_m: &str, _q: &str, _h: &str, _b: &[u8]) -> Response {
        // SAFETY: deliberately not: the launcher reports the fault.
        unsafe { core::ptr::write_volatile(0x5ead_0000_0000 as *mut u64, 1) };
        text(200, String::new())
    }

    fn panic(_m: &str, _q: &str, _h: &str, _b: &[u8]) -> Response {
        panic!("asked to panic")
    }

    /// Never returns (the server's timeout ends it).
    fn spin(_m: &str, _q: &str, _h: &str, _b: &[u8]) -> Response {
        loop {
            core::hint::spin_loop()
        }
    }

    /// A status outside 100..=599 and a header line without `: `.
    fn garbage(_m: &str, query: &str, _h: &str, _b: &[u8]) -> Response {
        match query {
            "header" => (200, String::from("no separator\n"), Vec::new()),
            _ => (1000, String::new(), Vec::new()),
        }
    }

    /// Not an HTTP function: the server reports the wrong signature.
    fn not_http(a: u32) -> u32 { a }
}
