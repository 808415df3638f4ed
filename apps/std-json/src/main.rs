//! An ordinary `std` program, unmodified: a serde_json transform of the
//! `.json` files of a directory. The test suite builds it for Vessel and
//! for the host and compares what both print and write.
//!
//! `std-json DIR OUT`: lists DIR with `std::fs::read_dir` (names sorted,
//! each entry's kind and size), parses every `*.json` file in it, prints a
//! summary per file (or serde_json's error for a bad one) and writes OUT:
//! one JSON object with, per file, its counts and its value with every
//! object's keys sorted and every number doubled.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Map, Value};

/// What a document holds, by kind.
#[derive(Default)]
struct Counts {
    objects: u64,
    arrays: u64,
    strings: u64,
    numbers: u64,
    sum: f64,
}

impl Counts {
    fn add(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                self.objects += 1;
                m.values().for_each(|v| self.add(v));
            }
            Value::Array(a) => {
                self.arrays += 1;
                a.iter().for_each(|v| self.add(v));
            }
            Value::String(_) => self.strings += 1,
            Value::Number(n) => {
                self.numbers += 1;
                self.sum += n.as_f64().unwrap_or(0.0);
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "objects": self.objects,
            "arrays": self.arrays,
            "strings": self.strings,
            "numbers": self.numbers,
            "sum": self.sum,
        })
    }
}

/// `v` with numbers doubled (integers stay integers); keys come out
/// sorted because serde_json's `Map` is ordered by key.
fn transform(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), transform(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(transform).collect()),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i.saturating_mul(2)),
            (None, Some(f)) => Value::from(f * 2.0),
            _ => v.clone(),
        },
        _ => v.clone(),
    }
}

/// The directory's entries, sorted by name: (name, kind, size).
fn list(dir: &Path) -> std::io::Result<Vec<(String, &'static str, u64)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        let kind = if t.is_dir() {
            "dir"
        } else if t.is_file() {
            "file"
        } else {
            "other"
        };
        let len = if t.is_file() { e.metadata()?.len() } else { 0 };
        out.push((e.file_name().to_string_lossy().into_owned(), kind, len));
    }
    out.sort();
    Ok(out)
}

fn run(dir: &Path, out: &Path) -> std::io::Result<()> {
    let mut results = BTreeMap::new();
    for (name, kind, len) in list(dir)? {
        println!("{kind} {name} {len}");
        if kind != "file" || !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&name))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                let mut c = Counts::default();
                c.add(&v);
                println!(
                    "  {} objects, {} arrays, {} strings, {} numbers, sum {}",
                    c.objects, c.arrays, c.strings, c.numbers, c.sum
                );
                results.insert(
                    name,
                    serde_json::json!({ "counts": c.to_json(), "doubled": transform(&v) }),
                );
            }
            Err(e) => println!("  bad json: {e}"),
        }
    }
    let doc = serde_json::to_string_pretty(&results).map_err(std::io::Error::other)?;
    std::fs::write(out, doc + "\n")?;
    println!("wrote {} files to {}", results.len(), out.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = &args[..] else {
        eprintln!("usage: std-json DIR OUT");
        return ExitCode::from(2);
    };
    match run(Path::new(dir), Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("std-json: {e} ({:?})", e.kind());
            ExitCode::FAILURE
        }
    }
}
