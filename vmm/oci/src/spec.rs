//! From a bundle's config.json to the packed app's command line.
//!
//! A bundle is a Vessel bundle when `process.args[0]`, resolved inside the
//! rootfs, is an executable with a guest section (`vmm::pack`). Its app
//! then runs as `APP DERIVED-FLAGS ARGS[1..]` (ARGS[1..] read as on a
//! command line: launcher flags, `--`, the app's own): `--mem` from the memory
//! limit, `--cpus` from the CPU quota or cpuset, `--dir` per bind mount of
//! a directory, `-e` per environment entry. Anything else is not ours.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCpu, Mount, Spec};

use crate::cgroup::Limits;
use crate::error::{io, OciError, Result};

/// What the launcher itself needs besides guest RAM (its code, the page
/// tables' memslot, thread stacks, I/O buffers): a memory limit gives the
/// guest the limit minus this, so the cgroup never kills a guest for
/// using the RAM it was given.
pub const HEADROOM: u64 = 48 << 20;

/// The memory size given to the guest is a whole number of these.
const MEM_STEP: u64 = 1 << 20;

/// How a Vessel bundle's app runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The packed app, a host path inside the rootfs.
    pub exe: PathBuf,
    /// Its arguments: the derived launcher flags, then `process.args[1..]`.
    pub argv: Vec<OsString>,
    /// What the container's cgroup gets.
    pub limits: Limits,
    /// linux.cgroupsPath.
    pub cgroups_path: Option<PathBuf>,
    /// The rootfs, as the state reports it.
    pub rootfs: PathBuf,
    /// Bind mounts left out (not directories), for the log.
    pub skipped: Vec<PathBuf>,
}

/// What `create` does with a bundle.
#[derive(Debug)]
pub enum Plan {
    /// Run the app as a VM.
    Vessel(Box<Launch>),
    /// Not a Vessel app: hand the whole command to runc or crun; the
    /// executable's path inside the container, for messages.
    Other(String),
}

/// Read `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
    serde_json::from_str(&text).map_err(|e| OciError::BadConfig {
        bundle: bundle.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Decide how the bundle runs; for a Vessel bundle, with every check that
/// can be made before anything exists (mounts, memory).
pub fn plan(bundle: &Path, spec: &Spec) -> Result<Plan> {
    let bad = |msg: &str| OciError::BadConfig {
        bundle: bundle.to_path_buf(),
        msg: msg.to_string(),
    };
    let process = spec.process().as_ref().ok_or_else(|| bad("no `process`"))?;
    let args = process.args().as_deref().unwrap_or_default();
    let arg0 = args.first().ok_or_else(|| bad("`process.args` is empty"))?;
    let root = spec.root().as_ref().ok_or_else(|| bad("no `root`"))?;
    let rootfs = bundle.join(root.path());
    let env = process.env().as_deref().unwrap_or_default();
    let exe = resolve(&rootfs, arg0, path_var(env))?;
    let Some(exe) = exe else {
        return Ok(Plan::Other(arg0.clone()));
    };
    let guest = match vmm::pack::embedded_guest(&exe) {
        Ok(Some(g)) => g,
        Ok(None) => return Ok(Plan::Other(arg0.clone())),
        Err(e) => return Err(bad_app(&exe, e)),
    };
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let cpu = resources.and_then(|r| r.cpu().as_ref());
    let limit = resources
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|&l| l > 0);
    let mem = limit.map(guest_mem).transpose()?;
    let cpus = cpu.and_then(vcpus);
    check_fits(&exe, guest, mem, cpus, limit)?;
    let (dirs, skipped) = dirs(spec.mounts().as_deref().unwrap_or_default())?;
    let mut argv: Vec<OsString> = Vec::new();
    if let Some(m) = mem {
        argv.extend(["--mem".into(), m.to_string().into()]);
    }
    if let Some(n) = cpus {
        argv.extend(["--cpus".into(), n.to_string().into()]);
    }
    for d in dirs {
        argv.extend(["--dir".into(), d]);
    }
    for e in env
        .iter()
        .filter(|e| e.split_once('=').is_some_and(|(k, _)| !k.is_empty()))
    {
        argv.extend(["-e".into(), e.into()]);
    }
    // The spec's own arguments follow as they would on a command line:
    // launcher flags, then `--` and the app's (the packed app's rules).
    argv.extend(args[1..].iter().map(OsString::from));
    Ok(Plan::Vessel(Box::new(Launch {
        exe,
        argv,
        limits: Limits::from_spec(limit, cpu),
        cgroups_path: spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
        rootfs,
        skipped,
    })))
}

fn bad_app(exe: &Path, e: vmm::Error) -> OciError {
    OciError::BadApp {
        path: exe.to_path_buf(),
        msg: e.to_string(),
    }
}

/// The guest's memory size for a memory limit (see [`HEADROOM`]).
pub fn guest_mem(limit: i64) -> Result<u64> {
    let bytes = u64::try_from(limit).unwrap_or(0);
    let mem = bytes.saturating_sub(HEADROOM) / MEM_STEP * MEM_STEP;
    vmm::layout::check_mem_size(mem).map_err(|e| OciError::MemoryLimit {
        limit,
        why: format!(
            "less the launcher's {} MiB it leaves the guest {} MiB; {}",
            HEADROOM >> 20,
            mem >> 20,
            e.to_string().replace("mem_size", "guest memory")
        ),
    })?;
    Ok(mem)
}

/// The vCPU count a CPU quota (rounded up to whole CPUs) or a cpuset
/// gives; the smaller when both are set, at most what the launcher runs.
pub fn vcpus(cpu: &LinuxCpu) -> Option<u32> {
    let quota = cpu.quota().filter(|&q| q > 0).map(|q| {
        let period = cpu.period().filter(|&p| p > 0).unwrap_or(100_000);
        u64::try_from(q).unwrap_or(0).div_ceil(period)
    });
    let set = cpu.cpus().as_deref().and_then(cpuset_len);
    let n = match (quota, set) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(n.clamp(1, u64::from(vmm::arch::MAX_VCPUS)) as u32)
}

/// How many CPUs a cpuset list (`0-3,6`) names; None when it is not one.
pub fn cpuset_len(list: &str) -> Option<u64> {
    let mut n = 0u64;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u64, u64) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        n += hi.checked_sub(lo)? + 1;
    }
    (n > 0).then_some(n)
}

/// The guest fits the memory and vCPUs it is given (the launcher's own
/// layout check, made now rather than at `start`).
fn check_fits(
    exe: &Path,
    guest: Vec<u8>,
    mem: Option<u64>,
    cpus: Option<u32>,
    limit: Option<i64>,
) -> Result<()> {
    let image = vmm::load_image(guest).map_err(|e| bad_app(exe, e))?;
    let defaults = vmm::VmConfig::default();
    let vcpus = match cpus {
        Some(n) => n,
        None => image.default_vcpus().map_err(|e| bad_app(exe, e.into()))?,
    };
    let cfg = vmm::VmConfig {
        mem_size: mem.unwrap_or(defaults.mem_size),
        vcpus,
        ..defaults
    };
    match vmm::layout::Layout::plan(&cfg, image.end()) {
        Ok(_) => Ok(()),
        Err(e) => Err(match limit {
            Some(limit) => OciError::MemoryLimit {
                limit,
                why: e.to_string(),
            },
            None => bad_app(exe, e),
        }),
    }
}

/// `--dir` values for the bind mounts of directories, and the bind
/// mounts of files left out (a VM has no single-file mounts: Kubernetes'
/// /etc/hosts and friends). Other mounts (proc, sysfs, tmpfs, ...) have
/// no meaning for a VM and are ignored.
fn dirs(mounts: &[Mount]) -> Result<(Vec<OsString>, Vec<PathBuf>)> {
    let mut dirs = Vec::new();
    let mut skipped = Vec::new();
    for m in mounts {
        let opts = m.options().as_deref().unwrap_or_default();
        let bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if !bind {
            continue;
        }
        let dest = m.destination();
        let source = m.source().clone().unwrap_or_default();
        let meta = std::fs::metadata(&source).map_err(|_| OciError::MountSource {
            dest: dest.clone(),
            host: source.clone(),
        })?;
        if !meta.is_dir() {
            skipped.push(dest.clone());
            continue;
        }
        let guest = dest
            .to_str()
            .filter(|d| d.starts_with('/') && !d.contains(':'));
        let guest = guest.ok_or(OciError::BadMount {
            dest: dest.clone(),
            why: "the destination must be an absolute UTF-8 path without `:`",
        })?;
        let mut arg = source.into_os_string();
        arg.push(format!(":{guest}"));
        if opts.iter().any(|o| o == "ro") {
            arg.push(":ro");
        }
        dirs.push(arg);
    }
    Ok((dirs, skipped))
}

/// `PATH=` of the container's environment.
fn path_var(env: &[String]) -> Option<&str> {
    env.iter().find_map(|e| e.strip_prefix("PATH="))
}

/// `arg0` as a host path inside `rootfs` (searched in PATH when it has no
/// `/`): None when it resolves outside the rootfs (an absolute symlink:
/// only the fallback runtime, inside the container's root, can follow it).
pub fn resolve(rootfs: &Path, arg0: &str, path: Option<&str>) -> Result<Option<PathBuf>> {
    let root = rootfs
        .canonicalize()
        .map_err(io("open the rootfs", rootfs))?;
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![root.join(arg0.trim_start_matches('/'))]
    } else {
        path.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .split(':')
            .map(|d| root.join(d.trim_start_matches('/')).join(arg0))
            .collect()
    };
    for c in candidates {
        let Ok(real) = c.canonicalize() else { continue };
        if !real.is_file() {
            continue;
        }
        return Ok(real.starts_with(&root).then_some(real));
    }
    Err(OciError::NoExecutable(arg0.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_count_their_cpus() {
        assert_eq!(cpuset_len("0-3,6"), Some(5));
        assert_eq!(cpuset_len("2"), Some(1));
        assert_eq!(cpuset_len("3-1"), None);
        assert_eq!(cpuset_len("x"), None);
        assert_eq!(cpuset_len(""), None);
    }

    fn cpu(json: &str) -> LinuxCpu {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn quota_and_cpuset_give_vcpus() {
        assert_eq!(vcpus(&cpu(r#"{"quota":150000,"period":100000}"#)), Some(2));
        assert_eq!(vcpus(&cpu(r#"{"quota":50000}"#)), Some(1));
        assert_eq!(vcpus(&cpu(r#"{"cpus":"0-3"}"#)), Some(4));
        assert_eq!(vcpus(&cpu(r#"{"quota":400000,"cpus":"0-1"}"#)), Some(2));
        assert_eq!(vcpus(&cpu(r#"{"quota":-1,"shares":1024}"#)), None);
        assert_eq!(
            vcpus(&cpu(r#"{"quota":10000000}"#)),
            Some(vmm::arch::MAX_VCPUS)
        );
    }

    #[test]
    fn memory_limits_leave_headroom_and_refuse_too_little() {
        assert_eq!(guest_mem(256 << 20).unwrap(), (256 << 20) - HEADROOM);
        assert_eq!(
            guest_mem((100 << 20) + 12345).unwrap(),
            (100 << 20) - HEADROOM
        );
        let e = guest_mem(50 << 20).unwrap_err().to_string();
        assert!(
            e.starts_with("memory limit 52428800 bytes is below what the app needs"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}
