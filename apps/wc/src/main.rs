//! Counts lines, words and bytes of files in pre-opened directories, like
//! GNU `wc` in the C locale: a word is a run of printable bytes between
//! white space; other bytes neither start nor end one.
//!
//! `wc --dir HOST:/data -- /data/a.txt /data/dir ...`
//!
//! One line per file, `LINES WORDS BYTES PATH`, then `LINES WORDS BYTES
//! total` when there was more than one. A directory argument counts every
//! file in it (listed with `read_dir`, sorted by name). Files are read in
//! 1 MiB requests through the I/O ring. A file that cannot be read is
//! reported on stderr and makes the exit code 1.
#![cfg_attr(vessel_guest, no_std)]
#![no_main]
// Outside guest builds (no `--cfg vessel_guest`, e.g. `cargo clippy
// --workspace` on the host) the app is an empty crate.
#![cfg(vessel_guest)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use guest_rt::io::Read;
use guest_rt::{eprintln, fs, println};

guest_rt::entry!(main);

/// Counts so far, and whether the last byte was inside a word.
#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
    in_word: bool,
}

impl Counts {
    fn add(&mut self, buf: &[u8]) {
        for &b in buf {
            if b == b'\n' {
                self.lines += 1;
            }
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                self.in_word = false;
            } else if b.is_ascii_graphic() {
                // Printable: starts or continues a word. Other bytes
                // neither start nor end one (coreutils 9 in the C locale).
                if !self.in_word {
                    self.words += 1;
                }
                self.in_word = true;
            }
        }
        self.bytes += buf.len() as u64;
    }
}

fn count(path: &str) -> guest_rt::io::Result<Counts> {
    let mut f = fs::File::open(path)?;
    let mut buf = alloc::vec![0u8; 1 << 20];
    let mut c = Counts::default();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.add(&buf[..n]);
    }
}

/// The files an argument names: itself, or a directory's files by name.
fn files(arg: &str) -> guest_rt::io::Result<Vec<String>> {
    if !fs::metadata(arg)?.is_dir() {
        return Ok(alloc::vec![String::from(arg)]);
    }
    let mut v = Vec::new();
    for e in fs::read_dir(arg)? {
        let e = e?;
        if e.file_type().is_file() {
            v.push(String::from(e.path()));
        }
    }
    v.sort();
    Ok(v)
}

fn main() -> i32 {
    let args: Vec<&str> = guest_rt::env::args().skip(1).collect();
    let mut total = Counts::default();
    let (mut shown, mut code) = (0, 0);
    for arg in args {
        let list = match files(arg) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("wc: {arg}: {e}");
                code = 1;
                continue;
            }
        };
        for path in list {
            match count(&path) {
                Ok(c) => {
                    println!("{} {} {} {}", c.lines, c.words, c.bytes, path);
                    total.lines += c.lines;
                    total.words += c.words;
                    total.bytes += c.bytes;
                    shown += 1;
                }
                Err(e) => {
                    eprintln!("wc: {path}: {e}");
                    code = 1;
                }
            }
        }
    }
    if shown > 1 {
        println!("{} {} {} total", total.lines, total.words, total.bytes);
    }
    code
}
