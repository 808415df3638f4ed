//! Serving hypercalls: read the frame, check every guest address, act,
//! answer once.
//!
//! [`serve`] reads the frame the guest stored the address of, decodes it
//! into a typed [`Call`], runs its handler and writes the answer (status and
//! return values) into the frame once, after the action completed. What a
//! call needs from the vCPU that made it (halting, async-PF registration)
//! it asks through the [`Vcpu`] trait, so a new call is a new arm here and
//! never touches the vCPU loop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vessel_abi::{Call, Errno, Frame, GuestSlice};

use crate::console::HostIo;
use crate::memory::GuestRam;
use crate::outcome::{Fault, FaultKind, Outcome, StopReason};

/// The most bytes one write/read/random hypercall moves.
pub const MAX_IO: u64 = 1 << 20;
/// The longest abort message kept.
pub const MAX_MSG: u64 = 4096;

/// What serving a call needs from the vCPU that made it.
pub trait Vcpu {
    /// Register the guest's async-PF `area` and `vector` (both checked).
    fn enable_apf(&mut self, area: u64, vector: u32) -> crate::Result<()>;
    /// Block or halt until an event, until `timeout` passes (None: no
    /// limit), or (where the launcher blocks) until the u64 at `watch`
    /// (checked; 0: none) no longer equals `expect`.
    fn wait(&mut self, timeout: Option<Duration>, watch: u64, expect: u64) -> crate::Result<()>;
    /// This vCPU's index (which I/O ring is its own).
    fn index(&self) -> usize {
        0
    }
    /// Whether the VM is being stopped (a waiting RingEnter returns).
    fn stopping(&self) -> bool {
        false
    }
    /// Wake the vCPUs named by the bits of `vcpus` from their Wait; returns
    /// how many exist of those named.
    fn wake(&mut self, vcpus: u64) -> crate::Result<u64>;
}

/// What the vCPU loop does after a hypercall.
#[derive(Debug)]
pub enum Served {
    /// The frame holds the answer: resume the vCPU.
    Resume,
    /// The VM is over.
    Done(Outcome),
    /// An embedding call (`Serve`, `HostCall`, `Again`) for the sandbox
    /// running the VM; its frame at `frame` is not answered yet.
    Embed {
        /// The frame's guest address.
        frame: u64,
        /// The call, decoded.
        call: Call,
    },
}

/// What every call may use.
pub struct Ctx<'a> {
    /// Guest RAM.
    pub ram: &'a GuestRam,
    /// Where console I/O goes.
    pub io: &'a mut dyn HostIo,
    /// When the run started (the monotonic clock's zero).
    pub start: std::time::Instant,
    /// The feature bits offered in BootInfo.
    pub features: u64,
    /// Set when a console write failed (reported once on stderr).
    pub output_lost: bool,
    /// The I/O ring and file server.
    pub io_server: &'a crate::ring::IoServer,
    /// Calls and bytes, for `--stats`.
    pub counts: crate::stats::CallCounts,
    /// A sandbox runs the VM: embedding calls go to it (else they get
    /// `NotSupported`).
    pub embed: bool,
}

impl Ctx<'_> {
    /// A failed host write of guest output: say it once; a closed pipe
    /// (EPIPE) ends the VM quietly, as the shell convention wants.
    fn output_failed(&mut self, fd: u32, e: &std::io::Error) -> Option<Outcome> {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Some(Outcome::Stopped(StopReason::BrokenPipe, Duration::ZERO));
        }
        if e.kind() != std::io::ErrorKind::Interrupted && !self.output_lost {
            let name = if fd == 1 { "stdout" } else { "stderr" };
            eprintln!("vessel: guest output lost: writing the guest's {name}: {e}");
        }
        self.output_lost = true;
        None
    }
}

/// A handler's answer: return values for the frame, or an error code; and
/// whether the VM goes on.
type Answer = Result<((u64, u64), Served), Errno>;

fn ok(r: u64) -> Answer {
    Ok(((r, 0), Served::Resume))
}

fn check(ram: &GuestRam, s: GuestSlice) -> Result<(), Errno> {
    if ram.contains(s.addr, s.len) {
        Ok(())
    } else {
        Err(Errno::Fault)
    }
}

fn bad_frame(what: String) -> Served {
    Served::Done(Outcome::Fault(Fault::new(FaultKind::Hypercall, what)))
}

/// Serve the hypercall whose frame is at `frame_gpa`.
pub fn serve(ctx: &mut Ctx, vcpu: &mut dyn Vcpu, frame_gpa: u64) -> Served {
    let size = std::mem::size_of::<Frame>() as u64;
    if !frame_gpa.is_multiple_of(8) || !ctx.ram.contains(frame_gpa, size) {
        return bad_frame(format!(
            "hypercall frame address {frame_gpa:#x} is not an aligned address in guest RAM"
        ));
    }
    let mut frame: Frame = match ctx.ram.read_pod(frame_gpa) {
        Ok(f) => f,
        Err(e) => return bad_frame(format!("hypercall frame unreadable: {e}")),
    };
    let (result, next) = match Call::decode(&frame) {
        Ok(call @ (Call::Serve { .. } | Call::HostCall { .. } | Call::Again { .. }))
            if ctx.embed =>
        {
            return Served::Embed {
                frame: frame_gpa,
                call,
            };
        }
        Err(_) => (Err(Errno::Inval), Served::Resume),
        Ok(call) => {
            ctx.counts.call(call.nr());
            match dispatch(ctx, vcpu, call) {
                Ok((ret, next)) => (Ok(ret), next),
                Err(e) => (Err(e), Served::Resume),
            }
        }
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
        return bad_frame(format!("hypercall frame unwritable: {e}"));
    }
    next
}

fn dispatch(ctx: &mut Ctx, vcpu: &mut dyn Vcpu, call: Call) -> Answer {
    match call {
        Call::Exit { code, stdout } => exit(ctx, code, stdout),
        Call::Abort { msg } => abort(ctx, msg),
        Call::Write { fd, buf } => write(ctx, fd, buf),
        Call::Read { fd, buf } => read(ctx, fd, buf),
        Call::Clock { clock } => clock_now(ctx, clock),
        Call::Random { buf } => random(ctx, buf),
        Call::Wait {
            timeout_ns,
            watch,
            expect,
        } => wait(ctx, vcpu, timeout_ns, watch, expect),
        Call::ApfEnable { area, vector } => apf_enable(ctx, vcpu, area, vector),
        Call::RingSetup { ring, entries } => ctx
            .io_server
            .setup(vcpu.index(), ring, entries)
            .and_then(|()| ok(0)),
        Call::RingEnter {
            min_complete,
            timeout_ns,
        } => ring_enter(ctx, vcpu, min_complete, timeout_ns),
        Call::Wake { vcpus } => wake(vcpu, vcpus),
        // Only a sandbox (`ctx.embed`, handled in `serve`) answers these.
        Call::Serve { .. } | Call::HostCall { .. } | Call::Again { .. } => Err(Errno::NotSupported),
    }
}

/// Take the ring's submissions and wait for completions; a guest past
/// `--max-output` ends here.
fn ring_enter(ctx: &mut Ctx, vcpu: &mut dyn Vcpu, min_complete: u32, timeout_ns: u64) -> Answer {
    let stopping = || vcpu.stopping();
    let (taken, waiting) =
        ctx.io_server
            .enter(vcpu.index(), ctx.io, min_complete, timeout_ns, &stopping)?;
    if let Some(cap) = over_cap(ctx) {
        return Ok(((taken, waiting), cap));
    }
    Ok(((taken, waiting), Served::Resume))
}

/// The end of the VM once the guest wrote past `--max-output`.
fn over_cap(ctx: &Ctx) -> Option<Served> {
    let b = ctx.io_server.budget();
    b.exceeded()
        .then(|| Served::Done(Outcome::OutputCap(b.max())))
}

/// The guest's last buffered output rides on the exit. An unreadable
/// buffer loses that output, not the exit code.
fn exit(ctx: &mut Ctx, code: i32, stdout: GuestSlice) -> Answer {
    if stdout.len > 0 {
        if !ctx.io_server.budget().take(stdout.len) {
            return Ok(((0, 0), over_cap(ctx).unwrap_or(Served::Resume)));
        }
        match ctx.ram.read_vec(stdout.addr, stdout.len, MAX_IO) {
            Ok(bytes) => {
                ctx.counts.bytes_written += bytes.len() as u64;
                if let Err(e) = ctx.io.write(1, &bytes) {
                    if let Some(o) = ctx.output_failed(1, &e) {
                        return Ok(((0, 0), Served::Done(o)));
                    }
                }
            }
            Err(e) => eprintln!("vessel: guest's final stdout not written: {e}"),
        }
    }
    let end = if ctx.output_lost {
        Outcome::OutputLost(code)
    } else {
        Outcome::Exited(code)
    };
    Ok(((0, 0), Served::Done(end)))
}

fn abort(ctx: &mut Ctx, msg: GuestSlice) -> Answer {
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
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if msg.len > MAX_MSG {
        text.push_str(&format!(" [cut: {} of {} bytes shown]", MAX_MSG, msg.len));
    }
    Ok(((0, 0), Served::Done(Outcome::Aborted(text))))
}

fn write(ctx: &mut Ctx, fd: u32, buf: GuestSlice) -> Answer {
    if fd != 1 && fd != 2 {
        return Err(Errno::BadFd);
    }
    check(ctx.ram, buf)?;
    let len = buf.len.min(MAX_IO);
    if !ctx.io_server.budget().take(len) {
        return Ok(((0, 0), over_cap(ctx).unwrap_or(Served::Resume)));
    }
    let bytes = ctx
        .ram
        .read_vec(buf.addr, len, MAX_IO)
        .map_err(|_| Errno::Fault)?;
    match ctx.io.write(fd, &bytes) {
        Ok(()) => {
            ctx.counts.bytes_written += len;
            ok(len)
        }
        Err(e) => match ctx.output_failed(fd, &e) {
            Some(o) => Ok(((0, 0), Served::Done(o))),
            None => Err(Errno::Io),
        },
    }
}

fn read(ctx: &mut Ctx, fd: u32, buf: GuestSlice) -> Answer {
    if fd != 0 {
        return Err(Errno::BadFd);
    }
    check(ctx.ram, buf)?;
    let mut tmp = vec![0u8; buf.len.min(MAX_IO) as usize];
    let n = ctx.io.read_stdin(&mut tmp).map_err(|_| Errno::Io)?;
    ctx.counts.bytes_read += n as u64;
    ctx.ram
        .write(buf.addr, &tmp[..n])
        .map_err(|_| Errno::Fault)?;
    ok(n as u64)
}

fn clock_now(ctx: &mut Ctx, clock: u32) -> Answer {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    match clock {
        vessel_abi::clock::MONOTONIC => ok(ns(ctx.start.elapsed())),
        vessel_abi::clock::REALTIME => ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(ns)
            .unwrap_or(0)),
        _ => Err(Errno::Inval),
    }
}

fn random(ctx: &mut Ctx, buf: GuestSlice) -> Answer {
    check(ctx.ram, buf)?;
    let mut tmp = vec![0u8; buf.len.min(MAX_IO) as usize];
    getrandom(&mut tmp).map_err(|_| Errno::Io)?;
    ctx.ram.write(buf.addr, &tmp).map_err(|_| Errno::Fault)?;
    ok(tmp.len() as u64)
}

/// Futex-like: with a `watch` address whose u64 no longer equals `expect`
/// the event already came, so return 1 without waiting; else wait (0).
fn wait(ctx: &mut Ctx, vcpu: &mut dyn Vcpu, timeout_ns: u64, watch: u64, expect: u64) -> Answer {
    if watch != 0 {
        if !watch.is_multiple_of(8) {
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
            return ok(1);
        }
    }
    if timeout_ns == 0 {
        return ok(0);
    }
    let timeout = (timeout_ns != u64::MAX).then(|| Duration::from_nanos(timeout_ns));
    vcpu.wait(timeout, watch, expect).map_err(|e| {
        eprintln!("vessel: wait: {e}");
        Errno::Io
    })?;
    ok(0)
}

fn wake(vcpu: &mut dyn Vcpu, vcpus: u64) -> Answer {
    let n = vcpu.wake(vcpus).map_err(|e| {
        eprintln!("vessel: wake: {e}");
        Errno::Io
    })?;
    ok(n)
}

fn apf_enable(ctx: &mut Ctx, vcpu: &mut dyn Vcpu, area: u64, vector: u32) -> Answer {
    if ctx.features & vessel_abi::features::ASYNC_PF == 0 {
        return Err(Errno::NotSupported);
    }
    let size = std::mem::size_of::<vessel_abi::apf::ApfArea>() as u64;
    if !area.is_multiple_of(size) || !vessel_abi::apf::vector_ok(vector) {
        return Err(Errno::Inval);
    }
    check(
        ctx.ram,
        GuestSlice {
            addr: area,
            len: size,
        },
    )?;
    vcpu.enable_apf(area, vector).map_err(|e| {
        eprintln!("vessel: enabling async page faults: {e}");
        Errno::Io
    })?;
    ok(0)
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
        done += n.cast_unsigned();
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

    /// Records what the calls asked of the vCPU.
    #[derive(Default)]
    struct FakeVcpu {
        waits: Vec<(Option<Duration>, u64, u64)>,
        apf: Vec<(u64, u32)>,
        wakes: Vec<u64>,
        fail_apf: bool,
    }
    impl Vcpu for FakeVcpu {
        fn enable_apf(&mut self, area: u64, vector: u32) -> crate::Result<()> {
            if self.fail_apf {
                return Err(crate::Error::Kvm {
                    what: "KVM_SET_MSRS (async page faults)".into(),
                    source: kvm_ioctls::Error::new(libc::EINVAL),
                });
            }
            self.apf.push((area, vector));
            Ok(())
        }
        fn wait(&mut self, t: Option<Duration>, watch: u64, expect: u64) -> crate::Result<()> {
            self.waits.push((t, watch, expect));
            Ok(())
        }
        fn wake(&mut self, vcpus: u64) -> crate::Result<u64> {
            self.wakes.push(vcpus);
            Ok(u64::from((vcpus & 0b11).count_ones()))
        }
    }

    fn run_on(
        ram: &GuestRam,
        io: &mut Capture,
        vcpu: &mut FakeVcpu,
        call: Call,
    ) -> (Frame, Served) {
        ram.write_pod(0x100, &call.encode()).unwrap();
        let mut ctx = Ctx {
            ram,
            io,
            start: std::time::Instant::now(),
            output_lost: false,
            embed: false,
            features: vessel_abi::features::ASYNC_PF,
            io_server: &test_server(ram),
            counts: Default::default(),
        };
        let s = serve(&mut ctx, vcpu, 0x100);
        (ram.read_pod(0x100).unwrap(), s)
    }

    /// An I/O server with no directories over `ram`.
    pub(crate) fn test_server(ram: &GuestRam) -> crate::ring::IoServer {
        let budget = std::sync::Arc::new(crate::fs::OutputBudget::new(1 << 20));
        crate::ring::IoServer::new(
            ram.clone(),
            crate::fs::Fs::new(vec![], budget.clone()),
            budget,
            vec![],
            1,
            Duration::ZERO,
        )
    }

    fn run(ram: &GuestRam, io: &mut Capture, call: Call) -> (Frame, Served) {
        run_on(ram, io, &mut FakeVcpu::default(), call)
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
            output_lost: false,
            embed: false,
            features: 0,
            io_server: &test_server(&ram),
            counts: Default::default(),
        };
        let vcpu = &mut FakeVcpu::default();
        assert!(matches!(serve(&mut ctx, vcpu, 0x100), Served::Resume));
        assert_eq!(
            ram.read_pod::<Frame>(0x100).unwrap().status,
            Errno::Inval as i32
        );
        assert!(matches!(
            serve(&mut ctx, vcpu, 0xfffc),
            Served::Done(Outcome::Fault(_))
        ));
        assert!(matches!(
            serve(&mut ctx, vcpu, 0x101),
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
    fn wake_reaches_the_vcpu_and_answers_how_many_exist() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        let mut io = Capture::default();
        let mut vcpu = FakeVcpu::default();
        let (f, s) = run_on(&ram, &mut io, &mut vcpu, Call::Wake { vcpus: 0b110 });
        assert!(matches!(s, Served::Resume));
        assert_eq!((f.status, f.ret), (0, 1));
        assert_eq!(vcpu.wakes, vec![0b110]);
    }

    #[test]
    fn wait_is_futex_like_and_apf_enable_checks_its_arguments() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        let mut io = Capture::default();
        let mut vcpu = FakeVcpu::default();
        ram.write(0x6000, &5u64.to_le_bytes()).unwrap();
        let wait = |watch, expect| Call::Wait {
            timeout_ns: 10,
            watch,
            expect,
        };
        let (f, _) = run_on(&ram, &mut io, &mut vcpu, wait(0x6000, 5));
        assert_eq!((f.status, f.ret), (0, 0));
        assert_eq!(
            vcpu.waits,
            vec![(Some(Duration::from_nanos(10)), 0x6000, 5)],
            "unchanged counter: the vCPU waits"
        );
        let (f, _) = run_on(&ram, &mut io, &mut vcpu, wait(0x6000, 4));
        assert_eq!(f.ret, 1, "changed: no wait");
        assert_eq!(vcpu.waits.len(), 1);
        run_on(&ram, &mut io, &mut vcpu, wait(0, 0));
        assert_eq!(vcpu.waits.len(), 2);
        let forever = Call::Wait {
            timeout_ns: u64::MAX,
            watch: 0,
            expect: 0,
        };
        run_on(&ram, &mut io, &mut vcpu, forever);
        assert_eq!(vcpu.waits[2].0, None, "u64::MAX: no time limit");
        let (f, _) = run(&ram, &mut io, wait(0xfffc, 0));
        assert_eq!(f.status, Errno::Inval as i32);
        let (f, _) = run(&ram, &mut io, wait(0x10000, 0));
        assert_eq!(f.status, Errno::Fault as i32);
        let mut ctx = Ctx {
            ram: &ram,
            io: &mut io,
            start: std::time::Instant::now(),
            output_lost: false,
            embed: false,
            features: 0,
            io_server: &test_server(&ram),
            counts: Default::default(),
        };
        ctx.ram
            .write_pod(
                0x100,
                &Call::ApfEnable {
                    area: 0x7000,
                    vector: 0x40,
                }
                .encode(),
            )
            .unwrap();
        serve(&mut ctx, &mut vcpu, 0x100);
        let f: Frame = ctx.ram.read_pod(0x100).unwrap();
        assert_eq!(f.status, Errno::NotSupported as i32, "not offered");
        for (area, vector, want) in [
            (0x7000, 0x40, 0),
            (0x7008, 0x40, Errno::Inval as i32),
            (0x7000, 14, Errno::Inval as i32),
            (0xffc0 + 0x40, 0x40, Errno::Fault as i32),
        ] {
            let (f, _) = run_on(&ram, &mut io, &mut vcpu, Call::ApfEnable { area, vector });
            assert_eq!(f.status, want, "{area:#x} {vector}");
        }
        assert_eq!(
            vcpu.apf,
            vec![(0x7000, 0x40)],
            "only the good area reached the vCPU"
        );
        vcpu.fail_apf = true;
        let (f, _) = run_on(
            &ram,
            &mut io,
            &mut vcpu,
            Call::ApfEnable {
                area: 0x7000,
                vector: 0x40,
            },
        );
        assert_eq!(
            f.status,
            Errno::Io as i32,
            "a failed enable is answered once, as Io"
        );
    }
}
