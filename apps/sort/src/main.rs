//! Sorts the lines of a file into a new file, like `LC_ALL=C sort IN > OUT`.
//!
//! `sort --dir HOST:/data -- /data/in.txt /data/out.txt`
//!
//! Lines compare as bytes; every output line ends with a newline. OUT is
//! written next to its final name and renamed into place, so a reader
//! never sees half a file. Errors go to stderr with exit code 1.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;

use guest_rt::{eprintln, fs};

guest_rt::entry!(main);

fn sort(input: &str, output: &str) -> guest_rt::io::Result<usize> {
    let data = fs::read(input)?;
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.last() == Some(&b'\n') || data.is_empty() {
        lines.pop();
    }
    lines.sort_unstable();
    let mut out = Vec::with_capacity(data.len() + 1);
    for l in &lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    let tmp = format!("{output}.sorting");
    fs::write(&tmp, &out)?;
    fs::rename(&tmp, output)?;
    Ok(lines.len())
}

fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().skip(1).collect();
    let [input, output] = args[..] else {
        eprintln!("usage: sort IN OUT");
        return 2;
    };
    match sort(input, output) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("sort: {e}");
            1
        }
    }
}
