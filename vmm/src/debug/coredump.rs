//! ELF core files of crashed guests (`--core-dump DIR`), in the layout gdb
//! reads for Linux processes: a PT_NOTE segment (NT_PRPSINFO naming the
//! app, then per vCPU NT_PRSTATUS, NT_FPREGSET and NT_X86_XSTATE) and
//! PT_LOAD segments with guest RAM at its (identity-mapped) addresses.
//! `gdb APP-ELF CORE` then shows each vCPU as a thread and the backtrace.
//!
//! Bounded: at most [`MAX_MEMORY`] bytes of memory are written; pages that
//! are all zero take no file space (a PT_LOAD with no file bytes).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::memory::GuestRam;

/// Most guest memory bytes a core file holds.
pub const MAX_MEMORY: u64 = 1 << 30;
/// The granule zero runs are found in.
const CHUNK: u64 = 64 << 10;

/// One ELF note: its type and descriptor (name "CORE" or "LINUX").
pub struct Note {
    /// "CORE" or "LINUX".
    pub name: &'static str,
    /// NT_* type.
    pub kind: u32,
    /// The descriptor bytes.
    pub desc: Vec<u8>,
}

/// A core file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("--core-dump {}: {source}", path.display())]
pub struct CoreError {
    /// The file (or directory) it was writing.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

fn align4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// The notes as one PT_NOTE segment's bytes.
fn note_bytes(notes: &[Note]) -> Vec<u8> {
    let mut out = vec![];
    for n in notes {
        let name_len = n.name.len() as u32 + 1;
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&(n.desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&n.kind.to_le_bytes());
        out.extend_from_slice(n.name.as_bytes());
        out.push(0);
        align4(&mut out);
        out.extend_from_slice(&n.desc);
        align4(&mut out);
    }
    out
}

/// A run of RAM: (guest address, length, whether it is all zero).
fn runs(ram: &GuestRam) -> Vec<(u64, u64, bool)> {
    let mut runs: Vec<(u64, u64, bool)> = vec![];
    let mut buf = vec![0u8; CHUNK as usize];
    let mut at = ram.base();
    let end = ram.base() + ram.size().min(MAX_MEMORY);
    while at < end {
        let n = CHUNK.min(end - at);
        let chunk = &mut buf[..n as usize];
        let zero = ram.read(at, chunk).is_err() || chunk.iter().all(|&b| b == 0);
        match runs.last_mut() {
            Some(r) if r.2 == zero && r.0 + r.1 == at => r.1 += n,
            _ => runs.push((at, n, zero)),
        }
        at += n;
    }
    runs
}

/// Write `ram` and `notes` as an ELF core for `machine` (EM_*) to `file`.
fn write_core(file: &Path, machine: u16, notes: &[Note], ram: &GuestRam) -> std::io::Result<()> {
    const EHDR: u64 = 64;
    const PHDR: u64 = 56;
    let notes = note_bytes(notes);
    let runs = runs(ram);
    let phnum = 1 + runs.len() as u64;
    let mut offset = EHDR + PHDR * phnum;
    let mut head = Vec::with_capacity(offset as usize);
    // e_ident: ELF, 64-bit, little-endian, version 1, System V.
    head.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    head.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    head.extend_from_slice(&machine.to_le_bytes());
    head.extend_from_slice(&1u32.to_le_bytes());
    head.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    head.extend_from_slice(&EHDR.to_le_bytes()); // e_phoff
    head.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    head.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [EHDR as u16, PHDR as u16, phnum as u16, 64, 0, 0] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    let mut phdr = |kind: u32, flags: u32, off: u64, addr: u64, filesz: u64, memsz: u64| {
        head.extend_from_slice(&kind.to_le_bytes());
        head.extend_from_slice(&flags.to_le_bytes());
        for v in [
            off,
            addr,
            addr,
            filesz,
            memsz,
            if kind == 1 { 4096 } else { 4 },
        ] {
            head.extend_from_slice(&v.to_le_bytes());
        }
    };
    phdr(4, 4, offset, 0, notes.len() as u64, 0); // PT_NOTE
    offset += notes.len() as u64;
    for &(addr, len, zero) in &runs {
        let filesz = if zero { 0 } else { len };
        phdr(1, 7, offset, addr, filesz, len); // PT_LOAD, RWX
        offset += filesz;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(file)?);
    f.write_all(&head)?;
    f.write_all(&notes)?;
    let mut buf = vec![0u8; CHUNK as usize];
    for &(addr, len, zero) in runs.iter().filter(|r| !r.2) {
        let _ = zero;
        let mut at = addr;
        while at < addr + len {
            let n = CHUNK.min(addr + len - at) as usize;
            ram.read(at, &mut buf[..n])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            f.write_all(&buf[..n])?;
            at += n as u64;
        }
    }
    f.flush()
}

/// Write a core file for `app` into `dir`, named `APP-SECONDS-PID.core`;
/// returns its path.
pub fn write(
    dir: &Path,
    app: &str,
    machine: u16,
    notes: &[Note],
    ram: &GuestRam,
) -> Result<PathBuf, CoreError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name: String = app
        .rsplit('/')
        .next()
        .unwrap_or("guest")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}-{secs}-{}.core", std::process::id()));
    write_core(&path, machine, notes, ram).map_err(|source| CoreError {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// NT_PRPSINFO (Linux x86_64/arm64 layout, 136 bytes) naming the app.
pub fn prpsinfo(app: &str, args: &str) -> Note {
    let mut d = vec![0u8; 136];
    d[1] = b'R';
    let fname = app.rsplit('/').next().unwrap_or(app).as_bytes();
    let n = fname.len().min(15);
    d[40..40 + n].copy_from_slice(&fname[..n]);
    let a = args.as_bytes();
    let m = a.len().min(79);
    d[56..56 + m].copy_from_slice(&a[..m]);
    Note {
        name: "CORE",
        kind: 3,
        desc: d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_padded_to_four_bytes() {
        let b = note_bytes(&[Note {
            name: "CORE",
            kind: 1,
            desc: vec![1, 2, 3],
        }]);
        // namesz, descsz, type, "CORE\0" + 3 pad, 3 bytes + 1 pad.
        assert_eq!(b.len(), 12 + 8 + 4);
        assert_eq!(&b[0..4], &5u32.to_le_bytes());
        assert_eq!(&b[4..8], &3u32.to_le_bytes());
        assert_eq!(&b[12..17], b"CORE\0");
    }

    #[test]
    fn zero_memory_takes_no_file_space() {
        let ram = GuestRam::new(0, 1 << 20).unwrap();
        ram.write(0x30000, b"vessel").unwrap();
        let r = runs(&ram);
        assert_eq!(
            r,
            vec![
                (0, 0x30000, true),
                (0x30000, CHUNK, false),
                (0x40000, (1 << 20) - 0x40000, true)
            ]
        );
        let dir = std::env::temp_dir().join(format!("vessel-core-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = write(&dir, "apps/x y", 62, &[prpsinfo("x", "x")], &ram).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("x_y-") && name.ends_with(".core"),
            "{name}"
        );
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes.len() < (CHUNK as usize) + 4096, "{}", bytes.len());
        assert_eq!(&bytes[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([bytes[16], bytes[17]]), 4, "ET_CORE");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
