//! `target/bench/results.json`: every benchmark's medians in one file a
//! tool can read (schema in README.md, "Performance"), updated group by
//! group; the printed table; `--compare OLD.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::project_root;

/// Version of the file's layout; bumped when a field changes meaning.
pub const SCHEMA: u32 = 1;

/// One case of one group: guest (the subject) against its baseline
/// ("native": the host run of the same kernel, the raw KVM program, ...).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Benchmark group: `boot`, `apf`, `clock`, `vector`, `stats`.
    pub group: String,
    /// Case within the group, e.g. `dot/asm/avx2`.
    pub case: String,
    /// Unit of both medians, e.g. `Mflop/s`, `ms`.
    pub unit: String,
    /// `higher` or `lower`: which direction is better for this unit.
    pub better: String,
    /// Median of the subject's runs.
    pub guest_median: f64,
    /// Median of the baseline's runs.
    pub native_median: f64,
    /// guest_median / native_median.
    pub ratio: f64,
    /// Runs of each side (alternating).
    pub runs: usize,
}

impl Entry {
    /// An entry whose ratio is computed from the medians of `guest` and
    /// `native` (each sorted here).
    pub fn new(
        group: &str,
        case: &str,
        unit: &str,
        better: &str,
        guest: &mut [f64],
        native: &mut [f64],
    ) -> Entry {
        let (g, n) = (median(guest), median(native));
        Entry {
            group: group.into(),
            case: case.into(),
            unit: unit.into(),
            better: better.into(),
            guest_median: g,
            native_median: n,
            ratio: if n > 0.0 { g / n } else { f64::NAN },
            runs: guest.len().min(native.len()),
        }
    }
}

/// The median (sorts `v`); NaN for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Where the measurements were taken.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name (/proc/cpuinfo).
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Host kernel release.
    pub kernel: String,
    /// Architecture the guests ran on.
    pub arch: String,
}

/// The whole file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The machine of the latest run.
    pub machine: Machine,
    /// `git rev-parse HEAD` of the latest run (`-dirty` with local changes).
    pub git_commit: String,
    /// Seconds since the epoch of the latest update.
    pub unix_time: u64,
    /// Every case, grouped, in run order.
    pub entries: Vec<Entry>,
}

/// `target/bench/results.json`.
pub fn path() -> PathBuf {
    project_root().join("target/bench/results.json")
}

fn read(p: &Path) -> Result<Results> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a results file", p.display()))
}

/// Replace `group`'s entries in results.json with `entries` (keeping the
/// other groups), stamp machine and commit; returns the file's path.
pub fn record(group: &str, entries: &[Entry]) -> Result<PathBuf> {
    let p = path();
    let mut all = read(&p).map(|r| r.entries).unwrap_or_default();
    all.retain(|e| e.group != group);
    all.extend_from_slice(entries);
    let r = Results {
        schema: SCHEMA,
        machine: machine(),
        git_commit: git_commit(),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        entries: all,
    };
    std::fs::create_dir_all(p.parent().context("results path has a parent")?)?;
    std::fs::write(&p, serde_json::to_string_pretty(&r)? + "\n")
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        arch: std::env::consts::ARCH.into(),
    }
}

fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(project_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if !s.is_empty() => format!("{head}-dirty"),
        _ => head,
    }
}

/// Print `entries` as a table, naming the files they went to.
pub fn print(title: &str, entries: &[Entry], files: &[&Path]) {
    println!("{title}");
    println!(
        "  {:<26} {:>12} {:>12} {:>8}  {:<8} runs",
        "case", "guest", "native", "ratio", "unit"
    );
    for e in entries {
        println!(
            "  {:<26} {:>12.3} {:>12.3} {:>8.3}  {:<8} {}",
            e.case, e.guest_median, e.native_median, e.ratio, e.unit, e.runs
        );
    }
    for f in files {
        println!("  written: {}", f.display());
    }
}

/// `--compare OLD.json`: the change of each case's ratio and guest median
/// from OLD to the current results.json.
pub fn compare(old: &Path) -> Result<()> {
    let (old, new) = (read(old)?, read(&path())?);
    let key = |e: &Entry| (e.group.clone(), e.case.clone());
    let before: BTreeMap<_, _> = old.entries.iter().map(|e| (key(e), e)).collect();
    println!(
        "compare {} ({}) -> {} ({})",
        short(&old.git_commit),
        old.machine.cpu,
        short(&new.git_commit),
        new.machine.cpu
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>9}",
        "group/case", "ratio", "was", "guest"
    );
    for e in &new.entries {
        let name = format!("{}/{}", e.group, e.case);
        match before.get(&key(e)) {
            Some(o) => println!(
                "  {name:<34} {:>9.3} {:>9.3} {:>+8.1}%",
                e.ratio,
                o.ratio,
                (e.guest_median / o.guest_median - 1.0) * 100.0
            ),
            None => println!("  {name:<34} {:>9.3} {:>9} {:>9}", e.ratio, "new", "-"),
        }
    }
    let now: std::collections::BTreeSet<_> = new.entries.iter().map(key).collect();
    for (k, _) in before.iter().filter(|(k, _)| !now.contains(*k)) {
        println!("  {:<34} {:>9}", format!("{}/{}", k.0, k.1), "gone");
    }
    Ok(())
}

/// The first 12 hex digits of a commit, keeping a `-dirty` mark.
fn short(commit: &str) -> String {
    let dirty = if commit.ends_with("-dirty") {
        "-dirty"
    } else {
        ""
    };
    format!("{}{dirty}", commit.get(..12).unwrap_or(commit))
}
