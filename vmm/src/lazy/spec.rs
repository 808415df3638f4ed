//! `--lazy NAME=FILE[:SIZE]`: parsing, opening each file, and placing the
//! regions in guest-physical memory.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::memory::PAGE;

/// Open `path` for reading without blocking: a FIFO opens at once (and is
/// then refused as not a regular file) instead of waiting for a writer.
pub fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// `--lazy NAME=FILE[:SIZE]` as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LazySpec {
    /// The name the guest finds it by.
    pub name: String,
    /// The host file behind it.
    pub path: PathBuf,
    /// Region size in bytes; None: the file's size.
    pub size: Option<u64>,
}

impl LazySpec {
    /// Parse `NAME=FILE` or `NAME=FILE:SIZE` (SIZE in bytes or K/M/G).
    /// NAME must be UTF-8; FILE is taken byte for byte.
    pub fn parse(
        arg: &OsStr,
        parse_size: impl Fn(&str) -> std::result::Result<u64, String>,
    ) -> std::result::Result<LazySpec, String> {
        let shown = arg.to_string_lossy();
        let bytes = arg.as_bytes();
        let eq = bytes
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| format!("--lazy `{shown}`: want NAME=FILE or NAME=FILE:SIZE"))?;
        let (name, rest) = (&bytes[..eq], &bytes[eq + 1..]);
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty() && !n.contains(|c: char| c.is_whitespace() || c.is_control()))
            .ok_or_else(|| {
                format!("--lazy `{shown}`: the region name must be non-empty UTF-8 without spaces")
            })?;
        let sized = rest.iter().rposition(|&b| b == b':').and_then(|c| {
            let size = std::str::from_utf8(&rest[c + 1..]).ok()?;
            (c > 0).then_some(())?;
            parse_size(size).ok().map(|n| (&rest[..c], n))
        });
        let (path, size) = match sized {
            Some((p, n)) => (p, Some(n)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(format!("--lazy `{shown}`: no file given"));
        }
        Ok(LazySpec {
            name: name.to_string(),
            path: PathBuf::from(OsStr::from_bytes(path)),
            size,
        })
    }
}

/// A region planned, file opened, before any memory exists.
pub struct PlannedRegion {
    /// The name the guest finds it by.
    pub name: String,
    /// The opened file (read-only, shared with the fetch threads).
    pub file: Arc<File>,
    /// Its path, for messages.
    pub path: PathBuf,
    /// Its length when opened.
    pub file_len: u64,
    /// Bytes the guest sees (BootInfo `len`).
    pub len: u64,
    /// Guest-physical start.
    pub gpa: u64,
    /// Mapped bytes: `len` rounded up to pages.
    pub mapped: u64,
}

/// The most `--lazy` regions one VM takes. Each region is a KVM memslot
/// (besides RAM and the page tables), and 500 stays below the smallest
/// memslot limit KVM has had (509 user slots on x86_64, 512 on arm64; new
/// kernels offer 32764). Each page-table area is sized for this many regions
/// of any size (a const assertion in each `arch::*::layout`).
pub const MAX_REGIONS: usize = 500;

/// Round up to a multiple of `align` (a power of two), None on overflow.
pub fn round_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

/// A `--lazy` region that cannot be set up as given ("invalid configuration: ...").
#[derive(Debug, thiserror::Error)]
pub enum LazySpecError {
    /// More regions than `MAX_REGIONS`.
    #[error("lazy: {0} regions given; at most {MAX_REGIONS} lazy regions")]
    TooMany(usize),
    /// Fewer memslots than regions on this host: `room` regions fit.
    #[error("lazy: {given} regions given; this host's KVM has {slots} memslots, so at most {room} lazy regions here")]
    TooManyForHost {
        /// Regions asked for.
        given: usize,
        /// Memslots the host has.
        slots: usize,
        /// Regions that fit.
        room: usize,
    },
    /// Two regions with one name.
    #[error("lazy `{0}`: region name given twice")]
    NameTwice(String),
    /// The file could not be opened, stat'ed or read (`op`).
    #[error("lazy `{name}`: cannot {op} {}: {source}", path.display())]
    File {
        /// The region's name.
        name: String,
        /// What failed: open, stat or read.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a regular file (a FIFO, a device, a directory).
    #[error("lazy `{name}`: {} is not a regular file", path.display())]
    NotAFile {
        /// The region's name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// SIZE smaller than the file.
    #[error("lazy `{name}`: size {size} is smaller than {} ({file_len} bytes)", path.display())]
    SmallerThanFile {
        /// The region's name.
        name: String,
        /// The SIZE given.
        size: u64,
        /// The file.
        path: PathBuf,
        /// Its length.
        file_len: u64,
    },
    /// An empty file without a SIZE.
    #[error("lazy `{name}`: {} is empty (give a size with NAME=FILE:SIZE for a zero-filled region)", path.display())]
    Empty {
        /// The region's name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A size that overflows when rounded up.
    #[error("lazy `{name}`: size {len} too large")]
    TooLarge {
        /// The region's name.
        name: String,
        /// Its size.
        len: u64,
    },
    /// The region does not fit in the lazy-region window.
    #[error("lazy `{name}`: {len} bytes do not fit in the guest address space for lazy regions")]
    DoesNotFit {
        /// The region's name.
        name: String,
        /// Its size.
        len: u64,
    },
}

/// Open each file and place the regions from `base` on, `align` apart, below `limit`.
pub fn plan(
    specs: &[LazySpec],
    base: u64,
    align: u64,
    limit: u64,
) -> Result<Vec<PlannedRegion>, LazySpecError> {
    if specs.len() > MAX_REGIONS {
        return Err(LazySpecError::TooMany(specs.len()));
    }
    let mut out: Vec<PlannedRegion> = Vec::new();
    let mut at = base;
    for s in specs {
        if out.iter().any(|r| r.name == s.name) {
            return Err(LazySpecError::NameTwice(s.name.clone()));
        }
        let (file, file_len) = open_checked(s)?;
        let len = region_len(s, file_len)?;
        let mapped = round_up(len, PAGE).ok_or_else(|| LazySpecError::TooLarge {
            name: s.name.clone(),
            len,
        })?;
        let end = at
            .checked_add(mapped)
            .filter(|e| *e <= limit)
            .ok_or_else(|| LazySpecError::DoesNotFit {
                name: s.name.clone(),
                len,
            })?;
        out.push(PlannedRegion {
            name: s.name.clone(),
            file: Arc::new(file),
            path: s.path.clone(),
            file_len,
            len,
            gpa: at,
            mapped,
        });
        at = round_up(end, align).unwrap_or(u64::MAX);
    }
    Ok(out)
}

/// Open the region's file without blocking; it must be a regular file
/// whose first byte (if any) can be read. Returns it and its length.
fn open_checked(s: &LazySpec) -> Result<(File, u64), LazySpecError> {
    let io = |op: &'static str| {
        move |source| LazySpecError::File {
            name: s.name.clone(),
            op,
            path: s.path.clone(),
            source,
        }
    };
    let file = open_nonblocking(&s.path).map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    if !meta.is_file() {
        return Err(LazySpecError::NotAFile {
            name: s.name.clone(),
            path: s.path.clone(),
        });
    }
    let file_len = meta.len();
    // Reading one byte now turns "exists but unreadable" (a directory
    // handle, EIO, permissions on some filesystems) into an error before boot.
    if file_len > 0 {
        let mut b = [0u8; 1];
        file.read_at(&mut b, 0).map_err(io("read"))?;
    }
    Ok((file, file_len))
}

/// The bytes the guest sees: SIZE when given (not below the file's), else
/// the file's length; never zero.
fn region_len(s: &LazySpec, file_len: u64) -> Result<u64, LazySpecError> {
    let len = match s.size {
        Some(size) if size < file_len => {
            return Err(LazySpecError::SmallerThanFile {
                name: s.name.clone(),
                size,
                path: s.path.clone(),
                file_len,
            })
        }
        Some(size) => size,
        None => file_len,
    };
    if len == 0 {
        return Err(LazySpecError::Empty {
            name: s.name.clone(),
            path: s.path.clone(),
        });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> std::result::Result<u64, String> {
        s.parse::<u64>().map_err(|e| e.to_string())
    }

    #[test]
    fn specs_parse_with_and_without_size() {
        let parse = |s: &str| LazySpec::parse(OsStr::new(s), size);
        let s = parse("data=/tmp/x").unwrap();
        assert_eq!((s.name.as_str(), s.size), ("data", None));
        let s = parse("data=/tmp/x:8192").unwrap();
        assert_eq!((s.path, s.size), (PathBuf::from("/tmp/x"), Some(8192)));
        let s = parse("d=C:weird").unwrap();
        assert_eq!((s.path, s.size), (PathBuf::from("C:weird"), None));
        assert!(parse("nofile").is_err());
        assert!(parse("=x").is_err());
        assert!(parse("a=").is_err());
        assert!(
            parse("a\x1b[2J=/tmp/x").is_err(),
            "control characters in names"
        );
        // A file name that is not UTF-8 passes through byte for byte.
        let raw = OsStr::from_bytes(b"d=/tmp/\xff\xfe:4096");
        let s = LazySpec::parse(raw, size).unwrap();
        assert_eq!(s.path.as_os_str().as_bytes(), b"/tmp/\xff\xfe");
        assert_eq!(s.size, Some(4096));
    }

    #[test]
    fn plan_rounds_places_and_rejects() {
        let dir = std::env::temp_dir().join(format!("vessel-lazy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, vec![7u8; 5000]).unwrap();
        let e = dir.join("empty");
        std::fs::write(&e, b"").unwrap();
        let spec = |name: &str, p: &PathBuf, size| LazySpec {
            name: name.into(),
            path: p.clone(),
            size,
        };
        let r = plan(
            &[spec("a", &f, None), spec("b", &f, Some(9000))],
            1 << 32,
            1 << 21,
            1 << 40,
        )
        .unwrap();
        assert_eq!((r[0].gpa, r[0].len, r[0].mapped), (1 << 32, 5000, 8192));
        assert_eq!(
            (r[1].gpa, r[1].len, r[1].mapped),
            ((1 << 32) + (1 << 21), 9000, 12288)
        );
        let err = |specs: &[LazySpec]| {
            plan(specs, 1 << 32, 1 << 21, 1 << 40)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err(&[spec("e", &e, None)]).contains("empty"));
        assert!(plan(&[spec("e", &e, Some(100))], 1 << 32, 1 << 21, 1 << 40).is_ok());
        assert!(err(&[spec("m", &dir.join("missing"), None)]).contains("cannot open"));
        assert!(err(&[spec("s", &f, Some(10))]).contains("smaller"));
        assert!(err(&[spec("a", &f, None), spec("a", &f, None)]).contains("twice"));
        assert!(err(&[spec("d", &dir, None)]).contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plan_takes_up_to_max_regions_and_names_the_limit_past_it() {
        let dir = std::env::temp_dir().join(format!("vessel-lazy-max-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, vec![1u8; 1 << 20]).unwrap();
        let specs: Vec<LazySpec> = (0..=MAX_REGIONS)
            .map(|i| LazySpec {
                name: format!("r{i}"),
                path: f.clone(),
                size: None,
            })
            .collect();
        let (base, align, limit) = (1 << 32, 1 << 21, (1 << 32) + (64 << 30));
        let r = plan(&specs[..300], base, align, limit).unwrap();
        assert_eq!(r.len(), 300);
        assert_eq!((r[299].gpa, r[299].mapped), (base + 299 * align, 1 << 20));
        assert_eq!(
            plan(&specs[..MAX_REGIONS], base, align, limit)
                .unwrap()
                .len(),
            MAX_REGIONS
        );
        let e = plan(&specs, base, align, limit).err().unwrap().to_string();
        assert!(
            e.contains(&format!("at most {MAX_REGIONS} lazy regions")),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
