//! `vessel`: the command-line launcher, and the front of every packed app.
//!
//! Unpacked: `vessel run GUEST [ARGS]`, `vessel caps`, `vessel pack`.
//! Packed (`target/vessel/APP`): `APP [LAUNCHER FLAGS] [--] [APP ARGS]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use vessel_abi::exit;
use vmm::sve::SveRequest;
use vmm::{Error, VmConfig};

/// Flags that shape the VM, shared by `vessel run` and packed apps.
#[derive(Args, Debug, Clone)]
struct LaunchOpts {
    /// Guest RAM, in bytes or with a K/M/G suffix.
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = parse_size)]
    mem: u64,
    /// Number of vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    cpus: u32,
    /// End the guest after this many seconds (exit code 124).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<Duration>,
    /// Set an environment variable for the guest: KEY=VALUE, or KEY to pass
    /// the launcher's own value. The guest sees nothing else of the host's
    /// environment. Repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Stack size of each vCPU, in bytes or with a K/M/G suffix.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    stack: u64,
    /// arm64: give the guest SVE with at most this vector length in bits (a
    /// multiple of 128 in 128..=2048 that the host offers).
    #[arg(long, value_name = "BITS", value_parser = parse_sve_vl, conflicts_with = "sve")]
    sve_vl: Option<SveRequest>,
    /// arm64: `max` gives the guest SVE with the largest vector length the
    /// host offers; `off` turns SVE off even when the app's header asks for it.
    #[arg(long, value_name = "max|off", value_parser = parse_sve_max)]
    sve: Option<SveRequest>,
    /// Print each vCPU's vector registers when the guest ends (arm64: Z0-31,
    /// P0-15, FFR; x86_64: general-purpose registers).
    #[arg(long)]
    dump_regs: bool,
    /// Map a host file into guest memory, read page by page on first touch;
    /// the guest finds it by NAME. SIZE (optional, >= the file's size) makes
    /// the region larger; bytes past the end of the file read as zero.
    /// Repeatable.
    #[arg(long = "lazy", value_name = "NAME=FILE[:SIZE]", value_parser = parse_lazy)]
    lazy: Vec<vmm::lazy::LazySpec>,
    /// Sleep this many milliseconds per fetched page of a lazy region
    /// (emulates remote storage).
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_ms)]
    lazy_latency: f64,
    /// Do not offer async page faults: lazy-region faults stall the vCPU.
    #[arg(long)]
    no_async_pf: bool,
}

fn parse_lazy(s: &str) -> Result<vmm::lazy::LazySpec, String> {
    vmm::lazy::LazySpec::parse(s, parse_size)
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
                  126 guest crash (exception, triple fault); 134 app abort."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a guest ELF (an app built for the bare-metal target).
    Run {
        #[command(flatten)]
        opts: LaunchOpts,
        /// The guest ELF.
        guest: PathBuf,
        /// Arguments for the app.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
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
}

/// The command line of a packed app.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Vessel app: runs in its own KVM virtual machine",
    after_help = "Launcher flags come first; everything after `--`, or from the first argument that is \
                  not a launcher flag, goes to the app.\nExit codes: the app's own code; 101 app panic; \
                  124 timeout; 125 launcher error; 126 guest crash; 134 app abort."
)]
struct PackedCli {
    #[command(flatten)]
    opts: LaunchOpts,
    /// Arguments for the app.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
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

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a positive number of seconds"))
}

fn guest_env(entries: &[String]) -> Result<Vec<String>, Error> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => Ok(e.clone()),
            Some(_) => Err(Error::Config(format!("--env `{e}` has an empty name"))),
            None => std::env::var(e).map(|v| format!("{e}={v}")).map_err(|_| {
                Error::Config(format!("--env {e}: the launcher's environment has no {e}"))
            }),
        })
        .collect()
}

fn run_guest(
    host: Result<vmm::Host, Error>,
    bytes: Vec<u8>,
    name: &str,
    opts: LaunchOpts,
    args: Vec<String>,
) -> Result<i32, Error> {
    let image = vmm::load_image(bytes, opts.mem)?;
    let mut host = host?;
    let mut all_args = vec![name.to_string()];
    all_args.extend(args);
    let cfg = VmConfig {
        mem_size: opts.mem,
        vcpus: opts.cpus,
        timeout: opts.timeout,
        args: all_args,
        env: guest_env(&opts.env)?,
        stack_size: opts.stack,
        sve: opts.sve_vl.or(opts.sve),
        dump_regs: opts.dump_regs,
        lazy: opts.lazy,
        lazy_latency: Duration::from_secs_f64(opts.lazy_latency / 1e3),
        async_pf: !opts.no_async_pf,
        stdout_line_buffered: vmm::console::stdout_is_terminal(),
    };
    let outcome = vmm::run(&mut host, &image, &cfg, &mut vmm::StdIo)?;
    if let Some(msg) = outcome.message() {
        eprintln!("vessel: {msg}");
    }
    Ok(outcome.exit_code())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

fn read_file(p: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(p).map_err(|source| Error::ReadImage {
        path: p.to_path_buf(),
        source,
    })
}

fn caps(host: vmm::Host) -> Result<i32, Error> {
    let kvm = host.kvm();
    let vm = kvm.create_vm().ok();
    print!(
        "{}",
        vmm::caps::format_table(&vmm::caps::probe(kvm, vm.as_ref()))
    );
    Ok(0)
}

fn pack(guest: &Path, output: &Path, launcher: Option<&Path>) -> Result<i32, Error> {
    let bytes = read_file(guest)?;
    let me = match launcher {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| Error::Io(format!("cannot find the launcher executable: {e}")))?,
    };
    let launcher =
        std::fs::read(&me).map_err(|e| Error::Io(format!("cannot read {}: {e}", me.display())))?;
    // Check the guest now, against the launcher's machine (not the host's),
    // rather than at its first run.
    let machine = vmm::launcher_machine(&launcher)
        .map_err(|e| Error::Other(format!("{}: {e}", me.display())))?;
    vmm::check_image_for(bytes.clone(), machine)?;
    let packed = vmm::pack::pack(&launcher, &bytes)?;
    let tmp = output.with_extension("tmp");
    std::fs::write(&tmp, packed)
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|_| std::fs::rename(&tmp, output))
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", output.display())))?;
    Ok(0)
}

/// Parse with clap, turning usage errors into exit code 125 (help and
/// version still exit 0).
fn parse<T: Parser>(cmd: clap::Command, argv: Vec<String>) -> Result<T, i32> {
    cmd.try_get_matches_from(argv)
        .and_then(|m| T::from_arg_matches(&m))
        .map_err(|e| {
            let _ = e.print();
            if e.use_stderr() {
                exit::LAUNCHER_ERROR
            } else {
                0
            }
        })
}

fn main_inner() -> Result<i32, Error> {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let exe = std::env::current_exe().ok();
    // A failure to open KVM is reported after the command line is parsed,
    // so --help works without KVM.
    let host = vmm::Host::open();
    if let Some(guest) = exe
        .as_deref()
        .map(vmm::pack::embedded_guest)
        .transpose()?
        .flatten()
    {
        let name = exe
            .as_deref()
            .map(file_name)
            .unwrap_or_else(|| "app".into());
        let cmd = PackedCli::command().bin_name(name.clone());
        return match parse::<PackedCli>(cmd, argv) {
            Ok(cli) => run_guest(host, guest, &name, cli.opts, cli.args),
            Err(code) => Ok(code),
        };
    }
    let cli = match parse::<Cli>(Cli::command(), argv) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match cli.cmd {
        Cmd::Run { opts, guest, args } => {
            run_guest(host, read_file(&guest)?, &file_name(&guest), opts, args)
        }
        Cmd::Caps => caps(host?),
        Cmd::Pack {
            guest,
            output,
            launcher,
        } => pack(&guest, &output, launcher.as_deref()),
    }
}

/// Say where the launcher itself crashed (it never should: the guest is
/// checked at every step) before dying of the signal as usual.
extern "C" fn on_crash(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let mut buf = [0u8; 128];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    let hex = |mut v: u64| {
        let mut d = [b'0'; 16];
        for i in (0..16).rev() {
            d[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
        }
        d
    };
    put(b"vessel: launcher crashed (a bug in Vessel): signal 0x");
    put(&hex(sig as u64)[14..]);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    put(b" code 0x");
    put(&hex(code as u32 as u64)[8..]);
    put(b" addr 0x");
    put(&hex(addr));
    put(b"\n");
    // SAFETY: write(2) is async-signal-safe; buf[..n] is initialized.
    unsafe { libc::write(2, buf.as_ptr().cast(), n) };
    // SA_RESETHAND restored the default action: returning re-runs the
    // faulting instruction, which now ends the process with the signal.
}

fn install_crash_report() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a zeroed sigaction is valid; we fill handler and flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_crash as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND;
        // SAFETY: installs a handler that only calls async-signal-safe write(2);
        // std set up an alternate signal stack for this thread (SA_ONSTACK).
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    }
}

fn main() -> ExitCode {
    install_crash_report();
    let code = match main_inner() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vessel: error: {e}");
            exit::LAUNCHER_ERROR
        }
    };
    ExitCode::from(code as u8)
}
