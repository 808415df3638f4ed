//! The command line: launcher flags shared by `vessel run` and packed apps,
//! the `vessel` subcommands, and the value parsers (one-line errors).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use vmm::sve::SveRequest;

/// Flags that shape the VM, shared by `vessel run` and packed apps.
#[derive(Args, Debug, Clone)]
pub struct LaunchOpts {
    /// Guest RAM, in bytes or with a K/M/G suffix.
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = parse_size)]
    pub mem: u64,
    /// Number of vCPUs, each on its own thread (default: what the app's
    /// `entry!(main, cpus = N)` names, else 1).
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    /// End the guest after this many seconds (exit code 124).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Set an environment variable for the guest: KEY=VALUE, or KEY to pass
    /// the launcher's own value. The guest sees nothing else of the host's
    /// environment. Repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Stack size of each vCPU, in bytes or with a K/M/G suffix.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    pub stack: u64,
    /// arm64: give the guest SVE with at most this vector length in bits (a
    /// multiple of 128 in 128..=2048 that the host offers).
    #[arg(long, value_name = "BITS", value_parser = parse_sve_vl, conflicts_with = "sve")]
    pub sve_vl: Option<SveRequest>,
    /// arm64: `max` gives the guest SVE with the largest vector length the
    /// host offers; `off` turns SVE off even when the app's header asks for it.
    #[arg(long, value_name = "max|off", value_parser = parse_sve_max)]
    pub sve: Option<SveRequest>,
    /// Print each vCPU's vector registers when the guest ends (arm64: Z0-31,
    /// P0-15, FFR; x86_64: general-purpose registers).
    #[arg(long)]
    pub dump_regs: bool,
    /// Map a host file into guest memory, read page by page on first touch;
    /// the guest finds it by NAME. SIZE (optional, >= the file's size) makes
    /// the region larger; bytes past the end of the file read as zero.
    /// Repeatable.
    #[arg(long = "lazy", value_name = "NAME=FILE[:SIZE]", value_parser = lazy_parser())]
    pub lazy: Vec<vmm::lazy::LazySpec>,
    /// Sleep this many milliseconds per fetched page of a lazy region
    /// (emulates remote storage).
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_ms)]
    pub lazy_latency: f64,
    /// Do not offer async page faults: lazy-region faults stall the vCPU.
    #[arg(long)]
    pub no_async_pf: bool,
    /// Run the launcher without its seccomp allow-lists: for debugging the
    /// launcher only (the guest then has one wall less); says so on stderr.
    #[arg(long)]
    pub no_seccomp: bool,
    /// Let the guest use a host directory: HOST seen as GUEST (default: `/`
    /// and HOST's name); `:ro` refuses every change beneath it. Paths
    /// resolve beneath it only. Repeatable.
    #[arg(long = "dir", value_name = "HOST[:GUEST][:ro]", value_parser = dir_parser())]
    pub dir: Vec<vmm::fs::DirSpec>,
    /// Most bytes the guest may write to stdout, stderr and files together;
    /// past it the VM ends with exit code 73.
    #[arg(long, value_name = "SIZE", default_value = "16G", value_parser = parse_size)]
    pub max_output: u64,
    /// Sleep this many milliseconds per I/O request (emulates remote storage).
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_ms)]
    pub io_latency: f64,
    /// Most host files the guest has open at once (1..=1024); past it an
    /// open fails with TooManyHandles.
    #[arg(long, value_name = "N", default_value_t = vmm::limits::MAX_OPEN_FILES,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(vmm::limits::MAX_OPEN_FILES)))]
    pub max_open_files: u32,
    /// Most I/O requests of one ring on the launcher's threads at once
    /// (1..=65536); more wait in the ring.
    #[arg(long, value_name = "N", default_value_t = vmm::limits::DEFAULT_PENDING_IO,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(vmm::limits::MAX_PENDING_IO)))]
    pub max_pending_io: u32,
    /// Threads serving lazy-region faults (1..=64).
    #[arg(long, value_name = "N", default_value_t = vmm::limits::MAX_FETCH_THREADS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(vmm::limits::MAX_FETCH_THREADS)))]
    pub fetch_threads: u32,
    /// Most CPU seconds the launcher (guest included, all vCPUs together)
    /// may use; then the VM ends with exit code 152.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_cpu: Option<u64>,
    /// When the guest ends, print what the run did on stderr: exits by
    /// reason, hypercalls, async page faults, pages fetched, bytes, times.
    #[arg(long)]
    pub stats: bool,
    /// Serve the GDB remote protocol (x86_64): a port on loopback (1234,
    /// 127.0.0.1:1234) or a Unix socket path. The guest starts stopped at
    /// its entry; load the guest ELF's symbols in gdb (README "Debugging").
    #[arg(long, value_name = "ADDR", value_parser = parse_gdb)]
    pub gdb: Option<vmm::debug::GdbAddr>,
    /// When the guest crashes, write an ELF core file (memory, every vCPU's
    /// registers) into DIR, named APP-SECONDS-PID.core; open it with
    /// `gdb GUEST-ELF CORE` (x86_64).
    #[arg(long, value_name = "DIR")]
    pub core_dump: Option<PathBuf>,
    /// Write the same report as JSON to FILE (schema in vmm/README.md).
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<std::path::PathBuf>,
}

/// `--dir` takes the OS string as given: HOST is used byte for byte.
fn dir_parser() -> impl TypedValueParser<Value = vmm::fs::DirSpec> {
    OsStringValueParser::new().try_map(|s| vmm::fs::DirSpec::parse(&s).map_err(|e| e.to_string()))
}

/// `--lazy` takes the OS string as given: FILE is used byte for byte.
fn lazy_parser() -> impl TypedValueParser<Value = vmm::lazy::LazySpec> {
    OsStringValueParser::new().try_map(|s| vmm::lazy::LazySpec::parse(&s, parse_size))
}

fn parse_gdb(s: &str) -> Result<vmm::debug::GdbAddr, String> {
    vmm::debug::GdbAddr::parse(s).map_err(|e| e.to_string())
}

fn parse_ms(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e7)
        .ok_or_else(|| format!("`{s}` is not a number of milliseconds"))
}

#[derive(Parser, Debug)]
#[command(
    name = "vessel",
    version,
    about = "Run a Rust app as its own KVM virtual machine",
    after_help = "Exit codes: the app's own code; 101 app panic; 124 timeout; 125 launcher error; \
                  126 guest crash (exception, triple fault); 134 app abort; 73 --max-output reached."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a guest ELF (an app built for the bare-metal target), or the guest
    /// inside a packed app.
    #[command(
        after_help = "Launcher flags come first. Before `--`, every `--flag` must be a \
                            launcher flag (a mistyped one is an error naming the closest); the \
                            app's own flags go after `--`."
    )]
    Run {
        #[command(flatten)]
        opts: LaunchOpts,
        /// The guest ELF, or a packed app.
        guest: PathBuf,
        /// Arguments for the app.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Print the KVM capabilities Vessel relies on or could use.
    Caps,
    /// Pack a guest ELF with this launcher into one executable.
    Pack {
        /// The guest ELF.
        guest: PathBuf,
        /// Where to write the executable.
        #[arg(short, long)]
        output: PathBuf,
        /// Pack this launcher executable instead of this one (e.g. an
        /// aarch64 `vessel` built for aarch64-unknown-linux-musl).
        #[arg(long, value_name = "PATH")]
        launcher: Option<PathBuf>,
    },
    /// Write a packed app as an OCI image (one layer holding the app at
    /// /APP, its entrypoint): a layout directory, or a .tar of one that
    /// `ctr image import` and `podman load` take.
    Image {
        /// The packed app (target/vessel/APP).
        app: PathBuf,
        /// The image layout directory, or FILE.tar.
        #[arg(short, long)]
        output: PathBuf,
        /// The image's name (default localhost/vessel/APP:latest).
        #[arg(long, value_name = "NAME")]
        tag: Option<String>,
    },
    /// Serve a library guest's exported functions over HTTP: `POST /fn/NAME`
    /// runs NAME in a VM made from a snapshot taken after the app
    /// initialised (`GET /metrics`, `GET /healthz` too). SIGTERM stops it
    /// gracefully.
    Serve(crate::serve::ServeOpts),
    /// Snapshot a library guest (one that calls `guest_rt::export::serve`)
    /// to a file, or with --check restore a snapshot file and save it again.
    Snapshot {
        #[command(flatten)]
        opts: LaunchOpts,
        /// The guest ELF or a packed app; with --check, a snapshot file.
        input: PathBuf,
        /// Write the snapshot to this file.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Call this exported function (no arguments) before the snapshot
        /// is taken, printing its result. Repeatable.
        #[arg(long = "call", value_name = "NAME")]
        calls: Vec<String>,
        /// INPUT is a snapshot file: restore it into a new VM (refused if
        /// it is from another ABI, architecture, CPU feature set or SVE
        /// length set; --sve-vl/--sve ask for another set), and save it
        /// again; without --call the two files must be bit-identical.
        #[arg(long)]
        check: bool,
    },
}

/// The command line of a packed app.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Vessel app: runs in its own KVM virtual machine",
    after_help = "Launcher flags come first; everything after `--`, or from the first argument that is \
                  not a launcher flag, goes to the app. Before `--`, every `--flag` must be a launcher \
                  flag (a mistyped one is an error naming the closest): the app's own flags go after \
                  `--`.\nExit codes: the app's own code; 101 app panic; \
                  124 timeout; 125 launcher error; 126 guest crash; 134 app abort."
)]
pub struct PackedCli {
    #[command(flatten)]
    pub opts: LaunchOpts,
    /// Arguments for the app.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size (use bytes or a K/M/G suffix, e.g. 256M)"))
}

fn parse_sve_vl(s: &str) -> Result<SveRequest, String> {
    match s.parse::<u32>() {
        Ok(bits) => Ok(SveRequest::Bits(bits)),
        Err(_) => Err(format!(
            "`{s}` is not a vector length in bits (a multiple of 128 in 128..=2048; or use --sve max)"
        )),
    }
}

fn parse_sve_max(s: &str) -> Result<SveRequest, String> {
    match s {
        "max" => Ok(SveRequest::Max),
        "off" => Ok(SveRequest::Off),
        _ => Err(format!(
            "`{s}`: --sve takes `max` or `off` (use --sve-vl BITS for a length)"
        )),
    }
}

pub fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a positive number of seconds"))
}
