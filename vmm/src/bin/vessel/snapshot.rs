//! `vessel snapshot`: snapshot a library guest to a file, or check one by
//! restoring it and saving it again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vessel_abi::exit;
use vessel_abi::value::from_bytes;
use vmm::sandbox::{Sandbox, SandboxError};
use vmm::snapshot::Snapshot;

use crate::cli::LaunchOpts;

/// What `vessel snapshot` was asked.
pub struct Request {
    pub opts: LaunchOpts,
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub calls: Vec<String>,
    pub check: bool,
}

/// A guest function's result, shown as the first type it decodes as.
fn show(bytes: &[u8]) -> String {
    if let Ok(v) = from_bytes::<u64>(bytes) {
        return v.to_string();
    }
    if let Ok(v) = from_bytes::<i64>(bytes) {
        return v.to_string();
    }
    if let Ok(v) = from_bytes::<u32>(bytes) {
        return v.to_string();
    }
    if let Ok(v) = from_bytes::<i32>(bytes) {
        return v.to_string();
    }
    if let Ok(v) = from_bytes::<String>(bytes) {
        return format!("{v:?}");
    }
    if from_bytes::<()>(bytes).is_ok() {
        return "()".into();
    }
    format!("{} bytes", bytes.len())
}

fn call_all(sb: &mut Sandbox, calls: &[String]) -> Result<(), SandboxError> {
    for c in calls {
        let out = sb.call_raw(c, &vessel_abi::value::to_bytes(&()))?;
        println!("{c} -> {}", show(&out));
    }
    Ok(())
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn save(snap: &Snapshot, out: Option<&Path>) -> Result<Vec<u8>, SandboxError> {
    let bytes = snap.to_bytes();
    if let Some(p) = out {
        snap.save(p)?;
        println!(
            "wrote {} ({} bytes, {} pages of RAM)",
            p.display(),
            bytes.len(),
            snap.saved_pages()
        );
    }
    Ok(bytes)
}

fn take(r: &Request) -> Result<(), SandboxError> {
    let mut host = vmm::Host::open()?;
    let bytes = vmm::read_image(&r.input)?;
    // A packed app: its guest.
    let bytes = match vmm::pack::guest_in(&bytes) {
        Some(inner) => inner.to_vec(),
        None => bytes,
    };
    let mut b = Sandbox::from_bytes(bytes).mem_size(r.opts.mem);
    if let Some(s) = r.opts.sve_vl.or(r.opts.sve) {
        b = b.sve(s);
    }
    let mut sb = b.build(&mut host)?;
    println!("exports: {}", sb.exports().join(", "));
    call_all(&mut sb, &r.calls)?;
    save(&*sb.snapshot()?, r.output.as_deref())?;
    Ok(())
}

fn check(r: &Request) -> Result<(), SandboxError> {
    let original = std::fs::read(&r.input).map_err(|source| vmm::Error::HostIo {
        what: "read",
        path: r.input.clone(),
        source,
    })?;
    let snap = Arc::new(Snapshot::load(&r.input)?);
    let mut host = vmm::Host::open()?;
    let mut b = Sandbox::from_snapshot(snap);
    // Ask for other SVE lengths than the snapshot's (to see the refusal).
    if let Some(s) = r.opts.sve_vl.or(r.opts.sve) {
        b = b.sve(s);
    }
    let mut sb = b.build(&mut host)?;
    println!(
        "restored {}; exports: {}",
        r.input.display(),
        sb.exports().join(", ")
    );
    call_all(&mut sb, &r.calls)?;
    let again = save(&*sb.snapshot()?, r.output.as_deref())?;
    if !r.calls.is_empty() {
        return Ok(());
    }
    match first_difference(&original, &again) {
        None => println!("saved again: bit-identical ({} bytes)", again.len()),
        Some(at) => {
            return Err(SandboxError::SnapshotMismatch(format!(
                "saved again, it differs from the file at byte {at} of {}",
                original.len()
            )))
        }
    }
    Ok(())
}

/// Run the request; the process exit code.
pub fn snapshot(r: Request) -> i32 {
    let done = if r.check { check(&r) } else { take(&r) };
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vessel: snapshot: {e}");
            exit::LAUNCHER_ERROR
        }
    }
}
