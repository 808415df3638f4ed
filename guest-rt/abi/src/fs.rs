//! Files in pre-opened host directories: the values ring requests carry.
//!
//! The launcher is started with `--dir HOST[:GUEST][:ro]`; the guest names
//! files by absolute guest path (`/GUEST/...`), the launcher resolves each
//! beneath its directory and hands out handles from a per-VM table of at
//! most [`MAX_HANDLES`]. A closed or never-issued handle is
//! [`Errno::BadHandle`](crate::Errno::BadHandle), never another file.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Longest path a request may name, in bytes.
pub const MAX_PATH: u64 = 4096;
/// Most handles open at once per VM.
pub const MAX_HANDLES: u32 = 1024;
/// Most bytes one READ or WRITE request moves (a longer one is cut).
pub const MAX_IO: u64 = 16 << 20;

/// `Sqe::flags` for [`crate::ring::op::OPEN`].
pub mod open {
    /// Open for reading.
    pub const READ: u32 = 1 << 0;
    /// Open for writing (at the file position, or at `offset`).
    pub const WRITE: u32 = 1 << 1;
    /// Writes go to the end of the file.
    pub const APPEND: u32 = 1 << 2;
    /// Create the file if it does not exist.
    pub const CREATE: u32 = 1 << 3;
    /// Fail with `AlreadyExists` if it exists (with CREATE).
    pub const CREATE_NEW: u32 = 1 << 4;
    /// Cut the file to 0 bytes.
    pub const TRUNCATE: u32 = 1 << 5;
    /// Open a directory (for READ_DIR).
    pub const DIRECTORY: u32 = 1 << 6;
    /// Every flag defined.
    pub const ALL: u32 = (1 << 7) - 1;
}

/// `Sqe::flags` for [`crate::ring::op::SEEK`].
pub mod seek {
    /// From the start of the file.
    pub const START: u32 = 0;
    /// From the file position.
    pub const CURRENT: u32 = 1;
    /// From the end of the file.
    pub const END: u32 = 2;
}

/// `Stat::kind` and `DirEnt::kind`.
pub mod kind {
    /// A regular file.
    pub const FILE: u32 = 1;
    /// A directory.
    pub const DIR: u32 = 2;
    /// A symbolic link (listed by READ_DIR; opening follows it beneath the directory).
    pub const SYMLINK: u32 = 3;
    /// Anything else (device, FIFO, socket): never opened.
    pub const OTHER: u32 = 4;
}

/// What FSTAT and STAT write.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct Stat {
    /// Bytes.
    pub size: u64,
    /// See [`kind`].
    pub kind: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Last modification, nanoseconds since the Unix epoch (0 if earlier).
    pub modified_ns: u64,
    /// 1 if the file is under a read-only (`:ro`) directory.
    pub readonly: u32,
    /// Reserved; zero.
    pub reserved: u32,
}

/// One READ_DIR record: this header, then `name_len` bytes of name, then
/// zero padding to the next multiple of 8 ([`dirent_size`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct DirEnt {
    /// Bytes of name that follow (not NUL-terminated).
    pub name_len: u32,
    /// See [`kind`].
    pub kind: u32,
}

/// Bytes a READ_DIR record with a name of `name_len` bytes takes.
pub const fn dirent_size(name_len: u64) -> u64 {
    (core::mem::size_of::<DirEnt>() as u64 + name_len + 7) & !7
}
