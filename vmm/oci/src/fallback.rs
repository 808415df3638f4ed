//! Bundles that are not Vessel apps (the Kubernetes pause container, any
//! ordinary image) and commands this runtime does not implement go to runc
//! or crun, with the same command line.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::OciError;

/// The runtime's state directory when `--root` is not given; the fallback
/// is given the same one, so both find every container.
pub const DEFAULT_ROOT: &str = "/run/vessel-oci";

/// The fallback runtime: `$VESSEL_OCI_FALLBACK`, else `runc` or `crun`
/// on PATH (never this executable, should it be installed as `runc`).
pub fn runtime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VESSEL_OCI_FALLBACK").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    ["runc", "crun"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|c| c.is_file() && c.canonicalize().ok() != me)
    })
}

/// Replace this process with the fallback runtime given `argv[1..]`
/// (preceded by `--root DEFAULT_ROOT` when `root_given` is false).
/// Returns only on an error; `what` names the executable for it.
pub fn exec(argv: &[OsString], root_given: bool, what: &str) -> OciError {
    let Some(runtime) = runtime() else {
        return OciError::NoFallback(what.to_string());
    };
    let mut cmd = Command::new(&runtime);
    if !root_given {
        cmd.arg("--root").arg(DEFAULT_ROOT);
    }
    cmd.args(argv.iter().skip(1));
    let e = cmd.exec();
    OciError::Init(format!("exec {}: {e}", Path::new(&runtime).display()))
}
