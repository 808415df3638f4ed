//! Guest paths to (pre-opened directory, path beneath it).
//!
//! Pure logic, the first half of the first wall: a guest path must be
//! UTF-8, without NUL, at most [`MAX_PATH`] bytes and absolute; it belongs
//! to the pre-opened directory whose guest path is its longest prefix
//! (whole components). What remains is handed to `openat2` with
//! RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, which refuses every `..`,
//! absolute or symlinked way out, and `/proc`-style magic links.

use std::ffi::CString;

use vessel_abi::fs::MAX_PATH;
use vessel_abi::Errno;

/// Where a guest path resolves: the index of its pre-opened directory and
/// the path relative to it (`.` for the directory itself).
#[derive(Debug, PartialEq, Eq)]
pub struct Beneath {
    /// Index of the pre-opened directory.
    pub dir: usize,
    /// The path relative to it, for `openat2`.
    pub rel: CString,
    /// Components after the directory's own (empty for the directory).
    pub parts: Vec<String>,
}

/// Check a guest path's bytes and split it into components (`.` and empty
/// ones dropped; `..` kept for `openat2` to judge).
pub fn components(path: &[u8]) -> Result<Vec<&str>, Errno> {
    if path.len() as u64 > MAX_PATH {
        return Err(Errno::NameTooLong);
    }
    if path.contains(&0) {
        return Err(Errno::Inval);
    }
    let s = std::str::from_utf8(path).map_err(|_| Errno::Inval)?;
    if !s.starts_with('/') {
        return Err(Errno::Inval);
    }
    Ok(s.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect())
}

/// Resolve `path` against the pre-opened directories' components (`dirs`).
/// A path under none of them is NotFound.
pub fn resolve(dirs: &[&[String]], path: &[u8]) -> Result<Beneath, Errno> {
    let parts = components(path)?;
    let best = dirs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.len() <= parts.len() && d.iter().zip(&parts).all(|(a, b)| a == b))
        .max_by_key(|(_, d)| d.len())
        .ok_or(Errno::NotFound)?;
    let rest: Vec<String> = parts[best.1.len()..]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let joined = if rest.is_empty() {
        ".".to_string()
    } else {
        rest.join("/")
    };
    Ok(Beneath {
        dir: best.0,
        rel: CString::new(joined).map_err(|_| Errno::Inval)?,
        parts: rest,
    })
}

/// For calls on a name inside a directory (mkdir, unlink, rmdir, rename):
/// the parent's path beneath the directory and the final name. The
/// directory itself, or a final `..`, is PermissionDenied.
pub fn parent_and_name(b: &Beneath) -> Result<(CString, CString), Errno> {
    let (name, parent) = b.parts.split_last().ok_or(Errno::PermissionDenied)?;
    if name == ".." {
        return Err(Errno::PermissionDenied);
    }
    let parent = if parent.is_empty() {
        ".".to_string()
    } else {
        parent.join("/")
    };
    let c = |s: String| CString::new(s).map_err(|_| Errno::Inval);
    Ok((c(parent)?, c(name.clone())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Vec<Vec<String>> {
        vec![
            vec!["data".into()],
            vec!["data".into(), "out".into()],
            vec!["ro".into()],
        ]
    }

    fn res(p: &str) -> Result<Beneath, Errno> {
        let d = dirs();
        let refs: Vec<&[String]> = d.iter().map(|v| v.as_slice()).collect();
        resolve(&refs, p.as_bytes())
    }

    #[test]
    fn longest_prefix_wins_and_dots_are_dropped() {
        let b = res("/data/out/./x//y").unwrap();
        assert_eq!((b.dir, b.rel.to_str().unwrap()), (1, "x/y"));
        let b = res("/data/outer").unwrap();
        assert_eq!((b.dir, b.rel.to_str().unwrap()), (0, "outer"));
        let b = res("/ro").unwrap();
        assert_eq!((b.dir, b.rel.to_str().unwrap()), (2, "."));
        // `..` is left for openat2 (RESOLVE_BENEATH) to refuse.
        assert_eq!(res("/data/../etc").unwrap().rel.to_str().unwrap(), "../etc");
    }

    #[test]
    fn bad_paths_are_refused() {
        assert_eq!(res("/etc/passwd").unwrap_err(), Errno::NotFound);
        assert_eq!(res("/../data/x").unwrap_err(), Errno::NotFound);
        assert_eq!(res("data/x").unwrap_err(), Errno::Inval);
        assert_eq!(res("/data/a\0b").unwrap_err(), Errno::Inval);
        let d = dirs();
        let refs: Vec<&[String]> = d.iter().map(|v| v.as_slice()).collect();
        assert_eq!(resolve(&refs, b"/data/\xff").unwrap_err(), Errno::Inval);
        let long = format!("/data/{}", "a".repeat(64 << 10));
        assert_eq!(res(&long).unwrap_err(), Errno::NameTooLong);
    }

    #[test]
    fn parent_of_the_directory_itself_is_refused() {
        let p = |s: &str| parent_and_name(&res(s).unwrap());
        assert_eq!(p("/data").unwrap_err(), Errno::PermissionDenied);
        assert_eq!(p("/data/x/..").unwrap_err(), Errno::PermissionDenied);
        let (parent, name) = p("/data/a/b").unwrap();
        assert_eq!(
            (parent.to_str().unwrap(), name.to_str().unwrap()),
            ("a", "b")
        );
    }
}
