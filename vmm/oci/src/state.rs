//! A container's record under `--root`: `ROOT/ID/vessel.json` and, until
//! `start`, the exec fifo `ROOT/ID/exec.fifo` its process waits on.
//!
//! A directory `ROOT/ID` without `vessel.json` belongs to the fallback
//! runtime (runc keeps its `state.json` there).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroup::Placement;
use crate::error::{io, OciError, Result};

/// The record's file name in the container's directory.
pub const RECORD: &str = "vessel.json";
/// The fifo the container's process waits on until `start`.
pub const FIFO: &str = "exec.fifo";

/// What `create` leaves for the other commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The rootfs.
    pub rootfs: PathBuf,
    /// The container's process (the packed app once started).
    pub pid: i32,
    /// Its start time in clock ticks since boot (/proc/PID/stat field
    /// 22), so a recycled pid is not taken for it.
    pub start_time: u64,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Its cgroups.
    pub cgroup: Placement,
    /// The spec's annotations.
    pub annotations: HashMap<String, String>,
}

/// The OCI statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for `start`.
    Created,
    /// The app runs.
    Running,
    /// The process has exited.
    Stopped,
}

impl Status {
    /// As the state JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// `ROOT/ID`, with `id` checked so it names one directory entry.
pub fn dir(root: &Path, id: &str) -> Result<PathBuf> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok {
        return Err(OciError::BadId(id.to_string()));
    }
    Ok(root.join(id))
}

/// Whose container `ROOT/ID` is.
pub enum Owner {
    /// Ours, with its record.
    Vessel(Box<Record>),
    /// The fallback runtime's.
    Other,
}

/// Find container `id`.
pub fn find(root: &Path, id: &str) -> Result<Owner> {
    let dir = dir(root, id)?;
    if !dir.is_dir() {
        return Err(OciError::NotFound(id.to_string()));
    }
    let path = dir.join(RECORD);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(|r| Owner::Vessel(Box::new(r)))
            .map_err(|e| OciError::Io {
                what: "read",
                path,
                source: e.into(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Owner::Other),
        Err(e) => Err(OciError::Io {
            what: "read",
            path,
            source: e,
        }),
    }
}

impl Record {
    /// Write the record (atomically: a reader sees the old one or this).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".vessel.json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| OciError::Init(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, dir.join(RECORD)).map_err(io("write", dir.join(RECORD)))
    }

    /// The container's status now.
    pub fn status(&self, dir: &Path) -> Status {
        if !alive(self.pid, self.start_time) {
            Status::Stopped
        } else if dir.join(FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The state JSON of `vessel-oci state`, as runc prints it.
    pub fn state_json(&self, status: Status) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.name(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations,
        })
    }
}

/// `pid`'s state letter and start time, from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the line is the 20th after the name (state is field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// `pid` is the process that was started at `start_time` and has not
/// exited (a zombie has).
pub fn alive(pid: i32, start_time: u64) -> bool {
    matches!(proc_stat(pid), Some((s, t)) if t == start_time && s != 'Z' && s != 'X')
}

/// Now, in RFC 3339 (UTC, nanoseconds), as runc writes times.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 as a (year, month, day) of the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_one_entry() {
        let root = Path::new("/r");
        assert_eq!(dir(root, "web-1.a_b+c").unwrap(), root.join("web-1.a_b+c"));
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(matches!(dir(root, bad), Err(OciError::BadId(_))), "{bad:?}");
        }
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = i32::try_from(std::process::id()).unwrap();
        let (state, start) = proc_stat(me).unwrap();
        assert_ne!(state, 'Z');
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
        assert!(!alive(i32::MAX, 0));
    }
}
