//! `cargo xtask`: Vessel's build tool.
//!
//! ```text
//! cargo xtask setup [--arch A]        install what the build needs (idempotent)
//! cargo xtask build [--arch A]        build the launcher and every app, pack target/vessel/<app>
//! cargo xtask run APP [-- ARGS]       setup + build, then run target/vessel/APP ARGS
//! cargo xtask lint                    rustfmt and clippy (-D warnings), host and both guest targets
//! cargo xtask test [--arch A]         lint, then every test: unit, x86_64 integration, arm64 suite
//! cargo xtask bench boot [--runs N]   boot time of a packed app vs a raw KVM program
//! cargo xtask bench apf [--runs N]    async page faults vs synchronous; no-fault cost
//! cargo xtask bench clock [--runs N]  the guest's clock against the host's
//! ```
//! A is `x86_64`, `aarch64` or `all` (the default for `test`).
//!
//! `cargo xtask test` ends with `vessel-tests: N passed, M failed, K
//! skipped`. With `VESSEL_REQUIRE_KVM=1` a test that would skip fails
//! instead; `VESSEL_LINT=0` leaves out the lint step.

mod arm64;
mod bench;
mod guests;
mod lint;
mod setup;
mod testing;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use xshell::Shell;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Vessel's build tool"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the build needs (idempotent)
    Setup {
        #[arg(long, value_enum, default_value_t = Arches::X86_64)]
        arch: Arches,
    },
    /// Build the launcher and every app, packed into target/vessel/<app>
    Build {
        #[arg(long, value_enum, default_value_t = Arches::X86_64)]
        arch: Arches,
    },
    /// Set up and build (x86_64), then run target/vessel/APP with ARGS
    Run {
        app: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// rustfmt and clippy with -D warnings, for the host and both guest targets
    Lint,
    /// Lint, then every test: unit, x86_64 integration, arm64 suite
    Test {
        #[arg(long, value_enum, default_value_t = Arches::All)]
        arch: Arches,
    },
    /// Benchmarks (ratios are printed, never asserted)
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// Boot time of a packed app vs a raw KVM program
    Boot {
        #[arg(long, default_value_t = 40, value_parser = at_least_one)]
        runs: usize,
    },
    /// Async page faults vs synchronous; the no-fault cost
    Apf {
        #[arg(long, default_value_t = 5, value_parser = at_least_one)]
        runs: usize,
    },
    /// The guest's clock against the host's over the same interval
    Clock {
        #[arg(long, default_value_t = 20, value_parser = at_least_one)]
        runs: usize,
    },
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a positive number of runs")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Arches {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "aarch64")]
    Aarch64,
    #[value(name = "all")]
    All,
}

impl Arches {
    fn list(self) -> Vec<Arch> {
        match self {
            Arches::X86_64 => vec![Arch::X86_64],
            Arches::Aarch64 => vec![Arch::Aarch64],
            Arches::All => vec![Arch::X86_64, Arch::Aarch64],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The target guests are built for. Both have hardware FP/SIMD; the
    /// x86_64 one is a Linux target used bare (no libc, guest-rt's linker
    /// script and entry; see guest-rt/README.md and .cargo/config.toml).
    pub fn guest_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
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
}

/// Parse the command line; a usage error is one line (help is printed whole).
fn parse() -> Cli {
    Cli::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind;
        if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            e.exit();
        }
        // clap's message, without its usage and hint lines, on one line.
        let text = e.to_string();
        let mut msg: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
            .collect();
        if msg.is_empty() {
            msg.push("error: bad arguments");
        }
        eprintln!("{} (see `cargo xtask --help`)", msg.join(" "));
        std::process::exit(2)
    })
}

fn main() -> Result<()> {
    let cli = parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.cmd {
        Cmd::Setup { arch } => {
            for arch in arch.list() {
                setup::setup(&sh, arch)?;
                if arch == Arch::Aarch64 {
                    arm64::setup(&sh)?;
                }
            }
        }
        Cmd::Build { arch } => {
            for arch in arch.list() {
                setup::setup(&sh, arch)?;
                guests::build_all(&sh, arch)?;
            }
        }
        Cmd::Run { app, args } => run(&sh, &app, &args)?,
        Cmd::Lint => lint::lint(&sh)?,
        Cmd::Test { arch } => test(&sh, &arch.list())?,
        Cmd::Bench(Bench::Boot { runs }) => bench::boot(&sh, runs)?,
        Cmd::Bench(Bench::Apf { runs }) => bench::apf(&sh, runs)?,
        Cmd::Bench(Bench::Clock { runs }) => bench::clock(&sh, runs)?,
    }
    Ok(())
}

/// Set up, build, and run one packed x86_64 app; exits with its status.
fn run(sh: &Shell, app: &str, args: &[String]) -> Result<()> {
    setup::setup(sh, Arch::X86_64)?;
    guests::build_all(sh, Arch::X86_64)?;
    let exe = guests::packed(Arch::X86_64, app);
    if !exe.exists() {
        bail!(
            "no app named `{app}` (apps: {})",
            guests::apps()?.join(", ")
        );
    }
    let status = std::process::Command::new(&exe).args(args).status()?;
    std::process::exit(status.code().unwrap_or(1));
}

/// Lint (unless `VESSEL_LINT=0`), then every test for `arches`; one closing
/// line for everything that ran, printed before failing on any failure.
fn test(sh: &Shell, arches: &[Arch]) -> Result<()> {
    let lint_ok = if std::env::var_os("VESSEL_LINT").is_some_and(|v| v == "0") {
        eprintln!("xtask: VESSEL_LINT=0: lint left out");
        true
    } else {
        lint::lint(sh).map_err(|e| eprintln!("xtask: {e}")).is_ok()
    };
    for &arch in arches {
        setup::setup(sh, arch)?;
    }
    let mut counts = testing::Counts::default();
    if arches.contains(&Arch::X86_64) {
        counts += testing::host_tests(sh)?;
    }
    if arches.contains(&Arch::Aarch64) {
        counts += arm64::test(sh)?;
    }
    println!("vessel-tests: {counts}");
    if counts.failed > 0 {
        bail!("{} tests failed", counts.failed);
    }
    if !lint_ok {
        bail!("the tests passed but lint failed (see above)");
    }
    Ok(())
}

pub fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("build/ has a parent")
        .to_path_buf()
}
