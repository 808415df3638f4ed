//! `cargo xtask`: Vessel's build tool.
//!
//! ```text
//! cargo xtask setup [--arch A]        install what the build needs (idempotent)
//! cargo xtask build [--arch A]        build the launcher and every app, pack target/vessel/<app>
//! cargo xtask run APP [-- ARGS]       setup + build, then run target/vessel/APP ARGS
//! cargo xtask test [--arch A]         every test: unit, x86_64 integration, arm64 suite
//! cargo xtask bench boot              boot time of a packed app vs a raw KVM program
//! cargo xtask bench apf               async page faults vs synchronous; no-fault cost
//! ```
//! A is `x86_64`, `aarch64` or `all` (the default for `test`).

mod arm64;
mod bench;
mod guests;
mod setup;

use anyhow::{bail, Result};
use xshell::Shell;

fn usage() -> ! {
    eprintln!(
        "usage: cargo xtask <setup|build|run|test|bench> ...\n\
         \x20 setup [--arch x86_64|aarch64|all]\n\
         \x20 build [--arch x86_64|aarch64|all]\n\
         \x20 run APP [-- ARGS...]\n\
         \x20 test [--arch x86_64|aarch64|all]\n\
         \x20 bench boot [--runs N]\n\
         \x20 bench apf [--runs N]"
    );
    std::process::exit(2)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn guest_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-none",
            Arch::Aarch64 => "aarch64-unknown-none",
        }
    }
    /// The Linux target the launcher is built for.
    pub fn launcher_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

fn parse_arch(args: &[String], default: &str) -> Result<Vec<Arch>> {
    let v = match args.iter().position(|a| a == "--arch") {
        Some(i) => args.get(i + 1).map(String::as_str).unwrap_or(""),
        None => default,
    };
    Ok(match v {
        "x86_64" => vec![Arch::X86_64],
        "aarch64" => vec![Arch::Aarch64],
        "all" => vec![Arch::X86_64, Arch::Aarch64],
        other => bail!("--arch must be x86_64, aarch64 or all, not `{other}`"),
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let rest = args.get(1..).unwrap_or(&[]).to_vec();
    match args.first().map(String::as_str) {
        Some("setup") => {
            for arch in parse_arch(&rest, "x86_64")? {
                setup::setup(&sh, arch)?;
                if arch == Arch::Aarch64 {
                    arm64::setup(&sh)?;
                }
            }
        }
        Some("build") => {
            for arch in parse_arch(&rest, "x86_64")? {
                guests::build_all(&sh, arch)?;
            }
        }
        Some("run") => {
            let Some(app) = rest.first() else { usage() };
            let app_args: Vec<String> = match rest.iter().position(|a| a == "--") {
                Some(i) => rest[i + 1..].to_vec(),
                None => rest[1..].to_vec(),
            };
            setup::setup(&sh, Arch::X86_64)?;
            guests::build_all(&sh, Arch::X86_64)?;
            let exe = guests::packed(Arch::X86_64, app);
            if !exe.exists() {
                bail!(
                    "no app named `{app}` (apps: {})",
                    guests::apps()?.join(", ")
                );
            }
            let status = std::process::Command::new(&exe).args(&app_args).status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Some("test") => {
            let arches = parse_arch(&rest, "all")?;
            test(&sh, &arches)?;
        }
        Some("bench") => match rest.first().map(String::as_str) {
            Some("boot") => bench::boot(&sh, &rest[1..])?,
            Some("apf") => bench::apf(&sh, &rest[1..])?,
            _ => usage(),
        },
        _ => usage(),
    }
    Ok(())
}

fn test(sh: &Shell, arches: &[Arch]) -> Result<()> {
    for &arch in arches {
        setup::setup(sh, arch)?;
    }
    let mut passed = 0;
    if arches.contains(&Arch::X86_64) {
        guests::build_all(sh, Arch::X86_64)?;
        // The default members: the host crates (guest apps only build for
        // their targets). Unit tests, then integration tests booting guests.
        let mut cargo = std::process::Command::new("cargo");
        cargo
            .args(["test", "--release"])
            .current_dir(project_root())
            .env("VESSEL_DIR", guests::packed_dir(Arch::X86_64))
            .env("VESSEL_BIN", guests::launcher(Arch::X86_64));
        passed += run_counting(cargo)?;
    }
    if arches.contains(&Arch::Aarch64) {
        passed += arm64::test(sh)?;
    }
    // One closing line for everything that ran (each part fails loudly above).
    println!("vessel-tests: {passed} passed, 0 failed");
    Ok(())
}

/// Run a `cargo test` command, echoing its output, and count the tests that
/// passed; a failure or a run with no test at all is an error.
fn run_counting(mut cmd: std::process::Command) -> Result<usize> {
    use std::io::BufRead;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn()?;
    let out = child.stdout.take().expect("stdout is piped");
    let mut passed = 0;
    for line in std::io::BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            // "ok. 21 passed; 0 failed; ..."
            let n = rest
                .split_whitespace()
                .nth(1)
                .and_then(|w| w.parse::<usize>().ok());
            passed += n.unwrap_or(0);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(passed)
}

pub fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("build/ has a parent")
        .to_path_buf()
}
