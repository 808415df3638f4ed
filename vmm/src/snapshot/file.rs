//! Snapshot files: a [`Snapshot`] as bytes, versioned and checksummed, and
//! the checks that refuse a file this launcher or host cannot restore.
//!
//! Layout (little-endian; documented in vmm/README.md):
//!
//! ```text
//! header   magic "VESSELSN" | format u32 | ABI version u32 | arch u32 (ELF
//!          e_machine) | vCPUs u32 | CPU features u64 | SVE set [u8; 64] |
//!          file length u64                                  (104 bytes)
//! sections tag u32 | 0 u32 | length u64 | payload, in this order:
//!          1 image (the guest ELF), 2 config, 3 protocol, 4 vCPU (one
//!          per vCPU), 5 memory (RAM size u64, page count u64, the page
//!          indexes u64 strictly increasing, then the pages)
//! trailer  FNV-1a 64 of every byte before it                (8 bytes)
//! ```

use std::sync::Arc;

use vessel_abi::value::put_run;
use vessel_abi::GuestSlice;

use super::{memory::MemoryImage, Snapshot};
use crate::arch;
use crate::config::VmConfig;
use crate::lazy::LazySpec;
use crate::memory::PAGE;
use crate::sandbox::Pending;
use crate::sve::SveRequest;

/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"VESSELSN";
/// This launcher's snapshot file format.
pub const FORMAT: u32 = 1;
/// Bytes before the first section.
pub const HEADER: usize = 104;
/// The largest file read (image, RAM and state together).
pub const MAX_FILE: u64 = 8 << 30;

const IMAGE: u32 = 1;
const CONFIG: u32 = 2;
const PROTOCOL: u32 = 3;
const VCPU: u32 = 4;
const MEMORY: u32 = 5;

/// Why a snapshot file is refused ("snapshot file: ...").
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// Shorter than a header and a checksum.
    #[error("{0} bytes is too short for a snapshot")]
    Truncated(usize),
    /// Not a snapshot file.
    #[error("not a Vessel snapshot (bad magic)")]
    Magic,
    /// Another format version.
    #[error("format version {got}; this launcher reads {FORMAT}")]
    Format {
        /// The file's version.
        got: u32,
    },
    /// The file is not as long as its header says (cut, or grown).
    #[error("the header says {said} bytes, the file has {got}")]
    Length {
        /// The header's length.
        said: u64,
        /// The file's length.
        got: usize,
    },
    /// The bytes are not the ones written.
    #[error("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum {
        /// The trailer's checksum.
        stored: u64,
        /// The checksum of the bytes read.
        computed: u64,
    },
    /// Made by a launcher of another ABI version.
    #[error("made for ABI version {got}; this launcher speaks {want}")]
    Abi {
        /// The file's ABI version.
        got: u32,
        /// This launcher's.
        want: u32,
    },
    /// Made on another architecture.
    #[error("made on {got}; this host is {want}")]
    Arch {
        /// The file's architecture.
        got: &'static str,
        /// This host's.
        want: &'static str,
    },
    /// A section that does not parse.
    #[error("section {what}: {why}")]
    Section {
        /// Which section.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The guest image in the file is refused.
    #[error("guest image: {0}")]
    Image(String),
}

fn bad(what: &'static str, why: impl Into<String>) -> SnapshotFileError {
    SnapshotFileError::Section {
        what,
        why: why.into(),
    }
}

/// FNV-1a, 64 bits.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn machine_name(m: u32) -> &'static str {
    match m {
        62 => "x86_64",
        183 => "aarch64",
        _ => "an unknown architecture",
    }
}

/// This host's architecture as an ELF e_machine.
fn this_machine() -> u32 {
    match arch::MACHINE {
        crate::elf::Machine::X86_64 => 62,
        crate::elf::Machine::Aarch64 => 183,
    }
}

fn section(out: &mut Vec<u8>, tag: u32, payload: &[u8]) {
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
}

fn sve_code(s: Option<SveRequest>) -> (u32, u32) {
    match s {
        None => (0, 0),
        Some(SveRequest::Off) => (1, 0),
        Some(SveRequest::Max) => (2, 0),
        Some(SveRequest::Bits(b)) => (3, b),
    }
}

fn encode_config(cfg: &VmConfig) -> Vec<u8> {
    let mut out = Vec::new();
    let (sve, bits) = sve_code(cfg.sve);
    for v in [cfg.mem_size, cfg.stack_size] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [cfg.vcpus, sve, bits, u32::from(cfg.async_pf)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for list in [&cfg.args, &cfg.env] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for s in list {
            put_run(&mut out, s.as_bytes());
        }
    }
    out.extend_from_slice(&(cfg.lazy.len() as u32).to_le_bytes());
    for l in &cfg.lazy {
        put_run(&mut out, l.name.as_bytes());
        put_run(
            &mut out,
            std::os::unix::ffi::OsStrExt::as_bytes(l.path.as_os_str()),
        );
        out.extend_from_slice(&l.size.unwrap_or(u64::MAX).to_le_bytes());
    }
    out
}

fn encode_protocol(p: &Pending, exports: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [p.frame, p.free.addr, p.free.len] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(exports.len() as u32).to_le_bytes());
    for e in exports {
        put_run(&mut out, e.as_bytes());
    }
    out
}

fn encode_memory(m: &MemoryImage) -> Vec<u8> {
    let pages: Vec<(usize, &[u8])> = m.pages().collect();
    let mut out = Vec::with_capacity(16 + pages.len() * (8 + PAGE as usize));
    out.extend_from_slice(&m.ram_size().to_le_bytes());
    out.extend_from_slice(&(pages.len() as u64).to_le_bytes());
    for (p, _) in &pages {
        out.extend_from_slice(&(*p as u64).to_le_bytes());
    }
    for (_, data) in &pages {
        out.extend_from_slice(data);
    }
    out
}

impl Snapshot {
    /// The snapshot as a file (see the module doc).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER + self.image.bytes().len() + self.memory.saved_pages() * 4104,
        );
        out.extend_from_slice(&MAGIC);
        for v in [
            FORMAT,
            vessel_abi::ABI_VERSION,
            this_machine(),
            self.vcpus.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let first = self.vcpus.first();
        out.extend_from_slice(&first.map(|v| v.cpu_features()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&first.map(|v| v.sve_set()).unwrap_or([0; 64]));
        out.extend_from_slice(&0u64.to_le_bytes()); // length, below
        section(&mut out, IMAGE, self.image.bytes());
        section(&mut out, CONFIG, &encode_config(&self.cfg));
        section(
            &mut out,
            PROTOCOL,
            &encode_protocol(&self.pending, &self.exports),
        );
        for v in &self.vcpus {
            section(&mut out, VCPU, &v.to_bytes());
        }
        section(&mut out, MEMORY, &encode_memory(&self.memory));
        let len = (out.len() + 8) as u64;
        out[96..104].copy_from_slice(&len.to_le_bytes());
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Read a snapshot file; every length, count and index is checked
    /// before use, and a file from another launcher, ABI or architecture
    /// is refused naming the difference. (CPU features and the SVE set
    /// are checked against the host when a sandbox is built from it.)
    pub fn from_bytes(b: &[u8]) -> Result<Snapshot, SnapshotFileError> {
        let body = check_header(b)?;
        let mut r = Reader(body);
        let image = r.section(IMAGE, "image")?;
        let cfg = decode_config(r.section(CONFIG, "config")?)?;
        let (pending, exports) = decode_protocol(r.section(PROTOCOL, "protocol")?)?;
        let n = u32le(&b[20..24]) as usize;
        if n != 1 {
            return Err(bad("vCPU", format!("{n} vCPUs; this launcher restores 1")));
        }
        let mut vcpus = Vec::with_capacity(n);
        for _ in 0..n {
            let s = r.section(VCPU, "vCPU")?;
            vcpus.push(
                arch::VcpuState::from_bytes(s).ok_or_else(|| bad("vCPU", "sizes do not add up"))?,
            );
        }
        let mut set = [0u8; 64];
        set.copy_from_slice(&b[32..96]);
        if vcpus[0].cpu_features() != u64le(&b[24..32]) || vcpus[0].sve_set() != set {
            return Err(bad("vCPU", "CPU features differ from the header's"));
        }
        let memory = decode_memory(r.section(MEMORY, "memory")?, cfg.mem_size)?;
        if !r.0.is_empty() {
            return Err(bad(
                "end",
                format!("{} bytes after the last section", r.0.len()),
            ));
        }
        let image = crate::load_image(image.to_vec())
            .map_err(|e| SnapshotFileError::Image(e.to_string()))?;
        Ok(Snapshot {
            id: super::next_id(),
            image: Arc::new(image),
            cfg,
            memory,
            vcpus,
            pending,
            exports,
        })
    }
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u64le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Check magic, format, length, checksum, ABI and architecture; the
/// bytes between the header and the checksum.
fn check_header(b: &[u8]) -> Result<&[u8], SnapshotFileError> {
    if b.len() < HEADER + 8 {
        return Err(SnapshotFileError::Truncated(b.len()));
    }
    if b[..8] != MAGIC {
        return Err(SnapshotFileError::Magic);
    }
    let format = u32le(&b[8..12]);
    if format != FORMAT {
        return Err(SnapshotFileError::Format { got: format });
    }
    let said = u64le(&b[96..104]);
    if said != b.len() as u64 {
        return Err(SnapshotFileError::Length { said, got: b.len() });
    }
    let (body, sum) = b.split_at(b.len() - 8);
    let (stored, computed) = (u64le(sum), checksum(body));
    if stored != computed {
        return Err(SnapshotFileError::Checksum { stored, computed });
    }
    let abi = u32le(&b[12..16]);
    if abi != vessel_abi::ABI_VERSION {
        return Err(SnapshotFileError::Abi {
            got: abi,
            want: vessel_abi::ABI_VERSION,
        });
    }
    let m = u32le(&b[16..20]);
    if m != this_machine() {
        return Err(SnapshotFileError::Arch {
            got: machine_name(m),
            want: machine_name(this_machine()),
        });
    }
    Ok(&body[HEADER..])
}

/// Sections in order, each checked against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], SnapshotFileError> {
        if n > self.0.len() as u64 {
            return Err(bad(
                what,
                format!("{n} bytes, {} left in the file", self.0.len()),
            ));
        }
        let (a, b) = self.0.split_at(n as usize);
        self.0 = b;
        Ok(a)
    }

    fn section(&mut self, tag: u32, what: &'static str) -> Result<&'a [u8], SnapshotFileError> {
        let head = self.take(16, what)?;
        let got = u32le(&head[..4]);
        if got != tag || u32le(&head[4..8]) != 0 {
            return Err(bad(what, format!("tag {got} where {tag} was due")));
        }
        self.take(u64le(&head[8..16]), what)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotFileError> {
        self.take(4, what).map(u32le)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotFileError> {
        self.take(8, what).map(u64le)
    }

    fn string(&mut self, what: &'static str) -> Result<String, SnapshotFileError> {
        let n = self.u32(what)?;
        let b = self.take(u64::from(n), what)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad(what, "text is not UTF-8"))
    }

    fn strings(&mut self, what: &'static str) -> Result<Vec<String>, SnapshotFileError> {
        let n = self.u32(what)?;
        if u64::from(n) > self.0.len() as u64 / 4 {
            return Err(bad(what, format!("{n} entries cannot fit")));
        }
        (0..n).map(|_| self.string(what)).collect()
    }
}

fn decode_config(b: &[u8]) -> Result<VmConfig, SnapshotFileError> {
    let what = "config";
    let mut r = Reader(b);
    let (mem_size, stack_size) = (r.u64(what)?, r.u64(what)?);
    let (vcpus, sve, bits, async_pf) = (r.u32(what)?, r.u32(what)?, r.u32(what)?, r.u32(what)?);
    let sve = match sve {
        0 => None,
        1 => Some(SveRequest::Off),
        2 => Some(SveRequest::Max),
        3 => Some(SveRequest::Bits(bits)),
        n => return Err(bad(what, format!("SVE request {n}"))),
    };
    let args = r.strings(what)?;
    let env = r.strings(what)?;
    let n = r.u32(what)?;
    if u64::from(n) > crate::lazy::MAX_REGIONS as u64 {
        return Err(bad(what, format!("{n} lazy regions")));
    }
    let mut lazy = Vec::new();
    for _ in 0..n {
        let name = r.string(what)?;
        let plen = r.u32(what)?;
        let path = r.take(u64::from(plen), what)?;
        let path = std::path::PathBuf::from(std::ffi::OsStr::new(&*String::from_utf8_lossy(path)));
        let size = r.u64(what)?;
        lazy.push(LazySpec {
            name,
            path,
            size: (size != u64::MAX).then_some(size),
        });
    }
    if !r.0.is_empty() {
        return Err(bad(what, "trailing bytes"));
    }
    crate::layout::check_mem_size(mem_size).map_err(|e| bad(what, e.to_string()))?;
    Ok(VmConfig {
        mem_size,
        stack_size,
        vcpus,
        sve,
        async_pf: async_pf != 0,
        args,
        env,
        lazy,
        ..VmConfig::default()
    })
}

fn decode_protocol(b: &[u8]) -> Result<(Pending, Vec<String>), SnapshotFileError> {
    let what = "protocol";
    let mut r = Reader(b);
    let frame = r.u64(what)?;
    let free = GuestSlice {
        addr: r.u64(what)?,
        len: r.u64(what)?,
    };
    let exports = r.strings(what)?;
    if !r.0.is_empty() {
        return Err(bad(what, "trailing bytes"));
    }
    Ok((Pending { frame, free }, exports))
}

fn decode_memory(b: &[u8], mem_size: u64) -> Result<MemoryImage, SnapshotFileError> {
    let what = "memory";
    let mut r = Reader(b);
    let ram = r.u64(what)?;
    if ram != mem_size {
        return Err(bad(
            what,
            format!("{ram} bytes of RAM, the config says {mem_size}"),
        ));
    }
    let count = r.u64(what)?;
    let room = count
        .checked_mul(8 + PAGE)
        .filter(|n| *n == r.0.len() as u64)
        .ok_or_else(|| {
            bad(
                what,
                format!("{count} pages do not fill {} bytes", r.0.len()),
            )
        })?;
    let _ = room;
    let idx = r.take(count * 8, what)?;
    let pages = ram / PAGE;
    let mut list = Vec::with_capacity(count as usize);
    let mut last: Option<u64> = None;
    for c in idx.chunks_exact(8) {
        let p = u64le(c);
        if p >= pages || last.is_some_and(|l| p <= l) {
            return Err(bad(
                what,
                format!("page index {p} out of order or past {pages} pages"),
            ));
        }
        last = Some(p);
        list.push(p as usize);
    }
    Ok(MemoryImage::from_parts(ram, list, r.0.to_vec()))
}
