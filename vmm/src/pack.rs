//! One executable per app: the launcher with the guest ELF in an ELF section.
//!
//! `pack` copies the launcher's own ELF and adds a non-loaded section named
//! [`GUEST_SECTION`] holding the guest image (object's ELF builder rewrites
//! the section table; code and data are untouched). At start-up the launcher
//! reads its own section table through a read cache, so only the headers and
//! the guest bytes are read, not the whole executable.

use std::fs::File;
use std::path::Path;

use object::read::ReadCache;
use object::{Object, ObjectSection};

use crate::error::{Error, Result};

/// Name of the section that carries the guest image.
pub const GUEST_SECTION: &str = ".vessel.guest";

/// A copy of the launcher ELF `launcher` with `guest` embedded.
pub fn pack(launcher: &[u8], guest: &[u8]) -> Result<Vec<u8>> {
    let mut b = object::build::elf::Builder::read(launcher)
        .map_err(|e| Error::Other(format!("cannot read the launcher executable as ELF: {e}")))?;
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
    b.write(&mut out)
        .map_err(|e| Error::Other(format!("cannot write the packed executable: {e}")))?;
    Ok(out)
}

/// The guest image embedded in the executable at `exe`, if there is one.
pub fn embedded_guest(exe: &Path) -> Result<Option<Vec<u8>>> {
    let file =
        File::open(exe).map_err(|e| Error::Io(format!("cannot open {}: {e}", exe.display())))?;
    let cache = ReadCache::new(file);
    let obj = match object::File::parse(&cache) {
        Ok(o) => o,
        Err(_) => return Ok(None),
    };
    match obj.section_by_name(GUEST_SECTION) {
        Some(s) => s.data().map(|d| Some(d.to_vec())).map_err(|e| {
            Error::Io(format!(
                "cannot read the embedded guest in {}: {e}",
                exe.display()
            ))
        }),
        None => Ok(None),
    }
}

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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_elf_launcher_is_an_error() {
        assert!(pack(b"not an elf", b"g").is_err());
    }
}
