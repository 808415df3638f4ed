//! The fuzz targets: each takes any bytes and must return normally.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use vmm::console::HostIo;
use vmm::fs::{spec, Fs, OutputBudget};
use vmm::hypercall::{self, Ctx, Vcpu};
use vmm::memory::GuestRam;
use vmm::ring::IoServer;

/// Guest output goes nowhere; stdin is empty.
struct Sink;
impl HostIo for Sink {
    fn write(&mut self, _: u32, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn read_stdin(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

/// A vCPU that never blocks.
struct FakeVcpu;
impl Vcpu for FakeVcpu {
    fn enable_apf(&mut self, _: u64, _: u32) -> vmm::Result<()> {
        Ok(())
    }
    fn wait(&mut self, _: Option<Duration>, _: u64, _: u64) -> vmm::Result<()> {
        Ok(())
    }
    fn wake(&mut self, vcpus: u64) -> vmm::Result<u64> {
        Ok(u64::from(vcpus.count_ones()))
    }
}

const RAM: u64 = 0x20000;
const FRAME: u64 = 0x100;

fn server(ram: &GuestRam, dirs: Vec<spec::Preopen>) -> IoServer {
    let budget = Arc::new(OutputBudget::new(64 << 10));
    IoServer::new(
        ram.clone(),
        Fs::new(dirs, budget.clone()),
        budget,
        vec![(0, FRAME + 72)],
        1,
        Duration::ZERO,
    )
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in d.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

/// Bytes 0..72: the frame (at 0x100); byte 72: which frame address to ring
/// (mostly the real one); the rest: guest memory from 0x1000, where the
/// frame's pointers may land. The ring may be set up and entered too.
pub fn hypercall(data: &[u8]) {
    let Ok(ram) = GuestRam::new(0, RAM) else {
        return;
    };
    let frame: Vec<u8> = data.iter().copied().take(72).collect();
    let _ = ram.write(FRAME, &frame);
    let rest = data.get(73..).unwrap_or(&[]);
    let _ = ram.write(0x1000, &rest[..rest.len().min((RAM - 0x1000) as usize)]);
    let at = match data.get(72) {
        Some(&b) if b > 0xf0 => u64_at(data, 8),
        _ => FRAME,
    };
    let io_server = server(&ram, vec![]);
    let mut io = Sink;
    let mut ctx = Ctx {
        ram: &ram,
        io: &mut io,
        start: Instant::now(),
        features: u64_at(data, 64) & 3,
        output_lost: false,
        io_server: &io_server,
        counts: Default::default(),
        embed: data.get(72).is_some_and(|b| b & 1 != 0),
    };
    let _ = hypercall::serve(&mut ctx, &mut FakeVcpu, at);
    // A second call on the same server (e.g. RingEnter after RingSetup).
    let _ = ram.write(FRAME, &frame);
    let _ = hypercall::serve(&mut ctx, &mut FakeVcpu, at);
}

/// A scratch directory with a few files, pre-opened for the ring target.
fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("vessel-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(d.join("sub"));
        let _ = std::fs::write(d.join("f"), b"hello");
        d
    })
}

/// Remove the ring target's scratch directory (end of a run).
pub fn cleanup() {
    let _ = std::fs::remove_dir_all(scratch());
}

const BASE: u64 = 0x4000;

/// Byte 0: ring size (2..=64 entries); byte 1: min_complete; the rest is
/// written over the ring and the memory after it (header, SQEs, paths,
/// buffers), with `/d` pre-opened on a scratch directory.
pub fn ring(data: &[u8]) {
    let Ok(ram) = GuestRam::new(0, RAM) else {
        return;
    };
    let entries = 2u32 << (data.first().copied().unwrap_or(0) % 6);
    let dirs = spec::open_all(&[spec::DirSpec {
        host: scratch().to_path_buf(),
        guest: "/d".into(),
        readonly: data.get(1).is_some_and(|b| b & 0x80 != 0),
    }])
    .unwrap_or_default();
    let s = server(&ram, dirs);
    if s.setup(0, BASE, entries).is_err() {
        return;
    }
    let rest = data.get(2..).unwrap_or(&[]);
    let _ = ram.write(BASE, &rest[..rest.len().min((RAM - BASE) as usize)]);
    let min = u32::from(data.get(1).copied().unwrap_or(0) & 7);
    for _ in 0..2 {
        let _ = s.enter(0, &mut Sink, min, 20_000_000, &|| false);
    }
}

/// Any bytes as a guest path, against three pre-opened directories.
pub fn path(data: &[u8]) {
    let dirs: [Vec<String>; 3] = [vec!["d".into()], vec!["d".into(), "o".into()], vec![]];
    let refs: Vec<&[String]> = dirs.iter().map(Vec::as_slice).collect();
    if let Ok(b) = vmm::fs::resolve::resolve(&refs, data) {
        assert!(b.dir < dirs.len());
        assert!(b.parts.iter().all(|p| !p.is_empty() && p != "."));
        let _ = vmm::fs::resolve::parent_and_name(&b);
    }
}

/// Any bytes as a guest ELF, for both machines.
pub fn elf(data: &[u8]) {
    use vmm::elf::{GuestImage, Machine};
    let _ = GuestImage::parse(data.to_vec(), Machine::X86_64, 0x20_0000, 0xc000_0000);
    let _ = GuestImage::parse(data.to_vec(), Machine::Aarch64, 0x4020_0000, 0x40_0000_0000);
}

/// Bytes 0..2: vCPUs (1..=32) and mem size (in MiB, 1..=64), byte 2: the
/// stack (in 64 KiB, at least 1); then NUL-separated args, env and lazy
/// region names (split at 0xff). The written BootInfo must describe
/// exactly those inputs, or the launcher must refuse them with an error.
pub fn boot_info(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let mut parts = data.get(3..).unwrap_or(&[]).split(|b| *b == 0xff);
    let mut strings = || -> Vec<String> {
        parts
            .next()
            .unwrap_or(&[])
            .split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    };
    let (args, env, names) = (strings(), strings(), strings());
    let lazy: Vec<(String, u64, u64)> = names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, 0x1_0000_0000 + ((i as u64) << 20), 4096))
        .collect();
    let cfg = vmm::VmConfig {
        mem_size: u64::from(byte(1) % 64 + 1) << 20,
        vcpus: u32::from(byte(0) % 40),
        stack_size: u64::from(byte(2) % 16 + 1) << 16,
        args: args.clone(),
        env: env.clone(),
        ..Default::default()
    };
    let image_end = vmm::arch::RAM_BASE + 0x20_0000 + (u64::from(byte(2)) << 12);
    let Ok((ram, info)) = vmm::fuzzing::boot_info(&cfg, image_end, &lazy) else {
        return;
    };
    assert_eq!(info.argc, args.len() as u64);
    assert_eq!(info.envc, env.len() as u64);
    assert_eq!(info.lazy_count, lazy.len() as u64);
    assert_eq!(u64::from(info.vcpu_count), u64::from(cfg.vcpus));
    for (i, a) in args.iter().enumerate() {
        let at = info.argv + 16 * i as u64;
        let s: vessel_abi::GuestSlice = ram.read_pod(at).expect("argv entry inside RAM");
        assert_eq!(s.len, a.len() as u64);
        let mut b = vec![0u8; a.len()];
        ram.read(s.addr, &mut b).expect("arg inside RAM");
        assert_eq!(b, a.as_bytes());
    }
}

/// Any bytes as a snapshot file; when the last byte is odd, the checksum
/// is recomputed first so the parser goes past it.
pub fn snapshot(data: &[u8]) {
    use vmm::snapshot::{file::checksum, Snapshot};
    let mut v = data.to_vec();
    if data.last().is_some_and(|b| b & 1 == 1) && v.len() > 8 {
        let n = v.len() - 8;
        let sum = checksum(&v[..n]);
        v[n..].copy_from_slice(&sum.to_le_bytes());
    }
    if let Ok(s) = Snapshot::from_bytes(&v) {
        // What parses writes back to bytes that parse again.
        let again = s.to_bytes();
        assert!(
            Snapshot::from_bytes(&again).is_ok(),
            "a parsed snapshot re-encodes"
        );
    }
}
