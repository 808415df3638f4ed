//! The I/O ring: a submission queue and a completion queue in guest memory.
//!
//! Protocol in three lines:
//! 1. The guest places a [`RingHeader`] followed by `entries` [`Sqe`]s and
//!    `entries` [`Cqe`]s in its memory ([`ring_bytes`]) and registers it
//!    once per vCPU with [`Call::RingSetup`](crate::Call::RingSetup).
//! 2. It writes SQEs at `sq_tail & (entries - 1)` and publishes them by
//!    storing `sq_tail` (release); when it needs results it rings the
//!    doorbell once with [`Call::RingEnter`](crate::Call::RingEnter), which
//!    takes every new SQE and waits for `min_complete` completions.
//! 3. The launcher serves the requests on its own I/O threads (requests on
//!    one handle in order, different handles in parallel), writes each
//!    [`Cqe`] at `cq_tail & (entries - 1)`, then stores `cq_tail` (release);
//!    the guest consumes them and stores `cq_head`.
//!
//! One ring per vCPU: each side is a single producer of its own indices, so
//! no lock lives in guest memory. The launcher keeps its own copy of
//! `entries`, `sq_head` and `cq_tail` and never trusts the guest's; a
//! `sq_tail` more than `entries` ahead of the launcher's `sq_head` (or
//! behind it), or a `cq_head` outside `[cq_tail - entries, cq_tail]`, makes
//! RingEnter fail with [`Errno::Inval`](crate::Errno::Inval) and take
//! nothing. The launcher never has more requests in flight than there is
//! room in the completion queue, so completions are never dropped.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::GuestSlice;

/// Fewest entries a ring may have.
pub const MIN_ENTRIES: u32 = 2;
/// Most entries a ring may have (each queue).
pub const MAX_ENTRIES: u32 = 4096;

/// Operation codes (`Sqe::op`). Paths are absolute guest paths (UTF-8, no
/// NUL, at most [`crate::fs::MAX_PATH`] bytes) under a pre-opened directory.
pub mod op {
    /// Does nothing; completes with 0 (for measuring the ring itself).
    pub const NOP: u32 = 0;
    /// Open `a` (path) with `flags` ([`crate::fs::open`]); result: a handle.
    pub const OPEN: u32 = 1;
    /// Close `handle`; result 0.
    pub const CLOSE: u32 = 2;
    /// Read into `a` at `offset` ([`CURSOR`](super::CURSOR): at the file position, which
    /// advances); result: bytes read, 0 at end of file.
    pub const READ: u32 = 3;
    /// Write `a` at `offset` (or [`CURSOR`](super::CURSOR)); result: bytes written.
    pub const WRITE: u32 = 4;
    /// Move the file position: `offset` as i64 relative to `flags`
    /// ([`crate::fs::seek`]); result: the new position.
    pub const SEEK: u32 = 5;
    /// Write a [`crate::fs::Stat`] of `handle` into `b`; result 0.
    pub const FSTAT: u32 = 6;
    /// Write a [`crate::fs::Stat`] of path `a` into `b` (symlinks beneath
    /// the directory are followed); result 0.
    pub const STAT: u32 = 7;
    /// Truncate or extend `handle` to `offset` bytes; result 0.
    pub const SET_LEN: u32 = 8;
    /// Flush `handle` to stable storage; result 0.
    pub const SYNC: u32 = 9;
    /// List the directory `handle` from entry number `offset` into `b` as
    /// [`crate::fs::DirEnt`] records; result: records written (0: the end).
    pub const READ_DIR: u32 = 10;
    /// Create directory `a`; result 0.
    pub const MKDIR: u32 = 11;
    /// Remove the file `a`; result 0.
    pub const UNLINK: u32 = 12;
    /// Remove the empty directory `a`; result 0.
    pub const RMDIR: u32 = 13;
    /// Rename `a` to `b` (both beneath the same pre-opened directory); result 0.
    pub const RENAME: u32 = 14;
    /// Write `a` to the host's stdout (`handle` 1) or stderr (2), in ring
    /// order with every other console write; result: bytes written.
    pub const CONSOLE: u32 = 15;
}

/// `Sqe::offset` for READ/WRITE: use (and advance) the file position.
pub const CURSOR: u64 = u64::MAX;

/// The ring's shared indices, at the start of the ring area. Indices are
/// free-running u32 counters; an entry's slot is `index & (entries - 1)`.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct RingHeader {
    /// Written by the launcher: SQEs taken so far.
    pub sq_head: u32,
    /// Written by the guest: SQEs published so far.
    pub sq_tail: u32,
    /// Written by the guest: CQEs consumed so far.
    pub cq_head: u32,
    /// Written by the launcher: CQEs published so far.
    pub cq_tail: u32,
    /// Written by the launcher: requests taken but not completed yet.
    pub in_flight: u32,
    /// Reserved; zero.
    pub reserved: [u32; 11],
}

/// A submission: one request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct Sqe {
    /// What to do, see [`op`].
    pub op: u32,
    /// Per-op flags ([`crate::fs::open`] for OPEN, [`crate::fs::seek`] for SEEK).
    pub flags: u32,
    /// Copied into the completion unchanged.
    pub user_data: u64,
    /// A handle from OPEN (or the console stream for CONSOLE).
    pub handle: u64,
    /// File offset, length or entry number, per op.
    pub offset: u64,
    /// First buffer or path.
    pub a: GuestSlice,
    /// Second buffer or path.
    pub b: GuestSlice,
}

/// A completion.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct Cqe {
    /// The request's `user_data`.
    pub user_data: u64,
    /// Non-negative: the op's result; negative: an [`Errno`](crate::Errno).
    pub result: i64,
}

/// Offset of the SQE array from the start of the ring.
pub const SQ_OFFSET: u64 = core::mem::size_of::<RingHeader>() as u64;

/// Offset of the CQE array for a ring of `entries`.
pub const fn cq_offset(entries: u32) -> u64 {
    SQ_OFFSET + entries as u64 * core::mem::size_of::<Sqe>() as u64
}

/// Bytes a ring of `entries` takes.
pub const fn ring_bytes(entries: u32) -> u64 {
    cq_offset(entries) + entries as u64 * core::mem::size_of::<Cqe>() as u64
}

/// Whether a guest may register a ring of `entries`.
pub const fn entries_ok(entries: u32) -> bool {
    entries.is_power_of_two() && entries >= MIN_ENTRIES && entries <= MAX_ENTRIES
}
