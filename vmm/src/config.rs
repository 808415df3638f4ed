//! How to build and run a VM.

use std::path::PathBuf;
use std::time::Duration;

use crate::lazy::LazySpec;
use crate::sve::SveRequest;

/// How to build and run a VM.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// Number of vCPUs (1..=`MAX_VCPUS`), each on its own launcher thread.
    pub vcpus: u32,
    /// End the guest after this long.
    pub timeout: Option<Duration>,
    /// Arguments; the first is the program name.
    pub args: Vec<String>,
    /// `KEY=VALUE` environment entries.
    pub env: Vec<String>,
    /// Size of each vCPU's stack.
    pub stack_size: u64,
    /// Lazy regions (`--lazy NAME=FILE[:SIZE]`).
    pub lazy: Vec<LazySpec>,
    /// Emulated storage latency per fetched page (`--lazy-latency MS`).
    pub lazy_latency: Duration,
    /// Offer async page faults when the host has them (`--no-async-pf` clears it).
    pub async_pf: bool,
    /// SVE for the guest (arm64): overrides the app's GuestHeader request.
    pub sve: Option<SveRequest>,
    /// Print each vCPU's vector registers (arm64: Z/P/FFR) when the guest ends.
    pub dump_regs: bool,
    /// The guest flushes stdout at every newline (stdout is a terminal)
    /// instead of per 4 KiB.
    pub stdout_line_buffered: bool,
    /// Pre-opened host directories (`--dir HOST[:GUEST][:ro]`).
    pub dirs: Vec<crate::fs::DirSpec>,
    /// Most bytes the guest may write to stdout, stderr and files together
    /// (`--max-output`); past it the VM ends with exit code
    /// [`vessel_abi::exit::OUTPUT_CAP`].
    pub max_output: u64,
    /// Emulated storage latency per I/O ring request (`--io-latency MS`).
    pub io_latency: Duration,
    /// Serve the GDB remote protocol here (`--gdb ADDR`); the guest starts
    /// stopped at its entry.
    pub gdb: Option<crate::debug::GdbAddr>,
    /// Write an ELF core file into this directory when the guest crashes
    /// (`--core-dump DIR`, x86_64).
    pub core_dump: Option<PathBuf>,
    /// When the launcher started, for the stats' launch-to-entry time
    /// (None: when the VM was created).
    pub launched: Option<std::time::Instant>,
    /// Open host files, pending I/O requests, fetch threads (`limits`).
    pub limits: crate::limits::Limits,
}

/// The default `--max-output`: 16 GiB.
pub const DEFAULT_MAX_OUTPUT: u64 = 16 << 30;

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            mem_size: 128 << 20,
            vcpus: 1,
            timeout: None,
            args: vec![],
            env: vec![],
            stack_size: 1 << 20,
            lazy: vec![],
            lazy_latency: Duration::ZERO,
            async_pf: true,
            sve: None,
            dump_regs: false,
            stdout_line_buffered: false,
            dirs: vec![],
            max_output: DEFAULT_MAX_OUTPUT,
            io_latency: Duration::ZERO,
            launched: None,
            limits: crate::limits::Limits::default(),
            gdb: None,
            core_dump: None,
        }
    }
}

/// A [`VmConfig`] field, an environment entry or a guest image file the
/// launcher refuses before building anything ("invalid configuration:
/// ..."). Messages name the field (`vcpus`, `env`); the `vessel` command
/// shows its flag instead ([`crate::Error::config_field`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment entry `=VALUE` without a name.
    #[error("env `{0}` has an empty name")]
    EnvEmptyName(String),
    /// An environment entry `KEY` naming a variable the launcher does not have.
    #[error("env {0}: the launcher's environment has no {0}")]
    EnvUnset(String),
    /// The KVM device path has a NUL byte.
    #[error("VESSEL_KVM `{0}` contains a NUL byte")]
    KvmPathNul(String),
    /// The guest image is not a regular file.
    #[error("guest image {} is not a regular file", .0.display())]
    ImageNotAFile(PathBuf),
    /// The guest image is larger than `MAX_IMAGE_BYTES`.
    #[error("guest image {} is {} MiB; the limit is {} MiB", path.display(), len >> 20, crate::MAX_IMAGE_BYTES >> 20)]
    ImageTooLarge {
        /// The image file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// The guest image grew past the limit while being read.
    #[error("guest image {} grew past {} MiB while being read", .0.display(), crate::MAX_IMAGE_BYTES >> 20)]
    ImageGrew(PathBuf),
}
