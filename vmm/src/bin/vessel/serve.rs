//! `vessel serve APP`: the command line of the HTTP function runner
//! (`vmm::serve`), its logs and its `--stats`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args};
use vessel_abi::exit;
use vmm::serve::{Lifecycle, ServeConfig, Server};

use crate::cli::{parse_secs, parse_size};

/// `vessel serve` flags.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("lifecycle").args(["fresh", "reuse", "shared", "native"])))]
pub struct ServeOpts {
    /// The library guest (ELF or packed app) whose exports are served.
    #[arg(required_unless_present = "native")]
    pub app: Option<PathBuf>,
    /// Address to listen on (loopback unless you say otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A new VM per request, built from the snapshot (the default).
    #[arg(long)]
    pub fresh: bool,
    /// A pool of VMs, each restored to the snapshot after every request.
    #[arg(long)]
    pub reuse: bool,
    /// A pool of VMs never reset between requests (trusted code only).
    #[arg(long)]
    pub shared: bool,
    /// No VM: the server's built-in native `echo` handler (benchmark baseline).
    #[arg(long)]
    pub native: bool,
    /// Worker threads, each with one VM.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub pool: usize,
    /// Requests that may wait for a free worker; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub queue: usize,
    /// Per-request limit on the function (504 past it).
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    pub timeout: Duration,
    /// Largest request body (413 past it).
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    pub max_request: u64,
    /// Largest response body (500 past it).
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = parse_size)]
    pub max_response: u64,
    /// Guest RAM per VM.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub mem: u64,
    /// Run as this user (NAME, UID or UID:GID) once /dev/kvm and the
    /// socket are open.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// How long SIGTERM waits for requests in flight.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub grace: Duration,
    /// At shutdown, print requests by status, latency, VMs and guest exits.
    #[arg(long)]
    pub stats: bool,
}

fn config(o: &ServeOpts) -> Result<ServeConfig, String> {
    let lifecycle = match (o.reuse, o.shared, o.native) {
        (true, _, _) => Lifecycle::Reuse,
        (_, true, _) => Lifecycle::Shared,
        (_, _, true) => Lifecycle::Native,
        _ => Lifecycle::Fresh,
    };
    let guest = match &o.app {
        Some(p) if !o.native => {
            let bytes = vmm::read_image(p).map_err(|e| e.to_string())?;
            Some(match vmm::pack::guest_in(&bytes) {
                Some(inner) => inner.to_vec(),
                None => bytes,
            })
        }
        _ => None,
    };
    let user = match &o.user {
        Some(u) => {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            Some(vmm::serve::privs::parse_user(u, &passwd).map_err(|e| format!("--user: {e}"))?)
        }
        None => None,
    };
    let size = |v: u64, flag: &str| usize::try_from(v).map_err(|_| format!("{flag} is too large"));
    Ok(ServeConfig {
        guest,
        mem_size: o.mem,
        listen: o.listen,
        lifecycle,
        pool: o.pool,
        queue: o.queue,
        timeout: o.timeout,
        max_request: size(o.max_request, "--max-request")?,
        max_response: size(o.max_response, "--max-response")?,
        user,
        grace: o.grace,
    })
}

/// Run `vessel serve`; the process's exit code.
pub fn serve(o: ServeOpts) -> i32 {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VESSEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let cfg = match config(&o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vessel: error: {e}");
            return exit::LAUNCHER_ERROR;
        }
    };
    let server = match Server::start(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vessel: error: {e}");
            return exit::LAUNCHER_ERROR;
        }
    };
    match server.local_addr() {
        Ok(a) => eprintln!(
            "vessel serve: listening on http://{a} ({:?})",
            cfg.lifecycle
        ),
        Err(e) => eprintln!("vessel serve: listening (address unknown: {e})"),
    }
    match server.run() {
        Ok(m) => {
            if o.stats {
                eprint!("{}", m.table());
            }
            0
        }
        Err(e) => {
            eprintln!("vessel: error: {e}");
            exit::LAUNCHER_ERROR
        }
    }
}
