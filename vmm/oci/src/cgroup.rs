//! The container's cgroup: created at `create` with the spec's limits, the
//! app's process moved into it, removed at `delete`.
//!
//! cgroup v2 (one hierarchy at /sys/fs/cgroup) and v1 (one per controller,
//! plus the hybrid `unified` hierarchy when mounted) are both handled, the
//! way runc's cgroupfs driver does for the files Vessel sets.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxCpu;
use serde::{Deserialize, Serialize};

use crate::error::{OciError, Result};

const ROOT: &str = "/sys/fs/cgroup";

/// v1 controllers a container is placed in (those mounted).
const V1: [&str; 6] = ["memory", "cpu", "cpuacct", "cpuset", "pids", "unified"];

/// The limits written into the cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU quota and period, microseconds.
    pub quota: Option<(i64, u64)>,
    /// cpuset.cpus.
    pub cpus: Option<String>,
    /// cpuset.mems.
    pub mems: Option<String>,
}

impl Limits {
    /// From linux.resources.
    pub fn from_spec(memory: Option<i64>, cpu: Option<&LinuxCpu>) -> Limits {
        Limits {
            memory,
            quota: cpu
                .and_then(|c| c.quota())
                .filter(|&q| q > 0)
                .map(|q| (q, cpu.and_then(|c| c.period()).unwrap_or(100_000))),
            cpus: cpu.and_then(|c| c.cpus().clone()).filter(|s| !s.is_empty()),
            mems: cpu.and_then(|c| c.mems().clone()).filter(|s| !s.is_empty()),
        }
    }
}

/// The directories a container's process was placed in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// One per hierarchy.
    pub dirs: Vec<PathBuf>,
}

/// `cgroupsPath` as a path below each hierarchy's root. The systemd form
/// `slice:prefix:name` becomes `slice/prefix-name.scope`.
pub fn relative(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [slice, prefix, name] if !s.starts_with('/') => {
            PathBuf::from(slice).join(format!("{prefix}-{name}.scope"))
        }
        _ => PathBuf::from(s.trim_start_matches('/')),
    }
}

fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| OciError::Cgroup {
        path: path.to_path_buf(),
        source,
    })
}

/// Create the cgroup `path` with `limits` and move `pid` into it. On an
/// error nothing it made is left.
pub fn enter(path: &Path, limits: &Limits, pid: i32) -> Result<Placement> {
    let rel = relative(path);
    let mut placed = Placement::default();
    let result = if unified() {
        enter_v2(&Path::new(ROOT).join(&rel), limits, pid, &mut placed)
    } else {
        enter_v1(&rel, limits, pid, &mut placed)
    };
    if result.is_err() {
        remove(&placed);
    }
    result.map(|()| placed)
}

fn mkdir(dir: &Path, placed: &mut Placement) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| OciError::Cgroup {
        path: dir.to_path_buf(),
        source,
    })?;
    placed.dirs.push(dir.to_path_buf());
    Ok(())
}

fn enter_v2(dir: &Path, limits: &Limits, pid: i32, placed: &mut Placement) -> Result<()> {
    // Controllers reach the container's cgroup through every parent's
    // subtree_control; one a parent cannot delegate fails at the write
    // of its file below, which says so.
    for parent in dir.ancestors().skip(1).filter(|p| p.starts_with(ROOT)) {
        let _ = std::fs::write(
            parent.join("cgroup.subtree_control"),
            "+memory +cpu +cpuset",
        );
    }
    mkdir(dir, placed)?;
    if let Some(m) = limits.memory {
        write(&dir.join("memory.max"), &m.to_string())?;
    }
    if let Some((q, p)) = limits.quota {
        write(&dir.join("cpu.max"), &format!("{q} {p}"))?;
    }
    if let Some(c) = &limits.cpus {
        write(&dir.join("cpuset.cpus"), c)?;
    }
    write(&dir.join("cgroup.procs"), &pid.to_string())
}

fn enter_v1(rel: &Path, limits: &Limits, pid: i32, placed: &mut Placement) -> Result<()> {
    let mut seen = Vec::new();
    for c in V1 {
        let Ok(root) = Path::new(ROOT).join(c).canonicalize() else {
            continue; // not mounted here
        };
        if seen.contains(&root) {
            continue; // cpu and cpuacct share one mount
        }
        seen.push(root.clone());
        let dir = root.join(rel);
        if c == "cpuset" {
            cpuset_levels(&root, rel, limits)?;
        } else {
            mkdir(&dir, placed)?;
        }
        if c == "cpuset" {
            placed.dirs.push(dir.clone());
        }
        v1_limits(c, &dir, limits)?;
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

fn v1_limits(controller: &str, dir: &Path, limits: &Limits) -> Result<()> {
    match controller {
        "memory" => {
            if let Some(m) = limits.memory {
                write(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
            }
        }
        "cpu" => {
            if let Some((q, p)) = limits.quota {
                write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// v1 cpuset: a new level has no CPUs or memory nodes until given some,
/// and no process may join it before; each level gets its parent's, the
/// container's its own when the spec names them.
fn cpuset_levels(root: &Path, rel: &Path, limits: &Limits) -> Result<()> {
    let mut dir = root.to_path_buf();
    let levels: Vec<_> = rel.components().collect();
    for (i, part) in levels.iter().enumerate() {
        let parent = dir.clone();
        dir.push(part);
        std::fs::create_dir_all(&dir).map_err(|source| OciError::Cgroup {
            path: dir.clone(),
            source,
        })?;
        let last = i + 1 == levels.len();
        for (file, own) in [("cpuset.cpus", &limits.cpus), ("cpuset.mems", &limits.mems)] {
            let current = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            let value = match own {
                Some(v) if last => v.clone(),
                _ if !current.trim().is_empty() => continue,
                _ => std::fs::read_to_string(parent.join(file)).unwrap_or_default(),
            };
            write(&dir.join(file), value.trim())?;
        }
    }
    Ok(())
}

/// Remove the container's cgroups (its process is gone; parents stay, as
/// other containers may share them).
pub fn remove(placed: &Placement) {
    for dir in &placed.dirs {
        // A cgroup whose last process just died can be busy for a moment.
        for _ in 0..50 {
            match std::fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_paths_in_both_forms() {
        assert_eq!(
            relative(Path::new("/default/web")),
            PathBuf::from("default/web")
        );
        assert_eq!(
            relative(Path::new("kubepods.slice:cri-containerd:abc")),
            PathBuf::from("kubepods.slice/cri-containerd-abc.scope")
        );
    }
}
