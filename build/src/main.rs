//! `cargo xtask`: Vessel's build tool.
//!
//! ```text
//! cargo xtask setup [--arch A]        install what the build needs (idempotent)
//! cargo xtask build [--arch A] [APP..] build the launcher and the apps (default: all), pack target/vessel/<app>
//! cargo xtask run APP [FLAGS] [-- ARGS]  setup + build APP, then run target/vessel/APP FLAGS -- ARGS
//! cargo xtask pack PATH [-o OUT]     build the std crate at PATH as a Vessel app (target/vessel/<bin>)
//! cargo xtask lint                    rustfmt and clippy (-D warnings), host and both guest targets; cargo doc
//! cargo xtask doc                     the API documentation (vmm, vessel-abi, guest-rt)
//! cargo xtask test [--arch A]         lint, then every test: unit, x86_64 integration, arm64 suite
//! cargo xtask bench [--compare OLD.json]  every group below (or with --compare
//!                                     alone: compare results.json with OLD.json)
//! cargo xtask bench boot [--runs N]   boot time of a packed app vs a raw KVM program
//! cargo xtask bench apf [--runs N]    async page faults vs synchronous; no-fault cost
//! cargo xtask bench clock [--runs N]  the guest's clock against the host's
//! cargo xtask bench vector [--runs N] every kernel in the guest vs natively, per ISA
//! cargo xtask bench alloc [--runs N]  allocation-heavy kernels in the guest vs natively
//! cargo xtask bench io [--runs N]     the I/O ring: exits, round trip, throughput, overlap
//! cargo xtask bench lines NAME --guest APP --native CMD...  your own kernel, the same way
//! cargo xtask bench embed [--runs N]  sandbox calls, restores, creation vs raw exits / raw VMs
//! cargo xtask fuzz [TARGET..|--all] [--minutes N|--seconds N] [--runs R]  mutate the fuzz corpora (vmm/fuzz)
//! cargo xtask bench std [--runs N]    std programs: rayon on 2 vCPUs vs 2 native threads; std start-up vs no_std hello
//! cargo xtask bench serve [--runs N]  `vessel serve` under wrk, each lifecycle vs a native handler
//! cargo xtask soak [--vms N]          N VMs (default 10,000) back to back through the library and as processes: fds, threads, maps, RSS flat
//! ```
//! Benchmarks record their medians in target/bench/results.json and one SVG
//! per group in target/bench/ (schema: README.md, "Performance").
//! A is `x86_64`, `aarch64` or `all` (the default for `test`).
//!
//! `cargo xtask test` ends with `vessel-tests: N passed, M failed, K
//! skipped`. With `VESSEL_REQUIRE_KVM=1` a test that would skip fails
//! instead; `VESSEL_LINT=0` leaves out the lint step.
//!
//! `--help` works everywhere and does nothing else. An error is one line
//! (`xtask: error: ...`); `--backtrace` adds where it came from.

mod arm64;
mod bench;
mod doc;
mod fuzz;
mod guests;
mod lint;
mod setup;
mod soak;
mod stdapps;
mod testing;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use xshell::Shell;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Vessel's build tool",
    after_help = "An error is one line; --backtrace adds where in the build tool it came from."
)]
struct Cli {
    /// On an error, also print the backtrace (RUST_BACKTRACE alone does not).
    #[arg(long, global = true)]
    backtrace: bool,
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
    /// Build the launcher and the apps, packed into target/vessel/<app>
    ///
    /// An app that does not compile does not stop the others: they are
    /// packed, then the build fails naming it.
    Build {
        #[arg(long, value_enum, default_value_t = Arches::X86_64)]
        arch: Arches,
        /// Apps to build (folders of apps/); none means every app.
        apps: Vec<String>,
    },
    /// Set up, build APP and the launcher, then run target/vessel/APP
    ///
    /// Everything after APP goes to the packed app unchanged: launcher
    /// flags first, then `--` and the app's own arguments. Exits with the
    /// app's exit code.
    #[command(after_help = "Example: cargo xtask run hello --mem 64M -- world\n\
                            Example: cargo xtask run vector --arch aarch64 --sve-vl 512 -- --isa sve\n\
                            The launcher flags are in target/vessel/APP --help (after a build).")]
    Run {
        /// The app (a folder of apps/).
        app: String,
        /// `aarch64` boots the emulated arm64 machine the test suite uses
        /// (QEMU with Debian's arm64 kernel and real arm64 KVM inside,
        /// installed on first use) and runs the app there.
        #[arg(long, value_enum, default_value_t = Arch::X86_64)]
        arch: Arch,
        /// aarch64: QEMU's CPU model, e.g. `max,sve=on,sve-max-vq=4` (SVE
        /// up to 512 bits).
        #[arg(long, value_name = "MODEL", default_value = arm64::run::DEFAULT_CPU)]
        qemu_cpu: String,
        /// Launcher flags, then `--` and the app's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build an ordinary `std` crate from anywhere as a Vessel app, packed
    /// into target/vessel/<its binary's name> (or OUT)
    ///
    /// The crate is not changed and names nothing of Vessel: it is built
    /// for the guest target with Rust's std and linked with Vessel's C
    /// library (guest-rt/libc). It must have one binary.
    #[command(
        after_help = "Example: cargo xtask pack ~/src/mytool && target/vessel/mytool --dir data -- data/in.json"
    )]
    Pack {
        /// The crate's folder (or its Cargo.toml).
        path: std::path::PathBuf,
        /// Where to write the packed executable.
        #[arg(short, long, value_name = "OUT")]
        out: Option<std::path::PathBuf>,
    },
    /// rustfmt and clippy with -D warnings, for the host and both guest targets
    Lint,
    /// The API documentation: vmm, vessel-abi, and guest-rt for both guest targets
    Doc,
    /// Lint, then every test: unit, x86_64 integration, arm64 suite
    Test {
        #[arg(long, value_enum, default_value_t = Arches::All)]
        arch: Arches,
    },
    /// Benchmarks: every group, or one (ratios are printed and recorded in
    /// target/bench/results.json, never asserted)
    Bench {
        #[command(subcommand)]
        group: Option<Bench>,
        /// Print the change per case from OLD.json to target/bench/results.json
        /// (after running GROUP; without a GROUP nothing is run)
        #[arg(long, value_name = "OLD.json", global = true)]
        compare: Option<std::path::PathBuf>,
    },
    /// Fuzz the launcher's guest-facing code: mutate each target's seed
    /// corpus (vmm/fuzz/corpus/TARGET) for a while; a panic saves the
    /// input to vmm/fuzz/crashes/ and fails
    Fuzz {
        /// Targets: hypercall, ring, path, elf, boot_info, snapshot (none: all)
        targets: Vec<String>,
        /// Every target
        #[arg(long)]
        all: bool,
        /// Minutes per target
        #[arg(long, conflicts_with = "seconds")]
        minutes: Option<u64>,
        /// Seconds per target (default 10)
        #[arg(long)]
        seconds: Option<u64>,
        /// Stop a target after this many runs (before its time is up)
        #[arg(long)]
        runs: Option<u64>,
        /// The mutator's seed
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
    },
    /// The soak at full length: N VMs back to back in one process through
    /// the library API, then N launcher processes; open fds, threads,
    /// mappings and RSS must stay flat (tests/soak.rs, which the test
    /// command runs with 500)
    Soak {
        /// VMs of each kind
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
        vms: usize,
    },
}

/// Default runs of each benchmark group.
const BOOT_RUNS: usize = 40;
const APF_RUNS: usize = 5;
const CLOCK_RUNS: usize = 20;
const VECTOR_RUNS: usize = 5;
const IO_RUNS: usize = 5;
const EMBED_RUNS: usize = 15;
const SMP_RUNS: usize = 5;
const SERVE_RUNS: usize = 3;
const ALLOC_RUNS: usize = 3;
const STD_RUNS: usize = 5;

#[derive(Subcommand)]
enum Bench {
    /// Boot time of a packed app vs a raw KVM program
    Boot {
        #[arg(long, default_value_t = BOOT_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// Async page faults vs synchronous; the no-fault cost
    Apf {
        #[arg(long, default_value_t = APF_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// The guest's clock against the host's over the same interval
    Clock {
        #[arg(long, default_value_t = CLOCK_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// The I/O ring: exits saved, round trip, throughput vs native, async overlap
    Io {
        #[arg(long, default_value_t = IO_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// Sandbox calls, restores and creation against a raw exit and a raw VM
    Embed {
        #[arg(long, default_value_t = EMBED_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// Every vector kernel (Rust and assembly, each ISA) in the guest vs natively
    Vector {
        #[arg(long, default_value_t = VECTOR_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// Allocation-heavy kernels (BTreeMap of Strings, Vec churn) in the guest vs natively
    Alloc {
        #[arg(long, default_value_t = ALLOC_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// Your own kernel: GUEST (a packed app) and a NATIVE command both print
    /// `bench ...` lines (guest-rt/README.md); recorded as group NAME
    Lines {
        name: String,
        /// The packed app, run as `GUEST -- --bench`
        #[arg(long)]
        guest: std::path::PathBuf,
        /// The native command and its arguments (the rest of the line)
        #[arg(long, num_args = 1.., allow_hyphen_values = true, required = true)]
        native: Vec<String>,
        #[arg(long, default_value_t = VECTOR_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// `vessel serve` under wrk: each lifecycle vs the handler compiled natively
    Serve {
        #[arg(long, default_value_t = SERVE_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// std programs: rayon on 2 vCPUs vs 2 native threads; std start-up vs the no_std hello
    Std {
        #[arg(long, default_value_t = STD_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
    /// Parallel speed-up on 2 vCPUs vs 1 (native threads as baseline); boot with 4 vCPUs vs 1
    Smp {
        #[arg(long, default_value_t = SMP_RUNS, value_parser = at_least_one)]
        runs: usize,
    },
}

impl Bench {
    /// Every group with its default runs, for `cargo xtask bench`.
    fn all() -> Vec<Bench> {
        vec![
            Bench::Boot { runs: BOOT_RUNS },
            Bench::Apf { runs: APF_RUNS },
            Bench::Clock { runs: CLOCK_RUNS },
            Bench::Vector { runs: VECTOR_RUNS },
            Bench::Alloc { runs: ALLOC_RUNS },
            Bench::Io { runs: IO_RUNS },
            Bench::Embed { runs: EMBED_RUNS },
            Bench::Smp { runs: SMP_RUNS },
            Bench::Serve { runs: SERVE_RUNS },
            Bench::Std { runs: STD_RUNS },
        ]
    }

    fn run(self, sh: &Shell) -> Result<()> {
        match self {
            Bench::Boot { runs } => bench::boot(sh, runs),
            Bench::Apf { runs } => bench::apf(sh, runs),
            Bench::Clock { runs } => bench::clock(sh, runs),
            Bench::Vector { runs } => bench::vector(sh, runs),
            Bench::Alloc { runs } => bench::alloc(sh, runs),
            Bench::Io { runs } => bench::io(sh, runs),
            Bench::Lines {
                name,
                guest,
                native,
                runs,
            } => bench::lines(&name, &guest, &native, runs),
            Bench::Embed { runs } => bench::embed(sh, runs),
            Bench::Smp { runs } => bench::smp(sh, runs),
            Bench::Serve { runs } => bench::serve(sh, runs),
            Bench::Std { runs } => bench::std_apps(sh, runs),
        }
    }
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

/// One architecture Vessel builds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// x86_64: guests run on this machine's /dev/kvm.
    #[value(name = "x86_64")]
    X86_64,
    /// aarch64: guests run in the emulated arm64 machine.
    #[value(name = "aarch64")]
    Aarch64,
}

impl Arch {
    /// `x86_64` or `aarch64`, as `--arch` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
    /// The target guests are built for. Both have hardware FP/SIMD; the
    /// x86_64 one is a Linux target used bare (no libc, guest-rt's linker
    /// script and entry; see guest-rt/README.md and .cargo/config.toml).
    pub fn guest_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-none",
        }
    }
    /// The target std programs are built for (Rust ships a std for it).
    pub fn std_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
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

fn main() -> ExitCode {
    let cli = parse();
    let backtrace = cli.backtrace;
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {}", report(&e, backtrace));
            ExitCode::FAILURE
        }
    }
}

/// An error as one line (its causes joined by `: `), or with `--backtrace`
/// as anyhow's multi-line report with the backtrace it captured.
fn report(e: &anyhow::Error, backtrace: bool) -> String {
    if backtrace {
        format!("{e:?}")
    } else {
        format!("{e:#}").replace('\n', " ")
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.cmd {
        Cmd::Setup { arch } => {
            for arch in arch.list() {
                setup::setup(&sh, arch)?;
                let mut done = setup::checked(arch);
                if arch == Arch::Aarch64 {
                    arm64::setup(&sh)?;
                    done = format!("{done}; {}", arm64::checked());
                }
                eprintln!("xtask: setup ({}): {done}: nothing else to do", arch.name());
            }
        }
        Cmd::Build { arch, apps } => {
            let apps = guests::select(&apps)?;
            for arch in arch.list() {
                setup::setup(&sh, arch)?;
                let built = guests::build(&sh, arch, &apps)?;
                built.check()?;
                eprintln!(
                    "xtask: packed {} in {}",
                    built.packed.join(", "),
                    guests::packed_dir(arch).display()
                );
            }
        }
        Cmd::Run {
            app,
            arch,
            qemu_cpu,
            args,
        } => run(&sh, &app, arch, &qemu_cpu, args)?,
        Cmd::Pack { path, out } => {
            setup::setup(&sh, Arch::X86_64)?;
            let elf = stdapps::compile_crate(Arch::X86_64, &path)?;
            let name = elf.file_name().context("the built binary has a name")?;
            let out = out.unwrap_or_else(|| guests::packed_dir(Arch::X86_64).join(name));
            sh.create_dir(guests::packed_dir(Arch::X86_64))?;
            guests::pack(&sh, Arch::X86_64, &elf, &out)?;
            eprintln!("xtask: packed {}", out.display());
        }
        Cmd::Lint => lint::lint(&sh)?,
        Cmd::Doc => {
            let failed = doc::build(&sh, false)?;
            if !failed.is_empty() {
                bail!("cargo doc failed for: {}", failed.join(", "));
            }
            for page in doc::index_pages() {
                eprintln!("xtask: {}", page.display());
            }
        }
        Cmd::Test { arch } => test(&sh, &arch.list())?,
        Cmd::Fuzz {
            targets,
            all,
            minutes,
            seconds,
            runs,
            seed,
        } => {
            let secs = minutes.map_or(seconds.unwrap_or(10), |m| m * 60);
            fuzz::run(&sh, &targets, all, secs, runs, seed)?;
        }
        Cmd::Soak { vms } => soak::run(&sh, vms)?,
        Cmd::Bench { group, compare } => {
            let groups = match (group, &compare) {
                (Some(g), _) => vec![g],
                (None, Some(_)) => Vec::new(),
                (None, None) => Bench::all(),
            };
            for g in groups {
                g.run(&sh)?;
            }
            if let Some(old) = compare {
                bench::results::compare(&old)?;
            }
        }
    }
    Ok(())
}

/// clap drops a `--` that comes before the first trailing argument
/// (`run hello -- --flag` gives `["--flag"]`), but the packed app needs it
/// to tell its own flags from the launcher's: put it back when the command
/// line had one more `--` than `args`.
fn keep_separator(raw: &[String], mut args: Vec<String>) -> Vec<String> {
    let count = |v: &[String]| v.iter().filter(|a| *a == "--").count();
    let after_run = raw
        .iter()
        .position(|a| a == "run")
        .map_or(&raw[..0], |i| &raw[i + 1..]);
    if count(after_run) > count(&args) {
        args.insert(0, "--".into());
    }
    args
}

/// `run`'s own flags found among the launcher flags.
#[derive(Debug, Default, PartialEq, Eq)]
struct OwnFlags {
    arch: Option<Arch>,
    qemu_cpu: Option<String>,
}

/// clap hands everything after the first flag it does not know to the app
/// (`run hello --mem 64M --arch aarch64`): take `--arch` and `--qemu-cpu`
/// back out of the words before `--`, so they work in any order there.
fn take_own_flags(args: Vec<String>) -> Result<(Vec<String>, OwnFlags)> {
    let mut own = OwnFlags::default();
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.into_iter();
    while let Some(w) = words.next() {
        if w == "--" {
            out.push(w);
            out.extend(words.by_ref());
            break;
        }
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (w.clone(), None),
        };
        if name != "--arch" && name != "--qemu-cpu" {
            out.push(w);
            continue;
        }
        let Some(value) = inline.or_else(|| words.next()) else {
            bail!("{name} needs a value");
        };
        if name == "--arch" {
            let arch = Arch::from_str(&value, false)
                .map_err(|_| anyhow::anyhow!("--arch `{value}`: want x86_64 or aarch64"))?;
            own.arch = Some(arch);
        } else {
            own.qemu_cpu = Some(value);
        }
    }
    Ok((out, own))
}

/// Set up, build one app and the launcher, and run the packed app (on
/// aarch64: in the emulated arm64 machine); exits with its status.
fn run(sh: &Shell, app: &str, arch: Arch, cpu: &str, args: Vec<String>) -> Result<()> {
    let apps = guests::select(&[app.to_string()])?;
    let raw: Vec<String> = std::env::args().collect();
    let (args, own) = take_own_flags(keep_separator(&raw, args))?;
    let arch = own.arch.unwrap_or(arch);
    let cpu = own.qemu_cpu.as_deref().unwrap_or(cpu);
    if arch == Arch::Aarch64 {
        std::process::exit(arm64::run::run(sh, app, &args, cpu)?);
    }
    setup::setup(sh, Arch::X86_64)?;
    guests::build(sh, Arch::X86_64, &apps)?.check()?;
    let exe = guests::packed(Arch::X86_64, app);
    let status = std::process::Command::new(&exe)
        .args(&args)
        .status()
        .map_err(|e| anyhow::anyhow!("running {}: {e}", exe.display()))?;
    std::process::exit(exit_code(status));
}

/// The app's exit code; killed by a signal, 128 + the signal (the shell's way).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse_from(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(args.iter().copied()))
    }

    #[test]
    fn help_is_help_everywhere() {
        // Help is a clap "error" of kind DisplayHelp: main never dispatches,
        // so nothing is set up or built.
        for args in [
            &["--help"][..],
            &["build", "--help"],
            &["run", "--help"],
            &["test", "--help"],
            &["bench", "boot", "--help"],
            &["help", "run"],
        ] {
            let e = parse_from(args).err().map(|e| e.kind());
            assert_eq!(e, Some(ErrorKind::DisplayHelp), "{args:?}");
        }
        // Flags the build tool does not know go to the app, --help does not.
        let e = parse_from(&["run", "hello", "--help"])
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::DisplayHelp));
    }

    #[test]
    fn build_takes_app_names() {
        let Cmd::Build { apps, arch } = parse_from(&["build", "hello", "vector"]).unwrap().cmd
        else {
            panic!("not build");
        };
        assert_eq!(apps, ["hello", "vector"]);
        assert!(arch == Arches::X86_64);
        assert!(parse_from(&["build", "--arch", "sparc"]).is_err());
    }

    #[test]
    fn run_passes_launcher_flags_and_the_separator() {
        let raw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let line = raw(&["xtask", "run", "hello", "--", "--flag"]);
        let Cmd::Run { args, .. } = Cli::try_parse_from(&line).unwrap().cmd else {
            panic!("not run");
        };
        assert_eq!(keep_separator(&line, args), ["--", "--flag"]);
        let line = raw(&["xtask", "run", "hello", "--mem", "64M", "--", "world"]);
        let Cmd::Run { args, .. } = Cli::try_parse_from(&line).unwrap().cmd else {
            panic!("not run");
        };
        assert_eq!(keep_separator(&line, args), ["--mem", "64M", "--", "world"]);
        let line = raw(&[
            "xtask",
            "run",
            "hello",
            "--arch",
            "aarch64",
            "--qemu-cpu",
            "max",
            "--sve-vl",
            "256",
            "--",
            "x",
        ]);
        let Cmd::Run {
            args,
            arch,
            qemu_cpu,
            ..
        } = Cli::try_parse_from(&line).unwrap().cmd
        else {
            panic!("not run");
        };
        assert_eq!((arch, qemu_cpu.as_str()), (Arch::Aarch64, "max"));
        assert_eq!(keep_separator(&line, args), ["--sve-vl", "256", "--", "x"]);
        let line = raw(&["xtask", "run", "hello", "world"]);
        assert_eq!(keep_separator(&line, raw(&["world"])), ["world"]);
    }

    #[test]
    fn run_flags_work_after_launcher_flags() {
        let words = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (args, own) = take_own_flags(words(&[
            "--mem",
            "64M",
            "--arch=aarch64",
            "--qemu-cpu",
            "max",
            "--",
            "--arch",
            "x",
        ]))
        .unwrap();
        assert_eq!(args, ["--mem", "64M", "--", "--arch", "x"]);
        assert_eq!(
            own,
            OwnFlags {
                arch: Some(Arch::Aarch64),
                qemu_cpu: Some("max".into())
            }
        );
        assert!(take_own_flags(words(&["--arch", "sparc"])).is_err());
        assert!(take_own_flags(words(&["--qemu-cpu"])).is_err());
        let (args, own) = take_own_flags(words(&["world"])).unwrap();
        assert_eq!((args, own), (words(&["world"]), OwnFlags::default()));
    }

    #[test]
    fn errors_are_one_line_without_a_backtrace() {
        std::env::set_var("RUST_BACKTRACE", "1");
        let e = anyhow::anyhow!("inner\nsecond").context("outer");
        let line = report(&e, false);
        assert_eq!(line, "outer: inner second");
        assert!(report(&e, true).lines().count() > 1);
    }
}
