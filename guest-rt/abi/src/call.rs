//! Hypercalls: numbers, the frame that carries them, and typed decoding.
//!
//! Each call is a variant of [`Call`] with its typed parameters, so a call
//! can't be made or served with the wrong arguments: the guest builds a
//! `Call` and [`Call::encode`]s it into its per-vCPU [`Frame`]; the host
//! [`Call::decode`]s the frame and answers in `status`/`ret`.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A buffer or string in guest memory named by guest-physical address and
/// length. The host must check it against guest memory before touching it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct GuestSlice {
    /// Guest-physical address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Hypercall numbers (`Frame::nr`).
pub mod nr {
    /// [`Call::Exit`](super::Call::Exit).
    pub const EXIT: u32 = 1;
    /// [`Call::Abort`](super::Call::Abort).
    pub const ABORT: u32 = 2;
    /// [`Call::Write`](super::Call::Write).
    pub const WRITE: u32 = 3;
    /// [`Call::Read`](super::Call::Read).
    pub const READ: u32 = 4;
    /// [`Call::Clock`](super::Call::Clock).
    pub const CLOCK: u32 = 5;
    /// [`Call::Random`](super::Call::Random).
    pub const RANDOM: u32 = 6;
    /// [`Call::Wait`](super::Call::Wait).
    pub const WAIT: u32 = 7;
    /// [`Call::ApfEnable`](super::Call::ApfEnable).
    pub const APF_ENABLE: u32 = 8;
    /// [`crate::Call::Serve`] (embedding, [`crate::embed`]: numbers apart
    /// from the runtime's).
    pub const SERVE: u32 = 30;
    /// [`crate::Call::HostCall`].
    pub const HOST_CALL: u32 = 31;
    /// [`crate::Call::Again`].
    pub const AGAIN: u32 = 32;
    /// [`Call::Wake`](super::Call::Wake).
    pub const WAKE: u32 = 20;
}

/// Clock ids for [`Call::Clock`].
pub mod clock {
    /// Nanoseconds since an arbitrary point, never going backwards.
    pub const MONOTONIC: u32 = 0;
    /// Nanoseconds since the Unix epoch.
    pub const REALTIME: u32 = 1;
}

/// The per-vCPU hypercall frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct Frame {
    /// Hypercall number, see [`nr`].
    pub nr: u32,
    /// Written by the host: 0 on success or a negative [`Errno`].
    pub status: i32,
    /// Arguments, meaning per call.
    pub args: [u64; 6],
    /// Written by the host: primary result.
    pub ret: u64,
    /// Written by the host: secondary result.
    pub ret2: u64,
}

/// Error codes the host writes to `Frame::status`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// Unknown hypercall number or argument value.
    Inval = -1,
    /// A guest address or length is outside guest memory.
    Fault = -2,
    /// Unknown file descriptor.
    BadFd = -3,
    /// The host failed to do it (I/O error); details on the host's stderr.
    Io = -4,
    /// The feature is not offered to this guest.
    NotSupported = -5,
}

impl Errno {
    /// The error a negative frame status stands for; None for a status that is not one.
    pub fn from_status(status: i32) -> Option<Errno> {
        Some(match status {
            -1 => Errno::Inval,
            -2 => Errno::Fault,
            -3 => Errno::BadFd,
            -4 => Errno::Io,
            -5 => Errno::NotSupported,
            _ => return None,
        })
    }
}

/// A hypercall with its typed parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// End the VM; `code` becomes the process exit code. `stdout` is the
    /// guest's last buffered standard output, written before the VM ends
    /// (one exit instead of a write and an exit). Never returns.
    Exit {
        /// The exit code.
        code: i32,
        /// The guest's last buffered stdout.
        stdout: GuestSlice,
    },
    /// End the VM after printing `msg` (UTF-8) on the host's stderr; the
    /// process exits with [`crate::exit::ABORT`]. Never returns.
    Abort {
        /// The message.
        msg: GuestSlice,
    },
    /// Write `buf` to host fd 1 (stdout) or 2 (stderr). `ret` = bytes written.
    Write {
        /// 1 (stdout) or 2 (stderr).
        fd: u32,
        /// The bytes to write.
        buf: GuestSlice,
    },
    /// Read up to `buf.len` bytes from fd 0 (stdin). `ret` = bytes read, 0 at EOF.
    Read {
        /// 0 (stdin).
        fd: u32,
        /// Where the bytes go.
        buf: GuestSlice,
    },
    /// Read a clock (see [`clock`]); `ret` = nanoseconds.
    Clock {
        /// Which clock ([`clock`]).
        clock: u32,
    },
    /// Fill `buf` with random bytes from the host.
    Random {
        /// Where the bytes go.
        buf: GuestSlice,
    },
    /// Halt this vCPU until an interrupt arrives or `timeout_ns` passes
    /// (`u64::MAX`: no timeout). Returns at once if an event is pending, or
    /// (futex-like) if `watch` is non-zero and the u64 at guest address
    /// `watch` no longer equals `expect`: a guest that checked its event
    /// counter, found nothing and then calls Wait cannot miss an event that
    /// arrived in between.
    Wait {
        /// Nanoseconds to wait at most; `u64::MAX` waits without a timeout.
        timeout_ns: u64,
        /// Guest address of a u64 event counter, or 0 for none.
        watch: u64,
        /// The value the guest last saw at `watch`.
        expect: u64,
    },
    /// Enable async page faults for this vCPU: `area` is the guest address
    /// of its 64-byte aligned notification area and `vector` the interrupt
    /// vector for "page ready". Needs `features::ASYNC_PF`.
    ApfEnable {
        /// Guest address of the 64-byte aligned [`crate::apf::ApfArea`].
        area: u64,
        /// Interrupt vector for "page ready".
        vector: u32,
    },
    /// Embedding ([`crate::embed`]): the guest function that ran finished
    /// with `status` (`embed::status`) and the bytes `done` (at the first
    /// Serve: the export list); wait for the next reply, to be written at
    /// the start of `free`. Only a sandbox answers; a plain run gets
    /// `NotSupported`.
    Serve {
        /// How the guest function ended (`embed::status`).
        status: u32,
        /// Its encoded result, error or (READY) export list.
        done: GuestSlice,
        /// Where the next reply goes.
        free: GuestSlice,
    },
    /// Embedding: call the host function requested in `req`
    /// (`embed::encode_request`); the reply goes to the start of `free`.
    HostCall {
        /// The encoded request.
        req: GuestSlice,
        /// Where the reply goes.
        free: GuestSlice,
    },
    /// Embedding: the last reply was `embed::reply::MORE`; write it to the
    /// start of `free` instead, which is at least as large as asked.
    Again {
        /// Where to write the reply.
        free: GuestSlice,
    },
    /// Wake the vCPUs whose bits are set in `vcpus` (bit `i`: vCPU `i`)
    /// from a [`Call::Wait`]: an IPI on x86_64 (an MSI to each one's local
    /// APIC), the launcher's own wake-up on aarch64. Bits of vCPUs that do
    /// not exist are ignored; a vCPU that is not waiting returns from its
    /// next Wait at once or re-checks its watch word. `ret` = vCPUs woken.
    Wake {
        /// Bit `i` set: wake vCPU `i`.
        vcpus: u64,
    },
}

/// Why a frame did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No call has this number.
    UnknownNumber(u32),
    /// An argument does not fit its type (e.g. an fd above u32).
    BadArgument {
        /// The call number.
        nr: u32,
        /// Which of the frame's arguments (0-based).
        index: usize,
    },
}

fn slice(a: u64, b: u64) -> GuestSlice {
    GuestSlice { addr: a, len: b }
}

fn narrow(nr: u32, index: usize, v: u64) -> Result<u32, DecodeError> {
    u32::try_from(v).map_err(|_| DecodeError::BadArgument { nr, index })
}

impl Call {
    /// The hypercall number of this call.
    pub fn nr(&self) -> u32 {
        match self {
            Call::Exit { .. } => nr::EXIT,
            Call::Abort { .. } => nr::ABORT,
            Call::Write { .. } => nr::WRITE,
            Call::Read { .. } => nr::READ,
            Call::Clock { .. } => nr::CLOCK,
            Call::Random { .. } => nr::RANDOM,
            Call::Wait { .. } => nr::WAIT,
            Call::ApfEnable { .. } => nr::APF_ENABLE,
            Call::Serve { .. } => nr::SERVE,
            Call::HostCall { .. } => nr::HOST_CALL,
            Call::Again { .. } => nr::AGAIN,
            Call::Wake { .. } => nr::WAKE,
        }
    }

    /// Build the frame for this call (status and results zeroed).
    pub fn encode(&self) -> Frame {
        let mut args = [0u64; 6];
        match *self {
            Call::Exit { code, stdout } => args[..3].copy_from_slice(&[
                u64::from(code.cast_unsigned()),
                stdout.addr,
                stdout.len,
            ]),
            Call::Abort { msg } => args[..2].copy_from_slice(&[msg.addr, msg.len]),
            Call::Write { fd, buf } | Call::Read { fd, buf } => {
                args[..3].copy_from_slice(&[u64::from(fd), buf.addr, buf.len])
            }
            Call::Clock { clock } => args[0] = u64::from(clock),
            Call::Random { buf } => args[..2].copy_from_slice(&[buf.addr, buf.len]),
            Call::Wait {
                timeout_ns,
                watch,
                expect,
            } => args[..3].copy_from_slice(&[timeout_ns, watch, expect]),
            Call::ApfEnable { area, vector } => {
                args[..2].copy_from_slice(&[area, u64::from(vector)])
            }
            Call::Serve { status, done, free } => args[..5].copy_from_slice(&[
                u64::from(status),
                done.addr,
                done.len,
                free.addr,
                free.len,
            ]),
            Call::HostCall { req, free } => {
                args[..4].copy_from_slice(&[req.addr, req.len, free.addr, free.len])
            }
            Call::Again { free } => args[..2].copy_from_slice(&[free.addr, free.len]),
            Call::Wake { vcpus } => args[0] = vcpus,
        }
        Frame {
            nr: self.nr(),
            status: 0,
            args,
            ret: 0,
            ret2: 0,
        }
    }

    /// Decode a frame read from guest memory. Addresses are *not* checked
    /// here: that needs the guest memory map, and is the host's job.
    pub fn decode(f: &Frame) -> Result<Call, DecodeError> {
        let a = f.args;
        Ok(match f.nr {
            nr::EXIT => Call::Exit {
                code: narrow(f.nr, 0, a[0])?.cast_signed(),
                stdout: slice(a[1], a[2]),
            },
            nr::ABORT => Call::Abort {
                msg: slice(a[0], a[1]),
            },
            nr::WRITE => Call::Write {
                fd: narrow(f.nr, 0, a[0])?,
                buf: slice(a[1], a[2]),
            },
            nr::READ => Call::Read {
                fd: narrow(f.nr, 0, a[0])?,
                buf: slice(a[1], a[2]),
            },
            nr::CLOCK => Call::Clock {
                clock: narrow(f.nr, 0, a[0])?,
            },
            nr::RANDOM => Call::Random {
                buf: slice(a[0], a[1]),
            },
            nr::WAIT => Call::Wait {
                timeout_ns: a[0],
                watch: a[1],
                expect: a[2],
            },
            nr::APF_ENABLE => Call::ApfEnable {
                area: a[0],
                vector: narrow(f.nr, 1, a[1])?,
            },
            nr::SERVE => Call::Serve {
                status: narrow(f.nr, 0, a[0])?,
                done: slice(a[1], a[2]),
                free: slice(a[3], a[4]),
            },
            nr::HOST_CALL => Call::HostCall {
                req: slice(a[0], a[1]),
                free: slice(a[2], a[3]),
            },
            nr::AGAIN => Call::Again {
                free: slice(a[0], a[1]),
            },
            nr::WAKE => Call::Wake { vcpus: a[0] },
            other => return Err(DecodeError::UnknownNumber(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Call; 12] = [
        Call::Exit {
            code: -3,
            stdout: GuestSlice {
                addr: 0x100,
                len: 3,
            },
        },
        Call::Abort {
            msg: GuestSlice {
                addr: 0x1000,
                len: 5,
            },
        },
        Call::Write {
            fd: 2,
            buf: GuestSlice {
                addr: 0x2000,
                len: 7,
            },
        },
        Call::Read {
            fd: 0,
            buf: GuestSlice {
                addr: 0x3000,
                len: 9,
            },
        },
        Call::Clock {
            clock: clock::REALTIME,
        },
        Call::Random {
            buf: GuestSlice {
                addr: 0x4000,
                len: 16,
            },
        },
        Call::Wait {
            timeout_ns: u64::MAX,
            watch: 0x6000,
            expect: 3,
        },
        Call::ApfEnable {
            area: 0x5000,
            vector: 0x40,
        },
        Call::Serve {
            status: 2,
            done: GuestSlice {
                addr: 0x7000,
                len: 4,
            },
            free: GuestSlice {
                addr: 0x8000,
                len: 0x1000,
            },
        },
        Call::HostCall {
            req: GuestSlice {
                addr: 0x9000,
                len: 12,
            },
            free: GuestSlice {
                addr: 0xa000,
                len: 64,
            },
        },
        Call::Again {
            free: GuestSlice {
                addr: 0xb000,
                len: 1 << 20,
            },
        },
        Call::Wake { vcpus: 0b1010 },
    ];

    #[test]
    fn every_call_round_trips() {
        for call in ALL {
            assert_eq!(Call::decode(&call.encode()), Ok(call), "{call:?}");
        }
    }

    #[test]
    fn numbers_are_distinct() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.nr(), b.nr());
            }
        }
    }

    #[test]
    fn unknown_number_and_wide_fd_are_rejected() {
        let f = Frame {
            nr: 999,
            ..Frame::default()
        };
        assert_eq!(Call::decode(&f), Err(DecodeError::UnknownNumber(999)));
        let mut f = Call::Write {
            fd: 1,
            buf: GuestSlice::default(),
        }
        .encode();
        f.args[0] = 1 << 40;
        assert_eq!(
            Call::decode(&f),
            Err(DecodeError::BadArgument {
                nr: nr::WRITE,
                index: 0
            })
        );
    }

    #[test]
    fn errno_round_trips() {
        for e in [
            Errno::Inval,
            Errno::Fault,
            Errno::BadFd,
            Errno::Io,
            Errno::NotSupported,
        ] {
            assert_eq!(Errno::from_status(e as i32), Some(e));
        }
        assert_eq!(Errno::from_status(0), None);
    }
}
