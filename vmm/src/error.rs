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

/// Everything the launcher library can fail with; each displays as one
/// line saying what failed and with which value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The KVM device could not be opened.
    #[error("cannot open {path}: {source} (is KVM enabled? try `sudo modprobe kvm`, and add yourself to the `kvm` group or run as root)")]
    KvmOpen {
        /// The device path (`/dev/kvm` or `$VESSEL_KVM`).
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// KVM_GET_API_VERSION gave something other than 12.
    #[error("KVM API version {0} is not the stable version 12")]
    KvmApiVersion(i32),
    /// A KVM ioctl failed.
    #[error("{what}: {source}")]
    Kvm {
        /// Which ioctl, and on what.
        what: String,
        /// The error KVM returned.
        source: kvm_ioctls::Error,
    },
    /// A capability Vessel cannot run without (`KVM_CAP_...`).
    #[error("the host lacks {0}, which Vessel needs")]
    MissingCap(&'static str),
    /// The MSR list for KVM_SET_MSRS could not be built.
    #[error("building KVM_SET_MSRS for {what}: {source:?}")]
    MsrList {
        /// Which MSRs.
        what: &'static str,
        /// Why the list could not be built.
        source: vmm_sys_util::fam::Error,
    },
    /// The buffer for KVM_GET_REG_LIST could not be made.
    #[error("KVM_GET_REG_LIST buffer: {0:?}")]
    RegList(vmm_sys_util::fam::Error),
    /// KVM_SET_MSRS stopped before the end of the list.
    #[error("KVM_SET_MSRS ({what}) set {set} of {total} MSRs (first refused: {first:#x})")]
    MsrsRefused {
        /// Which MSRs.
        what: &'static str,
        /// How many KVM set.
        set: usize,
        /// How many were asked for.
        total: usize,
        /// The first MSR KVM refused.
        first: u32,
    },
    /// KVM finalized SVE with other lengths than the ones written.
    #[error("KVM kept SVE lengths {} bits, not the {} bits written", got.describe(), written.describe())]
    SveNotKept {
        /// The lengths KVM kept.
        got: Box<VlSet>,
        /// The lengths written.
        written: Box<VlSet>,
    },
    /// The guest image file could not be read.
    #[error("cannot read guest image {path}: {source}")]
    ReadImage {
        /// The image file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The guest image is not a valid Vessel guest.
    #[error("invalid guest ELF: {0}")]
    Elf(#[from] ElfError),
    /// A configuration value is refused.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The memory layout cannot be built for this configuration.
    #[error("invalid configuration: {0}")]
    Layout(#[from] LayoutError),
    /// A `--dir` that cannot be used.
    #[error("invalid configuration: {0}")]
    Dir(#[from] crate::fs::DirError),
    /// A lazy region is refused.
    #[error("invalid configuration: {0}")]
    LazySpec(#[from] LazySpecError),
    /// The SVE request cannot be granted.
    #[error("invalid configuration: {0}")]
    Sve(#[from] SveError),
    /// The page tables could not be built.
    #[error("page tables: {0}")]
    Paging(#[from] PagingError),
    /// Guest memory could not be mapped or accessed.
    #[error("guest memory: {0}")]
    Memory(#[from] MemoryError),
    /// Lazy-region memory could not be set up.
    #[error("guest memory: {0}")]
    Lazy(#[from] LazyError),
    /// `--gdb` refused, or its socket failed.
    #[error(transparent)]
    Gdb(#[from] crate::debug::DebugError),
    /// Launcher-served async page faults failed.
    #[error(transparent)]
    Apf(#[from] ApfError),
    /// Packing or unpacking an executable failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A resource limit could not be set.
    #[error("cannot set {what}: {source}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A resource limit is outside its range.
    #[error("invalid configuration: limits.{0}")]
    LimitRange(#[from] crate::limits::LimitError),
    /// A seccomp filter could not be built or installed.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// A launcher executable that cannot take a guest: `path` is the launcher.
    #[error("{}: {source}", path.display())]
    Launcher {
        /// The launcher executable.
        path: PathBuf,
        /// What is wrong with it.
        source: PackError,
    },
    /// A host file the launcher opens, reads or writes (`what`: "open", "read", "write").
    #[error("cannot {what} {}: {source}", path.display())]
    HostIo {
        /// The operation.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The launcher could not find its own executable.
    #[error("cannot find the launcher executable: {0}")]
    CurrentExe(std::io::Error),
    /// A thread the launcher needs did not start (`what`: "the watchdog thread", ...).
    #[error("cannot start {what}: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A run ended without any vCPU deciding how (a launcher bug, never a
    /// guest's doing).
    #[error("the run ended without an outcome from any vCPU")]
    NoOutcome,
    /// A signal handler could not be installed.
    #[error("cannot install the handler for signal {signal}: {source}")]
    SignalHandler {
        /// The signal.
        signal: i32,
        /// Why.
        source: vmm_sys_util::errno::Error,
    },
}

impl Error {
    /// The [`VmConfig`](crate::VmConfig) field a configuration error is
    /// about (`mem_size`, `vcpus`, `stack_size`, `env`, `lazy`, `sve`); its
    /// message starts with that name after "invalid configuration: ", so a
    /// command line can put its own flag there.
    pub fn config_field(&self) -> Option<&'static str> {
        use crate::config::ConfigError as C;
        use crate::layout::LayoutError as L;
        Some(match self {
            Error::Layout(L::MemOutOfRange(_) | L::MemNotPages(_) | L::NoRoomForHeap { .. }) => {
                "mem_size"
            }
            Error::Layout(L::CpusOutOfRange(_)) => "vcpus",
            Error::Layout(L::StackSize(_)) => "stack_size",
            Error::Config(C::EnvEmptyName(_) | C::EnvUnset(_)) => "env",
            Error::LazySpec(_) => "lazy",
            Error::Sve(SveError::NotThisArch(_)) => "sve",
            _ => return None,
        })
    }

    /// A failed `std::thread::Builder::spawn` of `what`.
    pub(crate) fn thread(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Thread { what, source }
    }
}

/// Why a guest image is refused ("invalid guest ELF: ...").
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not an ELF file this launcher can read.
    #[error("not a 64-bit little-endian ELF ({0})")]
    NotElf64(object::read::Error),
    /// An ELF machine Vessel does not know.
    #[error("unsupported machine {machine} (want {})", want.name())]
    UnsupportedMachine {
        /// The ELF `e_machine`.
        machine: u16,
        /// The machine this launcher runs.
        want: Machine,
    },
    /// An image for the other architecture.
    #[error("built for {}, but this launcher runs {} guests", built.name(), runs.name())]
    WrongMachine {
        /// The image's architecture.
        built: Machine,
        /// The launcher's.
        runs: Machine,
    },
    /// Not ET_EXEC (the ELF type is given).
    #[error("ELF type {0} is not ET_EXEC (guests are linked at fixed addresses)")]
    NotExec(u16),
    /// The program headers could not be read.
    #[error("program headers: {0}")]
    ProgramHeaders(object::read::Error),
    /// Nothing to load.
    #[error("no PT_LOAD segments")]
    NoLoadSegments,
    /// Two segments overlap.
    #[error("segments overlap: {vaddr:#x}+{memsz:#x} and {next:#x}")]
    Overlap {
        /// Start of the first segment.
        vaddr: u64,
        /// Its memory size.
        memsz: u64,
        /// Start of the segment it runs into.
        next: u64,
    },
    /// The entry point is outside every executable segment.
    #[error("entry point {0:#x} is not in an executable segment")]
    EntryNotExecutable(u64),
    /// A segment with more file bytes than memory bytes.
    #[error("segment at {vaddr:#x}: file size {filesz:#x} exceeds memory size {memsz:#x}")]
    FileSizeOverMemSize {
        /// The segment's address.
        vaddr: u64,
        /// Its file size.
        filesz: u64,
        /// Its memory size.
        memsz: u64,
    },
    /// A segment whose file bytes lie past the end of the file.
    #[error("segment at {vaddr:#x}: file range {offset:#x}+{filesz:#x} is past the end of the file ({file_len} bytes)")]
    PastEndOfFile {
        /// The segment's address.
        vaddr: u64,
        /// Its offset in the file.
        offset: u64,
        /// Its file size.
        filesz: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A segment outside the window images may use.
    #[error("segment {vaddr:#x}+{memsz:#x} is outside the guest image window {lo:#x}..{hi:#x}")]
    OutsideWindow {
        /// The segment's address.
        vaddr: u64,
        /// Its memory size.
        memsz: u64,
        /// Lowest address an image may use.
        lo: u64,
        /// End of the window.
        hi: u64,
    },
    /// A segment past the end of guest RAM (or into the heap).
    #[error("segment {vaddr:#x}+{memsz:#x} does not fit in guest memory")]
    DoesNotFit {
        /// The segment's address.
        vaddr: u64,
        /// Its memory size.
        memsz: u64,
    },
    /// The section headers could not be read.
    #[error("section headers: {0}")]
    SectionHeaders(object::read::Error),
    /// No guest header section.
    #[error("no {section} section: not a Vessel guest (link it with guest-rt)", section = HEADER_SECTION)]
    NoHeader,
    /// The guest header section could not be read.
    #[error("{section}: {0}", section = HEADER_SECTION)]
    HeaderData(object::read::Error),
    /// The guest header has the wrong size.
    #[error("{section} is {len} bytes, want {want}", section = HEADER_SECTION)]
    HeaderSize {
        /// Its size.
        len: usize,
        /// The size of `GuestHeader`.
        want: usize,
    },
    /// The guest header's magic is wrong.
    #[error("{section} has bad magic {0:#x}", section = HEADER_SECTION)]
    BadMagic(u64),
    /// The guest was built for another ABI version.
    #[error("guest speaks Vessel ABI {guest}, this launcher speaks {ours}: rebuild the app", ours = vessel_abi::ABI_VERSION)]
    AbiVersion {
        /// The ABI version the guest was built for.
        guest: u32,
    },
    /// The app's header asks for a default vCPU count outside the range.
    #[error("the app's header asks for {0} vCPUs by default (entry!(main, cpus = ..)); the range is 1..={max}", max = vessel_abi::MAX_VCPUS)]
    HeaderVcpus(u64),
    /// The x86_64 exception stubs the header declares are not the runtime's.
    #[error("guest header declares {count} exception stubs {stride} bytes apart, want {want_count} and {want_stride}")]
    ExceptionStubs {
        /// Stubs declared.
        count: u32,
        /// Bytes between them.
        stride: u64,
        /// Stubs the runtime has.
        want_count: u32,
        /// Their stride.
        want_stride: u64,
    },
    /// The aarch64 vector table the header declares is not usable.
    #[error("guest header declares {count} vectors at {at:#x}; want {want} at a 2 KiB-aligned address inside the image")]
    VectorTable {
        /// Vectors declared.
        count: u32,
        /// The table's address.
        at: u64,
        /// Vectors the runtime has.
        want: u32,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach what was being done to a KVM ioctl error.
pub trait KvmContext<T> {
    /// Turn a KVM error into [`Error::Kvm`] saying what was being done.
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
