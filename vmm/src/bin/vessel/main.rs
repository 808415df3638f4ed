//! `vessel`: the command-line launcher, and the front of every packed app.
//!
//! Unpacked: `vessel run GUEST [ARGS]`, `vessel caps`, `vessel pack`,
//! `vessel image`.
//! Packed (`target/vessel/APP`): `APP [LAUNCHER FLAGS] [--] [APP ARGS]`.

mod cli;
mod crash;
mod flags;
mod image;
mod serve;
mod snapshot;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd, LaunchOpts, PackedCli};
use vessel_abi::exit;
use vmm::config::ConfigError;
use vmm::{Error, VmConfig};

fn guest_env(entries: &[String]) -> Result<Vec<String>, Error> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => Ok(e.clone()),
            Some(_) => Err(ConfigError::EnvEmptyName(e.clone()).into()),
            None => std::env::var(e)
                .map(|v| format!("{e}={v}"))
                .map_err(|_| ConfigError::EnvUnset(e.clone()).into()),
        })
        .collect()
}

/// Guest arguments are UTF-8 (the guest's `env::args` are `&str`): an
/// argument that is not is passed with U+FFFD in place of each bad byte.
fn guest_args(name: &str, args: Vec<OsString>) -> Vec<String> {
    std::iter::once(name.to_string())
        .chain(args.into_iter().map(|a| a.to_string_lossy().into_owned()))
        .collect()
}

fn run_guest(
    launched: Instant,
    host: Result<vmm::Host, Error>,
    bytes: Vec<u8>,
    name: &str,
    opts: LaunchOpts,
    args: Vec<OsString>,
) -> Result<i32, Error> {
    // SIGINT/SIGTERM stop the guest like --timeout (buffered output kept).
    vmm::stop::handle_stop_signals()?;
    // Before the ELF (guest-controlled bytes) is parsed; every thread the
    // run starts installs its own, narrower list.
    seccomp(opts.no_seccomp, opts.gdb.is_some())?;
    let image = vmm::load_image(bytes)?;
    let mut host = host?;
    let cpus = match opts.cpus {
        Some(n) => n,
        None => image.default_vcpus().map_err(vmm::Error::from)?,
    };
    warn_if_oversubscribed(cpus);
    let all_args = guest_args(name, args);
    let cfg = VmConfig {
        mem_size: opts.mem,
        vcpus: cpus,
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
        dirs: opts.dir,
        max_output: opts.max_output,
        io_latency: Duration::from_secs_f64(opts.io_latency / 1e3),
        launched: Some(launched),
        limits: vmm::limits::Limits {
            open_files: opts.max_open_files,
            pending_io: opts.max_pending_io,
            fetch_threads: opts.fetch_threads,
        },
        gdb: opts.gdb,
        core_dump: opts.core_dump,
    };
    if let Some(secs) = opts.max_cpu {
        vmm::limits::limit_cpu(secs)?;
    }
    // Opened (created) before the guest runs: an unwritable path is a
    // launcher error, not a lost report after the run.
    let json = opts
        .stats_json
        .as_ref()
        .map(|p| {
            std::fs::File::create(p).map_err(|source| Error::HostIo {
                what: "create",
                path: p.clone(),
                source,
            })
        })
        .transpose()?;
    let (outcome, stats) = vmm::run_with_stats(&mut host, &image, &cfg, &mut vmm::StdIo)?;
    if let Some(msg) = outcome.message() {
        eprintln!("vessel: {msg}");
    }
    if opts.stats {
        eprint!("{}", stats.table());
    }
    if let (Some(mut f), Some(p)) = (json, &opts.stats_json) {
        use std::io::Write;
        if let Err(e) = writeln!(f, "{}", stats.json()) {
            eprintln!("vessel: --stats-json {}: {e}", p.display());
        }
    }
    Ok(outcome.exit_code())
}

/// More vCPUs than the host has online CPUs is allowed (they share them),
/// Install the main thread's seccomp filter, or say loudly that there is
/// none (`--no-seccomp`).
fn seccomp(off: bool, gdb: bool) -> Result<(), Error> {
    if gdb && !off {
        // The stub's sockets are outside every list: a debugging session
        // runs without the filters (vmm/README.md, seccomp).
        return Ok(());
    }
    if !off && !vmm::seccomp::wanted() {
        return Ok(());
    }
    if off {
        eprintln!("vessel: --no-seccomp: the launcher runs without its seccomp allow-lists (debugging only)");
        return Ok(());
    }
    vmm::seccomp::enable().map_err(vmm::Error::from)?;
    vmm::seccomp::install(vmm::seccomp::Role::Main).map_err(vmm::Error::from)?;
    Ok(())
}

/// with a warning: parallel guest code then cannot run at full speed.
fn warn_if_oversubscribed(cpus: u32) {
    if cpus <= 1 {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online > 0 && i64::from(cpus) > online {
        eprintln!("vessel: warning: --cpus {cpus} is more than the {online} CPUs online here; the vCPUs share them");
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
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
    let bytes = vmm::read_image(guest)?;
    let me = match launcher {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(Error::CurrentExe)?,
    };
    let launcher = std::fs::read(&me).map_err(|source| Error::HostIo {
        what: "read",
        path: me.clone(),
        source,
    })?;
    // Check the guest now, against the launcher's machine (not the host's),
    // rather than at its first run.
    let machine = vmm::launcher_machine(&launcher).map_err(|source| Error::Launcher {
        path: me.clone(),
        source,
    })?;
    vmm::check_image_for(bytes.clone(), machine)?;
    let packed = vmm::pack::pack(&launcher, &bytes)?;
    let tmp = output.with_extension("tmp");
    std::fs::write(&tmp, packed)
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|_| std::fs::rename(&tmp, output))
        .map_err(|source| Error::HostIo {
            what: "write",
            path: output.to_path_buf(),
            source,
        })?;
    Ok(0)
}

/// Parse with clap, turning usage errors into exit code 125 (help and
/// version still exit 0). Before that, the long flags before `--` in
/// `argv[skip..]` must be flags of `flags` (a packed app's command, or
/// `vessel run`'s).
fn parse<T: Parser>(
    cmd: clap::Command,
    argv: Vec<OsString>,
    flags: Option<(&clap::Command, usize)>,
) -> Result<T, i32> {
    let bin = cmd.get_bin_name().unwrap_or("vessel").to_string();
    if let Some((flags, rest)) = flags.and_then(|(f, skip)| Some((f, argv.get(skip..)?))) {
        if let Err(e) = flags::check_long_flags(flags, rest) {
            eprintln!("{bin}: error: {e}");
            return Err(exit::LAUNCHER_ERROR);
        }
    }
    cmd.try_get_matches_from(argv)
        .and_then(|m| T::from_arg_matches(&m))
        .map_err(|e| {
            if e.use_stderr() {
                eprintln!("{}", flags::usage_error(&e, &bin));
                exit::LAUNCHER_ERROR
            } else {
                let _ = e.print();
                0
            }
        })
}

fn main_inner() -> Result<i32, Error> {
    let launched = Instant::now();
    // OS strings all the way: paths are used byte for byte.
    let argv: Vec<OsString> = std::env::args_os().collect();
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
        return match parse::<PackedCli>(cmd.clone(), argv, Some((&cmd, 1))) {
            Ok(cli) => run_guest(launched, host, guest, &name, cli.opts, cli.args),
            Err(code) => Ok(code),
        };
    }
    // `vessel run ...`: the flags after `run` are checked against `run`'s.
    let cmd = Cli::command().bin_name("vessel");
    let run = cmd.find_subcommand("run").cloned();
    let check = run
        .as_ref()
        .filter(|_| argv.get(1).is_some_and(|a| a == "run"));
    let cli = match parse::<Cli>(cmd, argv, check.map(|r| (r, 2))) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match cli.cmd {
        Cmd::Run { opts, guest, args } => {
            let bytes = vmm::read_image(&guest)?;
            // A packed app (`vessel run target/vessel/hello`): run its guest.
            let bytes = match vmm::pack::guest_in(&bytes) {
                Some(inner) => inner.to_vec(),
                None => bytes,
            };
            run_guest(launched, host, bytes, &file_name(&guest), opts, args)
        }
        Cmd::Caps => caps(host?),
        Cmd::Image { app, output, tag } => {
            drop(host);
            Ok(image::image(image::Request { app, output, tag }))
        }
        Cmd::Serve(opts) => {
            drop(host);
            Ok(serve::serve(opts))
        }
        Cmd::Pack {
            guest,
            output,
            launcher,
        } => pack(&guest, &output, launcher.as_deref()),
        Cmd::Snapshot {
            opts,
            input,
            output,
            calls,
            check,
        } => Ok(snapshot::snapshot(snapshot::Request {
            opts,
            input,
            output,
            calls,
            check,
        })),
    }
}

fn main() -> ExitCode {
    crash::install_crash_report();
    let code = match main_inner() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vessel: error: {}", flags::with_flags(&e));
            exit::LAUNCHER_ERROR
        }
    };
    ExitCode::from(code.to_le_bytes()[0])
}
