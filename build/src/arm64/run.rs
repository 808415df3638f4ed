//! `cargo xtask run APP --arch aarch64`: one packed arm64 app on the
//! emulated arm64 machine the suite uses (QEMU booting Debian's kernel,
//! real arm64 KVM inside), its output streamed, its exit code returned.
//!
//! /init (build/arm64-init) finds `/run.txt` (the command, NUL-separated),
//! runs it, prefixes each line of its stdout with [`OUT`] and of its stderr
//! with [`ERR`], then prints [`EXIT`]`N`; everything else on the console
//! (the kernel, /init itself) is not the app's and is only shown when the
//! machine ends without an exit code. `--lazy` files are copied into the
//! initramfs and the flag rewritten to their path there.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{initramfs, qemu};
use crate::{guests, setup, Arch};

/// Console prefix of a line the app wrote to stdout.
pub const OUT: &str = "VESSEL-OUT ";
/// Console prefix of a line the app wrote to stderr.
pub const ERR: &str = "VESSEL-ERR ";
/// Console prefix of the app's exit code (the sentinel).
pub const EXIT: &str = "VESSEL-RUN-EXIT rc=";

/// The QEMU CPU model when `--qemu-cpu` is not given: every SVE length.
pub const DEFAULT_CPU: &str = "max,sve=on";

/// Set up, build `app` for aarch64, boot the machine on `cpu` and run
/// `/apps/APP ARGS` in it; returns the app's exit code.
pub fn run(sh: &Shell, app: &str, args: &[String], cpu: &str) -> Result<i32> {
    setup::setup(sh, Arch::Aarch64)?;
    super::setup(sh)?;
    guests::build(sh, Arch::Aarch64, &[app.to_string()])?.check()?;
    super::build_init(sh)?;
    let (args, files) = share_lazy_files(args);
    let argv: Vec<String> = std::iter::once(format!("/apps/{app}"))
        .chain(args)
        .collect();
    let (initrd, bytes) = initramfs::for_run(app, &files, &argv)?;
    // The initramfs is unpacked into RAM next to its archive: room for both,
    // plus the guest's own memory.
    let mem_mib = 1024 + 2 * (bytes >> 20);
    eprintln!(
        "xtask: running {app} on the emulated arm64 machine (QEMU -cpu {cpu}; timings there are emulated, not native)"
    );
    let limit = limit()?;
    let (qemu, rx) = qemu::spawn(cpu, &initrd, mem_mib)?;
    let code = stream(&rx, limit);
    qemu::stop(qemu);
    code
}

/// `$VESSEL_RUN_LIMIT_S`: give up (and stop QEMU) after that many seconds;
/// unset, a run takes as long as the app does. The self-test sets it, so a
/// machine that never boots fails the test instead of hanging it.
fn limit() -> Result<Option<Duration>> {
    match std::env::var("VESSEL_RUN_LIMIT_S") {
        Ok(v) => match v.parse::<u64>() {
            Ok(s) if s > 0 => Ok(Some(Duration::from_secs(s))),
            _ => bail!("VESSEL_RUN_LIMIT_S `{v}` is not a positive number of seconds"),
        },
        Err(_) => Ok(None),
    }
}

/// Copy each `--lazy NAME=FILE[:SIZE]` before `--` into the initramfs as
/// `/files/N/NAME-OF-FILE`, rewriting the flag; returns the new arguments
/// and the files (in-archive path, host path). A FILE that does not exist
/// here is passed unchanged, so the launcher in the machine reports it.
fn share_lazy_files(args: &[String]) -> (Vec<String>, Vec<(String, PathBuf)>) {
    let mut out = Vec::with_capacity(args.len());
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a.clone());
            out.extend(it.by_ref().cloned());
            break;
        }
        let (spec, inline) = match a.strip_prefix("--lazy=") {
            Some(s) => (Some(s.to_string()), true),
            None if a == "--lazy" => (it.next().cloned(), false),
            None => {
                out.push(a.clone());
                continue;
            }
        };
        let Some(spec) = spec else {
            out.push(a.clone()); // `--lazy` last: the launcher says what is missing
            continue;
        };
        let spec = rewrite_lazy(&spec, files.len()).map_or(spec, |(s, f)| {
            files.push(f);
            s
        });
        if inline {
            out.push(format!("--lazy={spec}"));
        } else {
            out.extend(["--lazy".to_string(), spec]);
        }
    }
    (out, files)
}

/// `NAME=FILE[:SIZE]` with FILE an existing file here -> the spec naming
/// its copy in the archive, and (archive path, host path).
fn rewrite_lazy(spec: &str, n: usize) -> Option<(String, (String, PathBuf))> {
    let (name, rest) = spec.split_once('=')?;
    let (file, size) = if Path::new(rest).is_file() {
        (rest, None)
    } else {
        let (f, s) = rest.rsplit_once(':')?;
        Path::new(f).is_file().then_some((f, Some(s)))?
    };
    let base = Path::new(file).file_name()?.to_string_lossy().into_owned();
    let inside = format!("files/{n}/{base}");
    let size = size.map(|s| format!(":{s}")).unwrap_or_default();
    Some((
        format!("{name}=/{inside}{size}"),
        (inside, PathBuf::from(file)),
    ))
}

/// Pass the app's lines through until its exit code; QEMU ending first is
/// an error that shows the console's last lines.
fn stream(rx: &mpsc::Receiver<String>, limit: Option<Duration>) -> Result<i32> {
    let deadline = limit.map(|l| Instant::now() + l);
    let mut other: Vec<String> = Vec::new();
    loop {
        let line = match deadline {
            None => rx.recv().ok(),
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(line) => Some(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("no exit code from the arm64 machine within VESSEL_RUN_LIMIT_S")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(line) = line else { break };
        match classify(&line) {
            Line::Out(s) => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{s}");
                let _ = o.flush();
            }
            Line::Err(s) => eprintln!("{s}"),
            Line::Exit(code) => return Ok(code),
            Line::Other => {
                other.push(line);
                if other.len() > 20 {
                    other.remove(0);
                }
            }
        }
    }
    bail!(
        "the arm64 machine stopped before the app's exit code came; its console ended with: {}",
        other.join(" | ")
    )
}

/// One console line, as far as the app is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Out(&'a str),
    Err(&'a str),
    Exit(i32),
    Other,
}

fn classify(line: &str) -> Line<'_> {
    // A kernel message may end up in front of a line: look for the prefix
    // anywhere, not only at the start.
    let after = |p: &str| line.find(p).map(|i| &line[i + p.len()..]);
    if let Some(s) = after(OUT) {
        Line::Out(s)
    } else if let Some(s) = after(ERR) {
        Line::Err(s)
    } else if let Some(code) = after(EXIT).and_then(|c| c.trim().parse().ok()) {
        Line::Exit(code)
    } else {
        Line::Other
    }
}

/// What `cargo xtask test --arch aarch64` checks of this command: run the
/// build tool itself as a user would and compare what comes out.
pub fn self_test() -> Result<crate::testing::Counts> {
    let me = std::env::current_exe().context("the build tool's own path")?;
    let dir = crate::project_root().join("target/arm64-run-test");
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data.bin");
    let (bytes, sum) = vessel_tests::lazy_test_bytes(64 * 1024);
    std::fs::write(&data, bytes)?;
    let lazy = format!("data={}", data.display());
    let cases: [(&str, Vec<&str>, i32, String); 3] = [
        (
            "run-hello",
            vec!["hello", "--arch", "aarch64", "--", "a", "--b"],
            0,
            "Hello from a Vessel VM on aarch64!\nargs: [\"a\", \"--b\"]\n".to_string(),
        ),
        (
            "run-exit-code",
            vec!["selftest", "--arch", "aarch64", "--", "exit", "42"],
            42,
            String::new(),
        ),
        (
            "run-lazy",
            vec![
                // The build tool's own flags after a launcher flag.
                "lazyscan",
                "--lazy",
                &lazy,
                "--arch",
                "aarch64",
                "--qemu-cpu",
                "max,sve=on,sve-max-vq=4",
            ],
            0,
            format!("\n{sum}\n"),
        ),
    ];
    let mut counts = crate::testing::Counts::default();
    for (name, args, want_code, want_out) in cases {
        let out = std::process::Command::new(&me)
            .env("VESSEL_RUN_LIMIT_S", "400")
            .arg("run")
            .args(&args)
            .output()
            .with_context(|| format!("running {}", me.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // hello's whole output; lazyscan's last line (the sum).
        let ok = out.status.code() == Some(want_code)
            && (stdout == want_out || (want_out.starts_with('\n') && stdout.ends_with(&want_out)));
        if ok {
            counts.passed += 1;
            eprintln!("  ok    {name}");
        } else {
            counts.failed += 1;
            eprintln!(
                "  FAIL  {name}: exit {:?} (want {want_code}), stdout {stdout:?} (want {want_out:?}), stderr {:?}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_sorted_out() {
        assert_eq!(classify("VESSEL-OUT hello"), Line::Out("hello"));
        assert_eq!(classify("VESSEL-ERR oops"), Line::Err("oops"));
        assert_eq!(classify("[ 1.0] rcu: x VESSEL-OUT late"), Line::Out("late"));
        assert_eq!(classify("VESSEL-RUN-EXIT rc=42"), Line::Exit(42));
        assert_eq!(classify("VESSEL-RUN-EXIT rc=x"), Line::Other);
        assert_eq!(classify("[    0.000] Booting Linux"), Line::Other);
    }

    #[test]
    fn lazy_files_are_copied_in_and_the_flag_rewritten() {
        let dir = std::env::temp_dir().join(format!("xtask-run-lazy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("in.bin");
        std::fs::write(&f, b"abc").unwrap();
        let fs = f.display().to_string();
        let args: Vec<String> = [
            "--lazy",
            &format!("a={fs}"),
            &format!("--lazy=b={fs}:1M"),
            "--lazy",
            "c=/no/such/file",
            "--",
            "--lazy",
            &format!("d={fs}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (out, files) = share_lazy_files(&args);
        assert_eq!(
            out,
            [
                "--lazy",
                "a=/files/0/in.bin",
                "--lazy=b=/files/1/in.bin:1M",
                "--lazy",
                "c=/no/such/file",
                "--",
                "--lazy",
                &format!("d={fs}"),
            ]
        );
        assert_eq!(files.len(), 2);
        assert_eq!(files[1], ("files/1/in.bin".to_string(), f.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
