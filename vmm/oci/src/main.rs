//! `vessel-oci`: a runc-compatible OCI runtime for Vessel apps.
//!
//! containerd's runc shim (and Podman, CRI-O, Kubernetes through them)
//! drive it as they drive runc: `create`, `start`, `state`, `kill`,
//! `delete`, with `--root`, `--log`, `--log-format`, `--bundle`,
//! `--pid-file`. A bundle whose `process.args[0]` is a packed Vessel app
//! runs that app as a VM (see `spec`); any other bundle, and any command
//! not listed, is handed to runc or crun unchanged (`fallback`).
//! Errors are one line on stderr and in the log, exit code 1, as runc's.

mod cgroup;
mod control;
mod create;
mod error;
mod fallback;
mod log;
mod signal;
mod spec;
mod state;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use liboci_cli::StandardCmd;

use crate::error::{OciError, Result};
use crate::state::Owner;

#[derive(Parser, Debug)]
#[command(
    name = "vessel-oci",
    version,
    about = "OCI runtime: Vessel apps run as VMs, other containers go to runc or crun"
)]
struct Cli {
    #[command(flatten)]
    global: liboci_cli::GlobalOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    #[command(flatten)]
    Standard(StandardCmd),
    /// The container's process until `start` (internal).
    #[command(hide = true)]
    Init(InitArgs),
}

#[derive(Args, Debug)]
struct InitArgs {
    fifo: PathBuf,
    exe: PathBuf,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

fn run(cli: Cli, argv: &[OsString]) -> Result<()> {
    let root_given = cli.global.root.is_some();
    let root = cli
        .global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(fallback::DEFAULT_ROOT));
    let log = log::Log {
        path: cli.global.log.clone(),
        json: cli.global.log_format.as_deref() == Some("json"),
    };
    let cmd = match cli.cmd {
        Cmd::Init(a) => {
            let args = a
                .args
                .strip_prefix(&[OsString::from("--")][..])
                .unwrap_or(&a.args);
            return Err(create::init(&a.fifo, &a.exe, args));
        }
        Cmd::Standard(c) => c,
    };
    if let StandardCmd::Create(c) = &cmd {
        let args = create::CreateArgs {
            root: &root,
            root_given,
            create: c,
            argv,
        };
        return create::create(&args, &log);
    }
    let (id, force) = match &cmd {
        StandardCmd::Start(s) => (&s.container_id, false),
        StandardCmd::State(s) => (&s.container_id, false),
        StandardCmd::Kill(k) => (&k.container_id, false),
        StandardCmd::Delete(d) => (&d.container_id, d.force),
        StandardCmd::Create(_) => unreachable!("handled above"),
    };
    let record = match state::find(&root, id) {
        Ok(Owner::Vessel(r)) => r,
        Ok(Owner::Other) => return Err(fallback::exec(argv, root_given, id)),
        // runc: deleting what is not there is fine with --force.
        Err(OciError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let dir = state::dir(&root, id)?;
    match cmd {
        StandardCmd::Start(_) => create::start(&dir, &record),
        StandardCmd::State(_) => control::state(&dir, &record),
        StandardCmd::Kill(k) => control::kill(&dir, &record, &k.signal),
        StandardCmd::Delete(d) => control::delete(&dir, &record, d.force),
        StandardCmd::Create(_) => unreachable!("handled above"),
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            // runc's other commands (exec, ps, pause, update, features,
            // ...) for the containers the fallback runs.
            let what = argv
                .get(1)
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            let root_given = argv.iter().any(|a| {
                let a = a.to_string_lossy();
                a == "--root" || a == "-r" || a.starts_with("--root=")
            });
            log::Log::default().error(&fallback::exec(&argv, root_given, &what).to_string());
            return ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    let log = log::Log {
        path: cli.global.log.clone(),
        json: cli.global.log_format.as_deref() == Some("json"),
    };
    match run(cli, &argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
