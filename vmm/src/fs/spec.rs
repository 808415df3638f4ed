//! `--dir HOST[:GUEST][:ro]`: what a pre-opened directory is asked to be,
//! and opening it before the guest runs.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Most `--dir` flags per VM.
pub const MAX_DIRS: usize = 64;

/// A `--dir` flag, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirSpec {
    /// The host directory (used byte for byte).
    pub host: PathBuf,
    /// Where the guest sees it: an absolute, normalised UTF-8 path.
    pub guest: String,
    /// Writes, creations, removals and renames beneath it are refused.
    pub readonly: bool,
}

/// A `--dir` the launcher refuses before the guest runs ("invalid
/// configuration: ...").
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// `--dir :GUEST` or `--dir ''`.
    #[error("--dir `{0}`: empty host path")]
    EmptyHost(String),
    /// GUEST is not absolute, normalised UTF-8.
    #[error(
        "--dir `{0}`: the guest path must be absolute, without `.`, `..` or empty parts, and UTF-8"
    )]
    BadGuestPath(String),
    /// HOST has no last name to default GUEST to.
    #[error("--dir `{0}`: the host path has no name to use as the guest path (give HOST:GUEST)")]
    NoName(String),
    /// HOST could not be opened (missing, no permission).
    #[error("--dir {}: {source}", .path.display())]
    Open {
        /// HOST.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// HOST is a file or something else.
    #[error("--dir {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Two `--dir` flags with one GUEST.
    #[error("--dir: guest path {0} is given twice")]
    Duplicate(String),
    /// More than [`MAX_DIRS`] flags.
    #[error("--dir: at most {MAX_DIRS} directories")]
    TooMany,
}

/// Whether `p` is `/` or `/a/b` with no empty, `.` or `..` component.
pub fn guest_path_ok(p: &str) -> bool {
    p == "/"
        || (p.starts_with('/')
            && p[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."))
}

impl DirSpec {
    /// Parse `HOST[:GUEST][:ro]`. GUEST defaults to `/` + HOST's last name.
    pub fn parse(arg: &OsStr) -> Result<DirSpec, DirError> {
        let shown = arg.to_string_lossy().into_owned();
        let mut bytes = arg.as_bytes();
        let mut readonly = false;
        if let Some(rest) = bytes.strip_suffix(b":ro") {
            readonly = true;
            bytes = rest;
        }
        let (host, guest) = match bytes.iter().rposition(|&b| b == b':') {
            Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
            None => (bytes, None),
        };
        if host.is_empty() {
            return Err(DirError::EmptyHost(shown));
        }
        let host = PathBuf::from(OsString::from_vec(host.to_vec()));
        let guest = match guest {
            Some(g) => std::str::from_utf8(g)
                .map_err(|_| DirError::BadGuestPath(shown.clone()))?
                .to_string(),
            None => default_guest(&host).ok_or_else(|| DirError::NoName(shown.clone()))?,
        };
        if !guest_path_ok(&guest) {
            return Err(DirError::BadGuestPath(shown));
        }
        Ok(DirSpec {
            host,
            guest,
            readonly,
        })
    }
}

fn default_guest(host: &Path) -> Option<String> {
    let name = host.file_name()?.to_str()?;
    Some(format!("/{name}"))
}

/// A pre-opened directory: its guest path, an `O_PATH` descriptor every
/// lookup starts from, and whether it is read-only.
#[derive(Debug)]
pub struct Preopen {
    /// Where the guest sees it.
    pub guest: String,
    /// The guest path's components (empty for `/`).
    pub parts: Vec<String>,
    /// The `O_PATH` descriptor of HOST.
    pub dir: OwnedFd,
    /// `:ro` was given.
    pub readonly: bool,
    /// HOST, for messages.
    pub host: PathBuf,
}

/// Open every `--dir`, refusing a missing path, a non-directory, a
/// duplicate guest path or too many.
pub fn open_all(specs: &[DirSpec]) -> Result<Vec<Preopen>, DirError> {
    if specs.len() > MAX_DIRS {
        return Err(DirError::TooMany);
    }
    if !specs.is_empty() {
        raise_fd_limit();
    }
    let mut out: Vec<Preopen> = Vec::new();
    for s in specs {
        if out.iter().any(|p| p.guest == s.guest) {
            return Err(DirError::Duplicate(s.guest.clone()));
        }
        out.push(open_one(s)?);
    }
    Ok(out)
}

/// Descriptors the launcher wants room for beyond the guest's handles.
const FD_SLACK: u64 = 256;

/// Raise the soft RLIMIT_NOFILE (often 1024) so the guest can hold
/// MAX_HANDLES files; capped by the hard limit, where the guest then sees
/// TooManyHandles earlier. Best effort.
fn raise_fd_limit() {
    let want = u64::from(vessel_abi::fs::MAX_HANDLES) + FD_SLACK;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 || lim.rlim_cur >= want {
        return;
    }
    lim.rlim_cur = want.min(lim.rlim_max);
    // SAFETY: setrlimit reads the rlimit; lowering nothing, raising the
    // soft limit at most to the hard one.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) };
}

fn open_one(s: &DirSpec) -> Result<Preopen, DirError> {
    let err = |source| DirError::Open {
        path: s.host.clone(),
        source,
    };
    let c = std::ffi::CString::new(s.host.as_os_str().as_bytes())
        .map_err(|_| err(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    // SAFETY: `c` is a NUL-terminated path; open has no other inputs.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    if !crate::fs::sys::fstat(dir.as_raw_fd())
        .map_err(err)?
        .is_dir()
    {
        return Err(DirError::NotADirectory(s.host.clone()));
    }
    Ok(Preopen {
        parts: split(&s.guest),
        guest: s.guest.clone(),
        dir,
        readonly: s.readonly,
        host: s.host.clone(),
    })
}

/// The components of a normalised guest path.
pub fn split(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<DirSpec, DirError> {
        DirSpec::parse(OsStr::new(s))
    }

    #[test]
    fn parses_host_guest_and_ro() {
        let d = p("/tmp/data").unwrap();
        assert_eq!((d.guest.as_str(), d.readonly), ("/data", false));
        let d = p("/tmp/data:/in:ro").unwrap();
        assert_eq!(d.host, PathBuf::from("/tmp/data"));
        assert_eq!((d.guest.as_str(), d.readonly), ("/in", true));
        let d = p("rel:ro").unwrap();
        assert_eq!((d.guest.as_str(), d.readonly), ("/rel", true));
        assert!(p("/x:/").is_ok());
    }

    #[test]
    fn refuses_bad_guest_paths() {
        for bad in ["/x:in", "/x:/a/../b", "/x:/a//b", "/x:/.", ":/a", "/"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_file_and_duplicate_are_errors() {
        let tmp = std::env::temp_dir().join(format!("vessel-spec-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let file = tmp.join("f");
        std::fs::write(&file, b"x").unwrap();
        let spec = |h: &Path, g: &str| DirSpec {
            host: h.into(),
            guest: g.into(),
            readonly: false,
        };
        let e = open_all(&[spec(&tmp.join("nope"), "/a")]).unwrap_err();
        assert!(e.to_string().contains("No such file"), "{e}");
        let e = open_all(&[spec(&file, "/a")]).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        let e = open_all(&[spec(&tmp, "/a"), spec(&tmp, "/a")]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert_eq!(open_all(&[spec(&tmp, "/a")]).unwrap()[0].parts, ["a"]);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
