//! One executable per app: the launcher with the guest ELF in an ELF section.
//!
//! `pack` copies the launcher's own ELF and adds a non-loaded section named
//! [`GUEST_SECTION`] holding the guest image (object's ELF builder rewrites
//! the section table; code and data are untouched). At start-up the launcher
//! reads its own section table and the guest bytes, not the whole executable.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::os::unix::fs::FileExt;

use object::elf::{FileHeader64, SectionHeader64};
use object::read::elf::{FileHeader, SectionHeader};
use object::LittleEndian;

use crate::error::{Error, Result};

/// Name of the section that carries the guest image.
pub const GUEST_SECTION: &str = ".vessel.guest";

/// A launcher executable that cannot carry or give up a guest.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The launcher file is not ELF.
    #[error("the launcher is not an ELF executable: {0}")]
    NotElf(object::read::Error),
    /// The launcher is for another architecture.
    #[error("the launcher is built for {0:?}; Vessel launchers are x86_64 or aarch64")]
    Architecture(object::Architecture),
    /// object could not read the launcher for rewriting.
    #[error("cannot read the launcher executable as ELF: {0}")]
    Read(object::build::Error),
    /// object could not write the packed executable.
    #[error("cannot write the packed executable: {0}")]
    Write(object::build::Error),
    /// The guest section runs past the end of the file.
    #[error("the embedded guest in {} is truncated", .0.display())]
    Truncated(PathBuf),
}

/// A copy of the launcher ELF `launcher` with `guest` embedded.
pub fn pack(launcher: &[u8], guest: &[u8]) -> Result<Vec<u8>> {
    let mut b = object::build::elf::Builder::read(launcher).map_err(PackError::Read)?;
    for s in b.sections.iter_mut() {
        if s.name.as_slice() == GUEST_SECTION.as_bytes() {
            s.delete = true; // re-packing replaces the old guest
        }
    }
    let s = b.sections.add();
    s.name = GUEST_SECTION.as_bytes().to_vec().into();
    s.sh_type = object::elf::SHT_PROGBITS;
    s.sh_flags = 0;
    s.sh_addralign = 16;
    s.data = object::build::elf::SectionData::Data(guest.to_vec().into());
    let mut out = Vec::with_capacity(launcher.len() + guest.len() + 4096);
    b.write(&mut out).map_err(PackError::Write)?;
    Ok(out)
}

/// The guest image embedded in the executable at `exe`, if there is one.
///
/// Runs at every start of every app, so it reads only what it needs with
/// four positioned reads: the ELF header, the section table, the section
/// names and the guest section.
pub fn embedded_guest(exe: &Path) -> Result<Option<Vec<u8>>> {
    let io = |what: &'static str| {
        move |source| Error::HostIo {
            what,
            path: exe.to_path_buf(),
            source,
        }
    };
    let file = File::open(exe).map_err(io("open"))?;
    let read = |off: u64, len: u64| -> Result<Option<Vec<u8>>> {
        if len > MAX_READ {
            return Ok(None);
        }
        let mut buf = vec![0u8; len as usize];
        match file.read_exact_at(&mut buf, off) {
            Ok(()) => Ok(Some(buf)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(io("read")(e)),
        }
    };
    let e = LittleEndian;
    let Some(head) = read(0, std::mem::size_of::<FileHeader64<LittleEndian>>() as u64)? else {
        return Ok(None);
    };
    let Ok(hdr) = FileHeader64::<LittleEndian>::parse(head.as_slice()) else {
        return Ok(None);
    };
    let count = hdr.e_shnum(e) as usize;
    let shsize = std::mem::size_of::<SectionHeader64<LittleEndian>>() as u64;
    let Some(table) = read(hdr.e_shoff(e), count as u64 * shsize)? else {
        return Ok(None);
    };
    let Ok((shdrs, _)) =
        object::pod::slice_from_bytes::<SectionHeader64<LittleEndian>>(&table, count)
    else {
        return Ok(None);
    };
    let Some(strtab) = shdrs.get(hdr.e_shstrndx(e) as usize) else {
        return Ok(None);
    };
    let Some(names) = read(strtab.sh_offset(e), strtab.sh_size(e))? else {
        return Ok(None);
    };
    let wanted = GUEST_SECTION.as_bytes();
    for s in shdrs {
        let start = s.sh_name(e) as usize;
        let name = names.get(start..start + wanted.len() + 1);
        if name.is_some_and(|n| &n[..wanted.len()] == wanted && n[wanted.len()] == 0) {
            return match read(s.sh_offset(e), s.sh_size(e))? {
                Some(data) => Ok(Some(data)),
                None => Err(PackError::Truncated(exe.to_path_buf()).into()),
            };
        }
    }
    Ok(None)
}

/// The guest image inside `exe`, the bytes of an executable already read
/// (`vessel run APP` of a packed app): None when `exe` is not an ELF file
/// with a [`GUEST_SECTION`], as an unpacked guest is not.
pub fn guest_in(exe: &[u8]) -> Option<&[u8]> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(exe).ok()?;
    file.section_by_name(GUEST_SECTION)?.data().ok()
}

/// The largest piece `embedded_guest` reads at once.
const MAX_READ: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_repacking_replaces() {
        let me = std::env::current_exe().unwrap();
        let launcher = std::fs::read(&me).unwrap();
        let dir = std::env::temp_dir().join(format!("vessel-pack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("packed");
        let packed = pack(&launcher, b"guest one").unwrap();
        let repacked = pack(&packed, b"guest two!").unwrap();
        std::fs::write(&out, &repacked).unwrap();
        assert_eq!(
            embedded_guest(&out).unwrap().as_deref(),
            Some(&b"guest two!"[..])
        );
        assert_eq!(embedded_guest(&me).unwrap(), None);
        assert_eq!(guest_in(&repacked), Some(&b"guest two!"[..]));
        assert_eq!(guest_in(&launcher), None);
        assert_eq!(guest_in(b"not an elf"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_elf_launcher_is_an_error() {
        assert!(pack(b"not an elf", b"g").is_err());
    }
}
