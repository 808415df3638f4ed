//! Serving hypercalls: read the frame, check every guest address, act, answer.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use vessel_abi::{Call, DecodeError, Errno, Frame, GuestSlice};

use crate::memory::GuestRam;
use crate::vm::Outcome;

/// The most bytes one write/read/random hypercall moves.
pub const MAX_IO: u64 = 1 << 20;
/// The longest abort message kept.
const MAX_MSG: u64 = 4096;

/// Where a guest's console goes. The default is the process's stdio; a
/// host program embedding Vessel can capture it instead.
pub trait HostIo: Send {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()>;
    fn read_stdin(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Whether stdout is a terminal: the guest then flushes it per line
    /// instead of per 4 KiB.
    fn stdout_is_terminal(&self) -> bool {
        false
    }
}

/// The launcher process's own stdin/stdout/stderr.
pub struct StdIo;

impl HostIo for StdIo {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        if fd == 1 {
            let mut o = std::io::stdout().lock();
            o.write_all(data)?;
            o.flush()
        } else {
            std::io::stderr().lock().write_all(data)
        }
    }
    fn read_stdin(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::stdin().lock().read(buf)
    }
    fn stdout_is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    }
}

/// Result of one hypercall for the vCPU loop.
pub enum Served {
    /// Answered in the frame: resume the vCPU.
    Resume,
    /// Resume after halting until an event or the timeout (ns); the guest
    /// watched the u64 at the second field, expecting the third.
    Wait(u64, u64, u64),
    /// The frame says success; enable async page faults on this vCPU (the
    /// area and vector are checked). If that fails, the caller overwrites
    /// the frame's status at `frame` with [`Errno::Io`].
    EnableApf { area: u64, vector: u32, frame: u64 },
    /// The VM is over.
    Done(Outcome),
}

pub struct Ctx<'a> {
    pub ram: &'a GuestRam,
    pub io: &'a mut dyn HostIo,
    pub start: std::time::Instant,
    pub features: u64,
}

fn check(ram: &GuestRam, s: GuestSlice) -> Result<(), Errno> {
    if ram.contains(s.addr, s.len) {
        Ok(())
    } else {
        Err(Errno::Fault)
    }
}

/// Serve the hypercall whose frame is at `frame_gpa`.
pub fn serve(ctx: &mut Ctx, frame_gpa: u64) -> Served {
    if !frame_gpa.is_multiple_of(8)
        || !ctx
            .ram
            .contains(frame_gpa, std::mem::size_of::<Frame>() as u64)
    {
        return Served::Done(Outcome::Fault(format!(
            "hypercall frame address {frame_gpa:#x} is not an aligned address in guest RAM"
        )));
    }
    let mut frame: Frame = match ctx.ram.read_pod(frame_gpa) {
        Ok(f) => f,
        Err(e) => return Served::Done(Outcome::Fault(format!("hypercall frame unreadable: {e}"))),
    };
    let mut next = Served::Resume;
    let result = match Call::decode(&frame) {
        Err(DecodeError::UnknownNumber(_)) | Err(DecodeError::BadArgument { .. }) => {
            Err(Errno::Inval)
        }
        Ok(call) => match dispatch(ctx, call) {
            Ok((ret, served)) => {
                next = match served {
                    Served::EnableApf { area, vector, .. } => Served::EnableApf {
                        area,
                        vector,
                        frame: frame_gpa,
                    },
                    other => other,
                };
                Ok(ret)
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok((r1, r2)) => {
            frame.status = 0;
            frame.ret = r1;
            frame.ret2 = r2;
        }
        Err(e) => frame.status = e as i32,
    }
    if let Err(e) = ctx.ram.write_pod(frame_gpa, &frame) {
        return Served::Done(Outcome::Fault(format!("hypercall frame unwritable: {e}")));
    }
    next
}

type Answer = Result<((u64, u64), Served), Errno>;

fn dispatch(ctx: &mut Ctx, call: Call) -> Answer {
    let ok = |r: u64| Ok(((r, 0), Served::Resume));
    match call {
        Call::Exit { code, stdout } => {
            // The guest's last buffered output rides on the exit. An
            // unreadable buffer loses that output, not the exit code.
            if stdout.len > 0 {
                match ctx.ram.read_vec(stdout.addr, stdout.len, MAX_IO) {
                    Ok(bytes) => {
                        let _ = ctx.io.write(1, &bytes);
                    }
                    Err(e) => eprintln!("vessel: guest's final stdout not written: {e}"),
                }
            }
            Ok(((0, 0), Served::Done(Outcome::Exited(code))))
        }
        Call::Abort { msg } => {
            let len = msg.len.min(MAX_MSG);
            check(
                ctx.ram,
                GuestSlice {
                    addr: msg.addr,
                    len,
                },
            )?;
            let bytes = ctx
                .ram
                .read_vec(msg.addr, len, MAX_MSG)
                .map_err(|_| Errno::Fault)?;
            Ok((
                (0, 0),
                Served::Done(Outcome::Aborted(
                    String::from_utf8_lossy(&bytes).into_owned(),
                )),
            ))
        }
        Call::Write { fd, buf } => {
            if fd != 1 && fd != 2 {
                return Err(Errno::BadFd);
            }
            check(ctx.ram, buf)?;
            let len = buf.len.min(MAX_IO);
            let bytes = ctx
                .ram
                .read_vec(buf.addr, len, MAX_IO)
                .map_err(|_| Errno::Fault)?;
            ctx.io.write(fd, &bytes).map_err(|_| Errno::Io)?;
            ok(len)
        }
        Call::Read { fd, buf } => {
            if fd != 0 {
                return Err(Errno::BadFd);
            }
            check(ctx.ram, buf)?;
            let mut tmp = vec![0u8; buf.len.min(MAX_IO) as usize];
            let n = ctx.io.read_stdin(&mut tmp).map_err(|_| Errno::Io)?;
            ctx.ram
                .write(buf.addr, &tmp[..n])
                .map_err(|_| Errno::Fault)?;
            ok(n as u64)
        }
        Call::Clock { clock } => match clock {
            vessel_abi::clock::MONOTONIC => ok(ctx.start.elapsed().as_nanos() as u64),
            vessel_abi::clock::REALTIME => ok(SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)),
            _ => Err(Errno::Inval),
        },
        Call::Random { buf } => {
            check(ctx.ram, buf)?;
            let mut tmp = vec![0u8; buf.len.min(MAX_IO) as usize];
            getrandom(&mut tmp).map_err(|_| Errno::Io)?;
            ctx.ram.write(buf.addr, &tmp).map_err(|_| Errno::Fault)?;
            ok(tmp.len() as u64)
        }
        Call::Wait {
            timeout_ns,
            watch,
            expect,
        } => {
            if watch != 0 {
                if watch % 8 != 0 {
                    return Err(Errno::Inval);
                }
                check(
                    ctx.ram,
                    GuestSlice {
                        addr: watch,
                        len: 8,
                    },
                )?;
                let mut b = [0u8; 8];
                ctx.ram.read(watch, &mut b).map_err(|_| Errno::Fault)?;
                if u64::from_le_bytes(b) != expect {
                    return ok(1); // an event came in before the call: no halt
                }
            }
            Ok(((0, 0), Served::Wait(timeout_ns, watch, expect)))
        }
        Call::ApfEnable { area, vector } => {
            if ctx.features & vessel_abi::features::ASYNC_PF == 0 {
                return Err(Errno::NotSupported);
            }
            let size = std::mem::size_of::<vessel_abi::apf::ApfArea>() as u64;
            if area % size != 0 || !vessel_abi::apf::vector_ok(vector) {
                return Err(Errno::Inval);
            }
            check(
                ctx.ram,
                GuestSlice {
                    addr: area,
                    len: size,
                },
            )?;
            Ok((
                (0, 0),
                Served::EnableApf {
                    area,
                    vector,
                    frame: 0,
                },
            ))
        }
    }
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Capture {
        out: Vec<(u32, Vec<u8>)>,
    }
    impl HostIo for Capture {
        fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
            self.out.push((fd, data.to_vec()));
            Ok(())
        }
        fn read_stdin(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf[..3].copy_from_slice(b"abc");
            Ok(3)
        }
    }

    fn run(ram: &GuestRam, io: &mut Capture, call: Call) -> (Frame, Served) {
        ram.write_pod(0x100, &call.encode()).unwrap();
        let mut ctx = Ctx {
            ram,
            io,
            start: std::time::Instant::now(),
            features: 0,
        };
        let s = serve(&mut ctx, 0x100);
        (ram.read_pod(0x100).unwrap(), s)
    }

    #[test]
    fn write_reaches_the_host_and_bad_buffers_get_fault() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        ram.write(0x2000, b"hi there").unwrap();
        let mut io = Capture::default();
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Write {
                fd: 1,
                buf: GuestSlice {
                    addr: 0x2000,
                    len: 8,
                },
            },
        );
        assert_eq!((f.status, f.ret), (0, 8));
        assert_eq!(io.out, vec![(1, b"hi there".to_vec())]);
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Write {
                fd: 1,
                buf: GuestSlice {
                    addr: 0xfff0,
                    len: 0x20,
                },
            },
        );
        assert_eq!(f.status, Errno::Fault as i32);
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Write {
                fd: 1,
                buf: GuestSlice {
                    addr: u64::MAX - 1,
                    len: 4,
                },
            },
        );
        assert_eq!(f.status, Errno::Fault as i32);
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Write {
                fd: 7,
                buf: GuestSlice {
                    addr: 0x2000,
                    len: 1,
                },
            },
        );
        assert_eq!(f.status, Errno::BadFd as i32);
        assert_eq!(io.out.len(), 1);
    }

    #[test]
    fn unknown_calls_get_inval_and_bad_frames_end_the_vm() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        let mut io = Capture::default();
        ram.write_pod(
            0x100,
            &Frame {
                nr: 4242,
                ..Default::default()
            },
        )
        .unwrap();
        let mut ctx = Ctx {
            ram: &ram,
            io: &mut io,
            start: std::time::Instant::now(),
            features: 0,
        };
        assert!(matches!(serve(&mut ctx, 0x100), Served::Resume));
        assert_eq!(
            ram.read_pod::<Frame>(0x100).unwrap().status,
            Errno::Inval as i32
        );
        assert!(matches!(
            serve(&mut ctx, 0xfffc),
            Served::Done(Outcome::Fault(_))
        ));
        assert!(matches!(
            serve(&mut ctx, 0x101),
            Served::Done(Outcome::Fault(_))
        ));
    }

    #[test]
    fn exit_abort_read_random_and_clock() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        let mut io = Capture::default();
        ram.write(0x3100, b"bye\n").unwrap();
        let stdout = GuestSlice {
            addr: 0x3100,
            len: 4,
        };
        let (_, s) = run(&ram, &mut io, Call::Exit { code: 7, stdout });
        assert_eq!(
            io.out.last(),
            Some(&(1, b"bye\n".to_vec())),
            "final stdout rides on the exit"
        );
        assert!(matches!(s, Served::Done(Outcome::Exited(7))));
        ram.write(0x3000, b"boom").unwrap();
        let (_, s) = run(
            &ram,
            &mut io,
            Call::Abort {
                msg: GuestSlice {
                    addr: 0x3000,
                    len: 4,
                },
            },
        );
        assert!(matches!(s, Served::Done(Outcome::Aborted(ref m)) if m == "boom"));
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Read {
                fd: 0,
                buf: GuestSlice {
                    addr: 0x4000,
                    len: 16,
                },
            },
        );
        assert_eq!((f.status, f.ret), (0, 3));
        assert_eq!(ram.read_vec(0x4000, 3, 3).unwrap(), b"abc");
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Random {
                buf: GuestSlice {
                    addr: 0x5000,
                    len: 64,
                },
            },
        );
        assert_eq!((f.status, f.ret), (0, 64));
        assert_ne!(ram.read_vec(0x5000, 64, 64).unwrap(), vec![0u8; 64]);
        let (f, _) = run(
            &ram,
            &mut io,
            Call::Clock {
                clock: vessel_abi::clock::REALTIME,
            },
        );
        assert!(f.ret > 1_700_000_000_000_000_000);
        let (f, _) = run(&ram, &mut io, Call::Clock { clock: 9 });
        assert_eq!(f.status, Errno::Inval as i32);
    }

    #[test]
    fn wait_is_futex_like_and_apf_enable_checks_its_arguments() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        let mut io = Capture::default();
        ram.write(0x6000, &5u64.to_le_bytes()).unwrap();
        let wait = |watch, expect| Call::Wait {
            timeout_ns: 10,
            watch,
            expect,
        };
        let (_, s) = run(&ram, &mut io, wait(0x6000, 5));
        assert!(matches!(s, Served::Wait(10, ..)), "unchanged counter: halt");
        let (f, s) = run(&ram, &mut io, wait(0x6000, 4));
        assert!(
            matches!(s, Served::Resume) && f.ret == 1,
            "changed: no halt"
        );
        let (_, s) = run(&ram, &mut io, wait(0, 0));
        assert!(matches!(s, Served::Wait(10, ..)));
        let (f, _) = run(&ram, &mut io, wait(0xfffc, 0));
        assert_eq!(f.status, Errno::Inval as i32);
        let (f, _) = run(&ram, &mut io, wait(0x10000, 0));
        assert_eq!(f.status, Errno::Fault as i32);
        // features == 0 in these tests: not offered.
        let (f, _) = run(
            &ram,
            &mut io,
            Call::ApfEnable {
                area: 0x7000,
                vector: 0x40,
            },
        );
        assert_eq!(f.status, Errno::NotSupported as i32);
        let mut ctx = Ctx {
            ram: &ram,
            io: &mut io,
            start: std::time::Instant::now(),
            features: vessel_abi::features::ASYNC_PF,
        };
        for (area, vector, want) in [
            (0x7000, 0x40, 0),
            (0x7008, 0x40, Errno::Inval as i32),
            (0x7000, 14, Errno::Inval as i32),
            (0xffc0 + 0x40, 0x40, Errno::Fault as i32),
        ] {
            ctx.ram
                .write_pod(0x100, &Call::ApfEnable { area, vector }.encode())
                .unwrap();
            let s = serve(&mut ctx, 0x100);
            let f: Frame = ctx.ram.read_pod(0x100).unwrap();
            assert_eq!(f.status, want, "{area:#x} {vector}");
            if want == 0 {
                assert!(matches!(
                    s,
                    Served::EnableApf {
                        area: 0x7000,
                        vector: 0x40,
                        frame: 0x100
                    }
                ));
            }
        }
    }
}
