//! Counting tests honestly: passed, failed and skipped, for the host's
//! `cargo test` run and the arm64 suite alike.
//!
//! libtest has no "skipped": a test that returns early because this host
//! lacks something it needs (no /dev/kvm, no AVX-512, no async page faults)
//! is reported as passed. Such tests call `vessel_tests::skip`, which
//! appends `VESSEL-SKIP <test>: <reason>` to the file named by
//! `$VESSEL_SKIP_LOG`; the count here moves them from passed to skipped.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::{guests, project_root, Arch};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The host crates' tests: unit tests, then integration tests booting the
/// x86_64 guests built here. A failing test is counted, not an error; a
/// build failure or a run with no test at all is an error.
pub fn host_tests(sh: &Shell) -> Result<Counts> {
    // tests/gdb.rs drives a real gdb; tests/oci.rs a private containerd
    // with runc (the fallback) and a busybox rootfs.
    crate::setup::apt_install(sh, &["gdb", "containerd", "runc", "busybox-static"])?;
    // tests/oci.rs validates vmm/deploy's manifests against Kubernetes' schemas.
    crate::setup::pip_install(sh, &["kubernetes-validate"])?;
    guests::build_all(sh, Arch::X86_64)?;
    let log = project_root().join("target/vessel-skips.log");
    let _ = std::fs::remove_file(&log);
    let mut cargo = Command::new("cargo");
    // The default members: the host crates (guest apps only build for
    // their targets). --no-fail-fast: every test binary runs and counts.
    cargo
        .args(["test", "--release", "--no-fail-fast"])
        .current_dir(project_root())
        .env("VESSEL_DIR", guests::packed_dir(Arch::X86_64))
        .env("VESSEL_BIN", guests::launcher(Arch::X86_64))
        .env("VESSEL_SKIP_LOG", &log);
    let mut counts = run_counting(cargo)?;
    let skips = read_skips(&log)?;
    for s in &skips {
        eprintln!("  skip  {s}");
    }
    // libtest counted each of them as passed.
    counts.skipped = skips.len();
    counts.passed = counts.passed.saturating_sub(skips.len());
    Ok(counts)
}

/// The skip log's entries, one per test (`<test>: <reason>`).
fn read_skips(log: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", log.display())),
    };
    let mut skips: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("VESSEL-SKIP "))
        .map(str::to_string)
        .collect();
    skips.sort();
    // A test that reported twice is still one test.
    skips.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
    Ok(skips)
}

/// Run a `cargo test` command, echoing its output, and add up its
/// `test result:` lines.
fn run_counting(mut cmd: Command) -> Result<Counts> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let out = child.stdout.take().context("stdout is piped")?;
    let mut counts = Counts::default();
    for line in std::io::BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            counts += parse_result(rest);
        }
    }
    let status = child.wait()?;
    if !status.success() && counts.failed == 0 {
        bail!("cargo test failed ({status}) with no failing test: see its output above");
    }
    if counts.passed + counts.failed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(counts)
}

/// `ok. 21 passed; 1 failed; 0 ignored; ...` (after `test result: `).
fn parse_result(rest: &str) -> Counts {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let mut c = Counts::default();
    for w in words.windows(2) {
        let Ok(n) = w[0].parse::<usize>() else {
            continue;
        };
        match w[1].trim_end_matches([';', ',']) {
            "passed" => c.passed += n,
            "failed" => c.failed += n,
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_counted() {
        let c = parse_result(
            "FAILED. 20 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.2s",
        );
        assert_eq!(
            c,
            Counts {
                passed: 20,
                failed: 2,
                skipped: 0
            }
        );
        assert_eq!(parse_result("ok. 0 passed; 0 failed; 0 ignored").passed, 0);
    }

    #[test]
    fn skips_are_one_per_test() {
        let dir = std::env::temp_dir().join(format!("xtask-skips-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        std::fs::write(
            &log,
            "VESSEL-SKIP b: no kvm\nVESSEL-SKIP a: no avx512f\nVESSEL-SKIP b: no kvm\nnoise\n",
        )
        .unwrap();
        assert_eq!(read_skips(&log).unwrap(), ["a: no avx512f", "b: no kvm"]);
        assert!(read_skips(&dir.join("none")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
