//! Reading and loading the guest ELF with `object`.
//!
//! The image is untrusted input: every header field is checked before use
//! (machine, class, type, segment bounds, overlaps, entry point), and every
//! failure is one line naming the offending value.

use object::elf::{self, FileHeader64, ProgramHeader64, SectionHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{LittleEndian as LE, StringTable};
use vessel_abi::zerocopy::FromBytes;
use vessel_abi::{GuestHeader, HEADER_MAGIC, HEADER_SECTION};

pub use crate::error::ElfError;
use crate::error::Result;
use crate::memory::GuestRam;

/// The architecture an image is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// EM_X86_64.
    X86_64,
    /// EM_AARCH64.
    Aarch64,
}

impl Machine {
    fn from_elf(m: u16) -> Option<Machine> {
        match m {
            elf::EM_X86_64 => Some(Machine::X86_64),
            elf::EM_AARCH64 => Some(Machine::Aarch64),
            _ => None,
        }
    }
    /// `x86_64` or `aarch64`.
    pub fn name(self) -> &'static str {
        match self {
            Machine::X86_64 => "x86_64",
            Machine::Aarch64 => "aarch64",
        }
    }
}

/// One PT_LOAD segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical (= virtual) address it loads at.
    pub vaddr: u64,
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Bytes in memory (the rest past `filesz` is zero).
    pub memsz: u64,
    /// PF_R / PF_W / PF_X bits.
    pub flags: u32,
}

/// A function symbol, for naming the code at a fault address.
#[derive(Clone, Debug)]
struct Symbol {
    addr: u64,
    size: u64,
    name: String,
    func: bool,
}

/// A checked guest image.
pub struct GuestImage {
    data: Vec<u8>,
    /// The architecture it is built for.
    pub machine: Machine,
    /// The entry point (`_start`).
    pub entry: u64,
    /// Its PT_LOAD segments, sorted and checked not to overlap.
    pub segments: Vec<Segment>,
    /// Its `.vessel.header` (ABI version, vector stubs, SVE request).
    pub header: GuestHeader,
}

impl GuestImage {
    /// How many vCPUs the app runs on when not told (`entry!(main, cpus =
    /// N)` in its header): 1 when it names none; a count outside
    /// 1..=`MAX_VCPUS` is an error.
    pub fn default_vcpus(&self) -> std::result::Result<u32, ElfError> {
        match self.header.vcpus {
            0 => Ok(1),
            n if n <= u64::from(vessel_abi::MAX_VCPUS) => Ok(n as u32),
            n => Err(ElfError::HeaderVcpus(n)),
        }
    }

    /// The ELF file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Parse and check an image whose segments must lie in `[lo, hi)`.
    pub fn parse(data: Vec<u8>, expect: Machine, lo: u64, hi: u64) -> Result<GuestImage> {
        let hdr = FileHeader64::<LE>::parse(data.as_slice()).map_err(ElfError::NotElf64)?;
        let e = LE;
        let machine = Machine::from_elf(hdr.e_machine(e)).ok_or(ElfError::UnsupportedMachine {
            machine: hdr.e_machine(e),
            want: expect,
        })?;
        if machine != expect {
            return Err(ElfError::WrongMachine {
                built: machine,
                runs: expect,
            }
            .into());
        }
        if hdr.e_type(e) != elf::ET_EXEC {
            return Err(ElfError::NotExec(hdr.e_type(e)).into());
        }
        let phdrs = hdr
            .program_headers(e, data.as_slice())
            .map_err(ElfError::ProgramHeaders)?;
        let mut segments = Vec::new();
        for ph in phdrs.iter().filter(|p| p.p_type(e) == elf::PT_LOAD) {
            segments.push(check_segment(ph, data.len() as u64, lo, hi)?);
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadSegments.into());
        }
        segments.sort_by_key(|s| s.vaddr);
        for w in segments.windows(2) {
            // Checked in check_segment: vaddr + memsz does not overflow.
            if w[0].vaddr + w[0].memsz > w[1].vaddr {
                return Err(ElfError::Overlap {
                    vaddr: w[0].vaddr,
                    memsz: w[0].memsz,
                    next: w[1].vaddr,
                }
                .into());
            }
        }
        let entry = hdr.e_entry(e);
        let in_exec = segments
            .iter()
            .any(|s| s.flags & elf::PF_X != 0 && entry >= s.vaddr && entry - s.vaddr < s.memsz);
        if !in_exec {
            return Err(ElfError::EntryNotExecutable(entry).into());
        }
        let header = read_header(hdr, &data)?;
        Ok(GuestImage {
            data,
            machine,
            entry,
            segments,
            header,
        })
    }

    /// First byte past the highest segment.
    pub fn end(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.vaddr + s.memsz)
            .max()
            .unwrap_or(0)
    }

    /// Copy the segments into guest RAM (identity mapped: vaddr = guest-physical).
    pub fn load(&self, ram: &GuestRam) -> Result<()> {
        for s in &self.segments {
            let file = &self.data[s.offset as usize..(s.offset + s.filesz) as usize];
            ram.write(s.vaddr, file)?;
            ram.zero(s.vaddr + s.filesz, s.memsz - s.filesz)?;
        }
        Ok(())
    }

    /// Name the function containing `addr`, as `name+0xoff`.
    pub fn symbolize(&self, addr: u64) -> Option<String> {
        let syms = symbols(&self.data).ok()?;
        let best = syms
            .iter()
            .filter(|s| s.func && s.addr <= addr && (addr - s.addr < s.size.max(1)))
            .max_by_key(|s| s.addr)?;
        let name = rustc_demangle::demangle(&best.name);
        Some(format!("{name:#}+{:#x}", addr - best.addr))
    }

    /// Address and size of the data object or function named `name`
    /// (unmangled, e.g. an `export_name`), if the image has a symbol table.
    #[cfg(test)]
    fn symbol(&self, name: &str) -> Option<(u64, u64)> {
        symbols(&self.data)
            .ok()?
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| (s.addr, s.size))
    }
}

fn check_segment(
    ph: &ProgramHeader64<LE>,
    file_len: u64,
    lo: u64,
    hi: u64,
) -> Result<Segment, ElfError> {
    let e = LE;
    let s = Segment {
        vaddr: ph.p_vaddr(e),
        offset: ph.p_offset(e),
        filesz: ph.p_filesz(e),
        memsz: ph.p_memsz(e),
        flags: ph.p_flags(e),
    };
    if s.filesz > s.memsz {
        return Err(ElfError::FileSizeOverMemSize {
            vaddr: s.vaddr,
            filesz: s.filesz,
            memsz: s.memsz,
        });
    }
    match s.offset.checked_add(s.filesz) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(ElfError::PastEndOfFile {
                vaddr: s.vaddr,
                offset: s.offset,
                filesz: s.filesz,
                file_len,
            })
        }
    }
    match s.vaddr.checked_add(s.memsz) {
        Some(end) if s.vaddr >= lo && end <= hi => {}
        _ => {
            return Err(ElfError::OutsideWindow {
                vaddr: s.vaddr,
                memsz: s.memsz,
                lo,
                hi,
            })
        }
    }
    Ok(s)
}

fn read_header(hdr: &FileHeader64<LE>, data: &[u8]) -> Result<GuestHeader, ElfError> {
    let e = LE;
    let sections = hdr.sections(e, data).map_err(ElfError::SectionHeaders)?;
    let (_, sec): (_, &SectionHeader64<LE>) = sections
        .section_by_name(e, HEADER_SECTION.as_bytes())
        .ok_or(ElfError::NoHeader)?;
    let bytes = sec.data(e, data).map_err(ElfError::HeaderData)?;
    let Ok((h, _)) = GuestHeader::read_from_prefix(bytes) else {
        return Err(ElfError::HeaderSize {
            len: bytes.len(),
            want: std::mem::size_of::<GuestHeader>(),
        });
    };
    if h.magic != HEADER_MAGIC {
        return Err(ElfError::BadMagic(h.magic));
    }
    if h.abi_version != vessel_abi::ABI_VERSION {
        return Err(ElfError::AbiVersion {
            guest: h.abi_version,
        });
    }
    Ok(h)
}

fn symbols(data: &[u8]) -> Result<Vec<Symbol>, object::read::Error> {
    let e = LE;
    let hdr = FileHeader64::<LE>::parse(data)?;
    let sections = hdr.sections(e, data)?;
    let table = sections.symbols(e, data, elf::SHT_SYMTAB)?;
    let strings: StringTable = table.strings();
    let mut out = Vec::new();
    for sym in table.iter() {
        use object::read::elf::Sym;
        let func = sym.st_type() == elf::STT_FUNC;
        if !func && sym.st_type() != elf::STT_OBJECT {
            continue;
        }
        if let Ok(name) = sym.name(e, strings) {
            out.push(Symbol {
                addr: sym.st_value(e),
                size: sym.st_size(e),
                name: String::from_utf8_lossy(name).into_owned(),
                func,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 image: the given segments (vaddr, data, memsz, flags),
    /// a `.vessel.header` and a symbol table with one function symbol.
    pub(crate) struct TestElf {
        pub machine: u16,
        pub etype: u16,
        pub entry: u64,
        pub segs: Vec<(u64, Vec<u8>, u64, u32)>,
        pub header: Option<GuestHeader>,
        pub func: (u64, u64, &'static str),
    }

    impl Default for TestElf {
        fn default() -> Self {
            let header = GuestHeader {
                magic: HEADER_MAGIC,
                abi_version: vessel_abi::ABI_VERSION,
                ..Default::default()
            };
            TestElf {
                machine: elf::EM_X86_64,
                etype: elf::ET_EXEC,
                entry: 0x20_0000,
                segs: vec![
                    (0x20_0000, vec![0x90; 64], 64, elf::PF_R | elf::PF_X),
                    (0x20_1000, vec![1, 2, 3], 0x2000, elf::PF_R | elf::PF_W),
                ],
                header: Some(header),
                func: (0x20_0010, 16, "_ZN5hello4main17h0123456789abcdefE"),
            }
        }
    }

    fn put<const N: usize>(v: &mut [u8], at: usize, b: [u8; N]) {
        v[at..at + N].copy_from_slice(&b);
    }

    impl TestElf {
        pub fn build(&self) -> Vec<u8> {
            let nph = self.segs.len();
            let mut out = vec![0u8; 64 + 56 * nph];
            // Segment data.
            let mut offs = Vec::new();
            for (_, d, _, _) in &self.segs {
                offs.push(out.len());
                out.extend_from_slice(d);
            }
            // Header section data.
            let hdr_off = out.len();
            if let Some(h) = &self.header {
                out.extend_from_slice(vessel_abi::zerocopy::IntoBytes::as_bytes(h));
            }
            // .strtab and .symtab.
            let strtab_off = out.len();
            let mut strtab = vec![0u8];
            let name_idx = strtab.len();
            strtab.extend_from_slice(self.func.2.as_bytes());
            strtab.push(0);
            out.extend_from_slice(&strtab);
            while !out.len().is_multiple_of(8) {
                out.push(0);
            }
            let symtab_off = out.len();
            out.extend_from_slice(&[0u8; 24]);
            let mut sym = [0u8; 24];
            sym[0..4].copy_from_slice(&(name_idx as u32).to_le_bytes());
            sym[4] = (elf::STB_GLOBAL << 4) | elf::STT_FUNC;
            sym[6..8].copy_from_slice(&1u16.to_le_bytes());
            sym[8..16].copy_from_slice(&self.func.0.to_le_bytes());
            sym[16..24].copy_from_slice(&self.func.1.to_le_bytes());
            out.extend_from_slice(&sym);
            // .shstrtab
            let shstr_off = out.len();
            let shstr = b"\0.vessel.header\0.symtab\0.strtab\0.shstrtab\0";
            out.extend_from_slice(shstr);
            while !out.len().is_multiple_of(8) {
                out.push(0);
            }
            let sh_off = out.len();
            // Sections: null, header (optional name), symtab, strtab, shstrtab.
            let sh = |name: u32,
                      ty: u32,
                      off: usize,
                      size: usize,
                      link: u32,
                      entsize: u64,
                      info: u32| {
                let mut s = [0u8; 64];
                s[0..4].copy_from_slice(&name.to_le_bytes());
                s[4..8].copy_from_slice(&ty.to_le_bytes());
                s[24..32].copy_from_slice(&(off as u64).to_le_bytes());
                s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
                s[40..44].copy_from_slice(&link.to_le_bytes());
                s[44..48].copy_from_slice(&info.to_le_bytes());
                s[56..64].copy_from_slice(&entsize.to_le_bytes());
                s
            };
            let hdr_name = if self.header.is_some() { 1 } else { 0 };
            let hdr_size = if self.header.is_some() { 72 } else { 0 };
            let secs = [
                [0u8; 64],
                sh(hdr_name, elf::SHT_PROGBITS, hdr_off, hdr_size, 0, 0, 0),
                sh(16, elf::SHT_SYMTAB, symtab_off, 48, 3, 24, 1),
                sh(24, elf::SHT_STRTAB, strtab_off, strtab.len(), 0, 0, 0),
                sh(32, elf::SHT_STRTAB, shstr_off, shstr.len(), 0, 0, 0),
            ];
            for s in secs {
                out.extend_from_slice(&s);
            }
            // ELF header.
            put(&mut out, 0, [0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
            put(&mut out, 16, self.etype.to_le_bytes());
            put(&mut out, 18, self.machine.to_le_bytes());
            put(&mut out, 20, 1u32.to_le_bytes());
            put(&mut out, 24, self.entry.to_le_bytes());
            put(&mut out, 32, 64u64.to_le_bytes());
            put(&mut out, 40, (sh_off as u64).to_le_bytes());
            put(&mut out, 52, 64u16.to_le_bytes());
            put(&mut out, 54, 56u16.to_le_bytes());
            put(&mut out, 56, (nph as u16).to_le_bytes());
            put(&mut out, 58, 64u16.to_le_bytes());
            put(&mut out, 60, 5u16.to_le_bytes());
            put(&mut out, 62, 4u16.to_le_bytes());
            for (i, (vaddr, d, memsz, flags)) in self.segs.iter().enumerate() {
                let p = 64 + 56 * i;
                put(&mut out, p, elf::PT_LOAD.to_le_bytes());
                put(&mut out, p + 4, flags.to_le_bytes());
                put(&mut out, p + 8, (offs[i] as u64).to_le_bytes());
                put(&mut out, p + 16, vaddr.to_le_bytes());
                put(&mut out, p + 24, vaddr.to_le_bytes());
                put(&mut out, p + 32, (d.len() as u64).to_le_bytes());
                put(&mut out, p + 40, memsz.to_le_bytes());
                put(&mut out, p + 48, 0x1000u64.to_le_bytes());
            }
            out
        }
    }

    const LO: u64 = 0x20_0000;
    const HI: u64 = 0x100_0000;

    fn parse(t: &TestElf) -> Result<GuestImage> {
        GuestImage::parse(t.build(), Machine::X86_64, LO, HI)
    }

    fn err_of(t: &TestElf) -> String {
        match parse(t) {
            Ok(_) => panic!("hostile ELF accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn valid_image_parses_loads_and_symbolizes() {
        let img = parse(&TestElf::default()).unwrap();
        assert_eq!(img.entry, 0x20_0000);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.end(), 0x20_3000);
        let ram = GuestRam::new(0, 0x40_0000).unwrap();
        ram.write(0x20_1003, &[0xff; 8]).unwrap();
        img.load(&ram).unwrap();
        let mut b = [0u8; 5];
        ram.read(0x20_1000, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 0, 0], "bss is zeroed after the file bytes");
        assert_eq!(img.symbolize(0x20_0014).as_deref(), Some("hello::main+0x4"));
        assert_eq!(img.symbolize(0x20_0040), None);
        assert_eq!(
            img.symbol("_ZN5hello4main17h0123456789abcdefE"),
            Some((0x20_0010, 16))
        );
        assert_eq!(img.symbol("missing"), None);
    }

    #[test]
    fn wrong_machine_is_rejected() {
        let t = TestElf {
            machine: elf::EM_AARCH64,
            ..Default::default()
        };
        assert!(err_of(&t).contains("built for aarch64"));
        let t = TestElf {
            machine: elf::EM_386,
            ..Default::default()
        };
        assert!(err_of(&t).contains("unsupported machine"));
    }

    #[test]
    fn non_exec_type_is_rejected() {
        let t = TestElf {
            etype: elf::ET_DYN,
            ..Default::default()
        };
        assert!(err_of(&t).contains("ET_EXEC"));
    }

    #[test]
    fn overlapping_segments_are_rejected() {
        let mut t = TestElf::default();
        t.segs[1].0 = 0x20_0020;
        assert!(err_of(&t).contains("overlap"));
    }

    #[test]
    fn out_of_range_segments_are_rejected() {
        let mut t = TestElf::default();
        t.segs[1].0 = 0x1000;
        assert!(err_of(&t).contains("outside"));
        let mut t = TestElf::default();
        t.segs[1].2 = u64::MAX - 0x10;
        assert!(err_of(&t).contains("outside"));
        let mut t = TestElf::default();
        t.segs[1].0 = HI - 0x1000;
        assert!(err_of(&t).contains("outside"));
    }

    #[test]
    fn filesz_above_memsz_is_rejected() {
        let mut t = TestElf::default();
        t.segs[1].2 = 1;
        assert!(err_of(&t).contains("exceeds memory size"));
    }

    #[test]
    fn entry_outside_code_is_rejected() {
        let t = TestElf {
            entry: 0x20_1000,
            ..Default::default()
        };
        assert!(err_of(&t).contains("entry point"));
    }

    #[test]
    fn missing_or_bad_header_is_rejected() {
        let t = TestElf {
            header: None,
            ..Default::default()
        };
        assert!(err_of(&t).contains("not a Vessel guest"));
        let mut t = TestElf::default();
        t.header.as_mut().unwrap().abi_version = 99;
        assert!(err_of(&t).contains("ABI 99"));
        let mut t = TestElf::default();
        t.header.as_mut().unwrap().magic = 7;
        assert!(err_of(&t).contains("bad magic"));
    }

    #[test]
    fn truncated_and_garbage_files_are_rejected_without_panic() {
        let full = TestElf::default().build();
        for cut in [0, 4, 16, 63, 64, 100, 200, full.len() / 2, full.len() - 1] {
            assert!(
                GuestImage::parse(full[..cut].to_vec(), Machine::X86_64, LO, HI).is_err(),
                "cut at {cut}"
            );
        }
        let mut state = 0x1234_5678u32;
        for _ in 0..200 {
            let mut f = full.clone();
            for _ in 0..8 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = state as usize % f.len();
                f[i] = (state >> 16) as u8;
            }
            // Must not panic; may or may not parse.
            let _ = GuestImage::parse(f, Machine::X86_64, LO, HI);
        }
    }

    #[test]
    fn segment_data_past_end_of_file_is_rejected() {
        let mut f = TestElf::default().build();
        // First phdr's p_filesz -> huge.
        f[64 + 32..64 + 40].copy_from_slice(&0x10_0000u64.to_le_bytes());
        f[64 + 40..64 + 48].copy_from_slice(&0x10_0000u64.to_le_bytes());
        let e = GuestImage::parse(f, Machine::X86_64, LO, HI)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("past the end"), "{e}");
    }
}
