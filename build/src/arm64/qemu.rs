//! Booting the test machine: QEMU with the kernel and an initramfs, its
//! serial console streamed and /init's result lines counted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::kernel::kernel;
use crate::testing::Counts;

/// Whole-suite limit, boot included: a guard against a hung machine, not a
/// performance goal. The suite takes 30 s on an idle machine but over
/// 400 s when other engineers' test runs share this project's two cores.
const SUITE_LIMIT: Duration = Duration::from_secs(600);

/// Start QEMU on `cpu` with `initrd` and `mem_mib` of RAM; console lines
/// arrive on the receiver.
pub fn spawn(cpu: &str, initrd: &Path, mem_mib: u64) -> Result<(Child, mpsc::Receiver<String>)> {
    let mut qemu = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            cpu,
            "-accel",
            "tcg,thread=multi",
            "-smp",
            "2",
            "-m",
            &mem_mib.to_string(),
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
            "-kernel",
        ])
        .arg(kernel())
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyAMA0 rdinit=/init quiet panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting qemu-system-aarch64")?;
    let out = qemu.stdout.take().context("QEMU stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).split(b'\n').map_while(|l| l.ok()) {
            let s = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    Ok((qemu, rx))
}

/// What /init reported.
#[derive(Default)]
struct Results {
    passed: Vec<String>,
    failed: Vec<String>,
    flaky: Vec<String>,
    summary: Option<String>,
    /// The sentinel's `rc=`; None when it never came.
    done: Option<String>,
}

impl Results {
    /// Take one console line; true when it was the sentinel.
    fn take(&mut self, line: &str) -> bool {
        if let Some(r) = line.strip_prefix("VESSEL-TEST ok ") {
            self.passed.push(r.to_string());
        } else if let Some(r) = line.strip_prefix("VESSEL-TEST FAIL ") {
            self.failed.push(r.to_string());
        } else if let Some(r) = line.strip_prefix("VESSEL-FLAKY ") {
            self.flaky.push(r.to_string());
        } else if let Some(r) = line.strip_prefix("VESSEL-TESTS ") {
            self.summary = Some(r.to_string());
        } else if let Some(r) = line.find("VESSEL-DONE rc=") {
            self.done = Some(line[r + 15..].trim().to_string());
        }
        self.done.is_some()
    }
}

/// Echo console lines and collect results until the sentinel, the end of
/// QEMU's output or the suite's time limit.
fn collect(rx: &mpsc::Receiver<String>, start: Instant) -> Results {
    let mut r = Results::default();
    let stderr = std::io::stderr();
    loop {
        let left = SUITE_LIMIT.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                let _ = writeln!(stderr.lock(), "  arm64| {line}");
                if r.take(&line) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    r
}

/// Power-off normally ends QEMU; make sure it is gone either way.
pub fn stop(mut qemu: Child) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && qemu.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = qemu.kill();
    let _ = qemu.wait();
}

/// Boot QEMU with `initrd` on a `-cpu` model, stream the console and count
/// /init's result lines. A test that never reported (time limit, QEMU gone
/// without the sentinel) counts as failed, with the reason printed.
pub fn boot(suite: &str, cpu: &str, initrd: &Path, tests: usize) -> Result<Counts> {
    eprintln!(
        "xtask: booting the arm64 test machine ({}), -cpu {cpu} ({tests} tests, limit {} s)",
        kernel().display(),
        SUITE_LIMIT.as_secs()
    );
    let start = Instant::now();
    let (qemu, rx) = spawn(cpu, initrd, 1024)?;
    let r = collect(&rx, start);
    stop(qemu);
    Ok(report(suite, &r, tests, start.elapsed()))
}

/// Print the suite's results; count them.
fn report(suite: &str, r: &Results, tests: usize, took: Duration) -> Counts {
    eprintln!("\n{suite} ({:.0} s):", took.as_secs_f64());
    for (tag, list) in [
        ("ok   ", &r.passed),
        ("FAIL ", &r.failed),
        ("FLAKY", &r.flaky),
    ] {
        for t in list {
            eprintln!("  {tag} {t}");
        }
    }
    let ran = r.passed.len() + r.failed.len();
    let mut counts = Counts {
        passed: r.passed.len(),
        failed: r.failed.len() + tests.saturating_sub(ran),
        skipped: 0,
    };
    match (&r.done, &r.summary) {
        (None, _) if took >= SUITE_LIMIT => eprintln!(
            "{suite}: no result after {} s (QEMU killed); {ran} of {tests} tests reported",
            SUITE_LIMIT.as_secs()
        ),
        (None, _) => eprintln!(
            "{suite}: QEMU ended without the VESSEL-DONE sentinel; {ran} of {tests} tests reported"
        ),
        (Some(_), summary) => eprintln!(
            "{suite}: {}",
            summary.as_deref().unwrap_or("no summary line")
        ),
    }
    if r.done.as_deref().is_some_and(|rc| rc != "0") && counts.failed == 0 {
        // /init failed outside any one test (e.g. it could not read the table).
        eprintln!(
            "{suite}: /init ended with {}",
            r.done.as_deref().unwrap_or("")
        );
        counts.failed = 1;
    }
    counts
}
