//! A JSON transform for `vessel serve`: `POST /fn/stats` with
//! `{"values": [numbers]}` answers count, sum, mean, min, max, the values
//! sorted and each value's share of the sum. A body that is not that
//! shape is a 400 with a JSON error. (`vessel_abi::http` signature.)
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use guest_rt::abi::http::{push_header, Response};
use serde_json::{json, Value};

guest_rt::entry!(main);

fn main() {
    guest_rt::export::serve(EXPORTS)
}

fn reply(status: u32, v: &Value) -> Response {
    let mut h = String::new();
    push_header(&mut h, "content-type", "application/json");
    (status, h, serde_json::to_vec(v).unwrap_or_default())
}

/// The numbers under `values`, or what is wrong with the body.
fn values(body: &[u8]) -> Result<Vec<f64>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| alloc::format!("{e}"))?;
    let list = v
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| String::from("expected {\"values\": [numbers]}"))?;
    list.iter()
        .map(|x| {
            x.as_f64()
                .ok_or_else(|| alloc::format!("not a number: {x}"))
        })
        .collect()
}

fn summary(xs: &mut [f64]) -> Value {
    let sum: f64 = xs.iter().sum();
    let n = xs.len();
    let share: Vec<f64> = xs
        .iter()
        .map(|x| if sum != 0.0 { x / sum } else { 0.0 })
        .collect();
    xs.sort_by(f64::total_cmp);
    json!({
        "count": n,
        "sum": sum,
        "mean": if n > 0 { sum / n as f64 } else { 0.0 },
        "min": xs.first(),
        "max": xs.last(),
        "sorted": xs,
        "share": share,
    })
}

guest_rt::exports! {
    EXPORTS:
    fn stats(_method: &str, _query: &str, _headers: &str, body: &[u8]) -> Response {
        match values(body) {
            Ok(mut xs) => reply(200, &summary(&mut xs)),
            Err(e) => reply(400, &json!({ "error": e })),
        }
    }
}
