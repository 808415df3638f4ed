//! The launcher's errors: each prints as one line that says what failed and with which value.
//!
//! Each domain has its own enum, carrying the values (numbers, names,
//! paths, sources) as fields; most live next to the code that raises them:
//! [`ElfError`] (the guest image: here, re-exported by `elf`),
//! [`ConfigError`] (flags and the environment),
//! [`LayoutError`] and
//! [`PagingError`] (where things go in guest memory),
//! [`MemoryError`] (guest RAM access),
//! [`LazySpecError`] and
//! [`LazyError`] (lazy regions),
//! [`SveError`] (SVE vector lengths),
//! [`ApfError`] (launcher-served async page faults),
//! [`PackError`] (the launcher executable).
//! [`Error`] wraps them all and adds the prefix users see ("invalid
//! configuration: ", "invalid guest ELF: ", "guest memory: ").

use std::path::PathBuf;

use vessel_abi::HEADER_SECTION;

use crate::config::ConfigError;
use crate::elf::Machine;
use crate::layout::{LayoutError, PagingError};
use crate::lazy::{LazyError, LazySpecError};
use crate::memory::MemoryError;
use crate::pack::PackError;
use crate::softapf::ApfError;
use crate::sve::{SveError, VlSet};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source} (is KVM enabled? try `sudo modprobe kvm`, and add yourself to the `kvm` group or run as root)")]
    KvmOpen {
        path: String,
        source: std::io::Error,
    },
    #[error("KVM API version {0} is not the stable version 12")]
    KvmApiVersion(i32),
    #[error("{what}: {source}")]
    Kvm {
        what: String,
        source: kvm_ioctls::Error,
    },
    #[error("the host lacks {0}, which Vessel needs")]
    MissingCap(&'static str),
    /// The MSR list for KVM_SET_MSRS could not be built.
    #[error("building KVM_SET_MSRS for {what}: {source:?}")]
    MsrList {
        what: &'static str,
        source: vmm_sys_util::fam::Error,
    },
    /// The buffer for KVM_GET_REG_LIST could not be made.
    #[error("KVM_GET_REG_LIST buffer: {0:?}")]
    RegList(vmm_sys_util::fam::Error),
    /// KVM_SET_MSRS stopped before the end of the list.
    #[error("KVM_SET_MSRS ({what}) set {set} of {total} MSRs (first refused: {first:#x})")]
    MsrsRefused {
        what: &'static str,
        set: usize,
        total: usize,
        first: u32,
    },
    /// KVM finalized SVE with other lengths than the ones written.
    #[error("KVM kept SVE lengths {} bits, not the {} bits written", got.describe(), written.describe())]
    SveNotKept {
        got: Box<VlSet>,
        written: Box<VlSet>,
    },
    #[error("cannot read guest image {path}: {source}")]
    ReadImage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid guest ELF: {0}")]
    Elf(#[from] ElfError),
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("invalid configuration: {0}")]
    Layout(#[from] LayoutError),
    #[error("invalid configuration: {0}")]
    LazySpec(#[from] LazySpecError),
    #[error("invalid configuration: {0}")]
    Sve(#[from] SveError),
    #[error("page tables: {0}")]
    Paging(#[from] PagingError),
    #[error("guest memory: {0}")]
    Memory(#[from] MemoryError),
    #[error("guest memory: {0}")]
    Lazy(#[from] LazyError),
    #[error(transparent)]
    Apf(#[from] ApfError),
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A launcher executable that cannot take a guest: `path` is the launcher.
    #[error("{}: {source}", path.display())]
    Launcher { path: PathBuf, source: PackError },
    /// A host file the launcher opens, reads or writes (`what`: "open", "read", "write").
    #[error("cannot {what} {}: {source}", path.display())]
    HostIo {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find the launcher executable: {0}")]
    CurrentExe(std::io::Error),
    /// A thread the launcher needs did not start (`what`: "the watchdog thread", ...).
    #[error("cannot start {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot install the handler for signal {signal}: {source}")]
    SignalHandler {
        signal: i32,
        source: vmm_sys_util::errno::Error,
    },
}

impl Error {
    /// A failed `std::thread::Builder::spawn` of `what`.
    pub(crate) fn thread(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Thread { what, source }
    }
}

/// Why a guest image is refused ("invalid guest ELF: ...").
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not a 64-bit little-endian ELF ({0})")]
    NotElf64(object::read::Error),
    #[error("unsupported machine {machine} (want {})", want.name())]
    UnsupportedMachine { machine: u16, want: Machine },
    #[error("built for {}, but this launcher runs {} guests", built.name(), runs.name())]
    WrongMachine { built: Machine, runs: Machine },
    #[error("ELF type {0} is not ET_EXEC (guests are linked at fixed addresses)")]
    NotExec(u16),
    #[error("program headers: {0}")]
    ProgramHeaders(object::read::Error),
    #[error("no PT_LOAD segments")]
    NoLoadSegments,
    #[error("segments overlap: {vaddr:#x}+{memsz:#x} and {next:#x}")]
    Overlap { vaddr: u64, memsz: u64, next: u64 },
    #[error("entry point {0:#x} is not in an executable segment")]
    EntryNotExecutable(u64),
    #[error("segment at {vaddr:#x}: file size {filesz:#x} exceeds memory size {memsz:#x}")]
    FileSizeOverMemSize { vaddr: u64, filesz: u64, memsz: u64 },
    #[error("segment at {vaddr:#x}: file range {offset:#x}+{filesz:#x} is past the end of the file ({file_len} bytes)")]
    PastEndOfFile {
        vaddr: u64,
        offset: u64,
        filesz: u64,
        file_len: u64,
    },
    #[error("segment {vaddr:#x}+{memsz:#x} is outside the guest image window {lo:#x}..{hi:#x}")]
    OutsideWindow {
        vaddr: u64,
        memsz: u64,
        lo: u64,
        hi: u64,
    },
    #[error("segment {vaddr:#x}+{memsz:#x} does not fit in guest memory")]
    DoesNotFit { vaddr: u64, memsz: u64 },
    #[error("section headers: {0}")]
    SectionHeaders(object::read::Error),
    #[error("no {section} section: not a Vessel guest (link it with guest-rt)", section = HEADER_SECTION)]
    NoHeader,
    #[error("{section}: {0}", section = HEADER_SECTION)]
    HeaderData(object::read::Error),
    #[error("{section} is {len} bytes, want {want}", section = HEADER_SECTION)]
    HeaderSize { len: usize, want: usize },
    #[error("{section} has bad magic {0:#x}", section = HEADER_SECTION)]
    BadMagic(u64),
    #[error("guest speaks Vessel ABI {guest}, this launcher speaks {ours}: rebuild the app", ours = vessel_abi::ABI_VERSION)]
    AbiVersion { guest: u32 },
    /// The x86_64 exception stubs the header declares are not the runtime's.
    #[error("guest header declares {count} exception stubs {stride} bytes apart, want {want_count} and {want_stride}")]
    ExceptionStubs {
        count: u32,
        stride: u64,
        want_count: u32,
        want_stride: u64,
    },
    /// The aarch64 vector table the header declares is not usable.
    #[error("guest header declares {count} vectors at {at:#x}; want {want} at a 2 KiB-aligned address inside the image")]
    VectorTable { count: u32, at: u64, want: u32 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach what was being done to a KVM ioctl error.
pub trait KvmContext<T> {
    fn kvm(self, what: impl Into<String>) -> Result<T>;
}

impl<T> KvmContext<T> for std::result::Result<T, kvm_ioctls::Error> {
    fn kvm(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Kvm {
            what: what.into(),
            source,
        })
    }
}
