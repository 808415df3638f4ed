//! `hostile DIR`: bad requests, old calls and new ones, each with the error
//! the ABI documents. Prints `hostile CASE: ok` or `hostile CASE: FAIL
//! got .. want ..` per case, then `hostile: N cases, M failed`, then checks
//! that the launcher still serves a good request. DIR must be writable and
//! hold a file `f` (readable) and a directory `sub` with one file.

use alloc::format;
use alloc::vec::Vec;

use guest_rt::abi::fs::{open, MAX_HANDLES};
use guest_rt::abi::ring::{op, Sqe};
use guest_rt::abi::{nr, Errno, Frame, GuestSlice};
use guest_rt::fs::{self, File};
use guest_rt::{hypercall, println, ring};

struct Suite {
    cases: usize,
    failed: usize,
}

type Got = Result<u64, Errno>;

impl Suite {
    fn case(&mut self, name: &str, got: Got, want: Result<(), Errno>) {
        self.cases += 1;
        let ok = match (got, want) {
            (Ok(_), Ok(())) => true,
            (Err(g), Err(w)) => g == w,
            _ => false,
        };
        if ok {
            println!("hostile {name}: ok");
        } else {
            self.failed += 1;
            println!("hostile {name}: FAIL got {got:?} want {want:?}");
            guest_rt::eprintln!("hostile {name}: FAIL got {got:?} want {want:?}");
        }
    }
}

fn raw(nr: u32, args: [u64; 6]) -> Got {
    let f = hypercall::call_frame(Frame {
        nr,
        args,
        ..Frame::default()
    });
    if f.status == 0 {
        Ok(f.ret)
    } else {
        Err(Errno::from_status(f.status).unwrap_or(Errno::Io))
    }
}

fn s(addr: u64, len: u64) -> GuestSlice {
    GuestSlice { addr, len }
}

fn p(path: &str) -> GuestSlice {
    hypercall::slice(path.as_bytes())
}

fn sqe(op: u32) -> Sqe {
    Sqe {
        op,
        ..Sqe::default()
    }
}

const FAR: u64 = 0xdead_0000_0000;

/// Old calls with bad arguments, and ring registration, before any ring use.
fn calls(t: &mut Suite) {
    let buf = [0u8; 16];
    let b = buf.as_ptr() as u64;
    t.case("unknown-number", raw(999, [0; 6]), Err(Errno::Inval));
    t.case("number-zero", raw(0, [0; 6]), Err(Errno::Inval));
    t.case("number-max", raw(u32::MAX, [0; 6]), Err(Errno::Inval));
    t.case(
        "write-len-max",
        raw(nr::WRITE, [1, b, u64::MAX, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "write-wrapping",
        raw(nr::WRITE, [1, u64::MAX - 1, 4, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "write-outside",
        raw(nr::WRITE, [1, FAR, 4, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "write-bad-fd",
        raw(nr::WRITE, [7, b, 1, 0, 0, 0]),
        Err(Errno::BadFd),
    );
    t.case(
        "write-wide-fd",
        raw(nr::WRITE, [1 << 40, b, 1, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "read-outside",
        raw(nr::READ, [0, FAR, 4, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "read-bad-fd",
        raw(nr::READ, [5, b, 4, 0, 0, 0]),
        Err(Errno::BadFd),
    );
    t.case(
        "random-len-max",
        raw(nr::RANDOM, [b, u64::MAX, 0, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "random-outside",
        raw(nr::RANDOM, [FAR, 8, 0, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "clock-bad-id",
        raw(nr::CLOCK, [9, 0, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "wait-unaligned",
        raw(nr::WAIT, [0, b + 1, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "wait-outside",
        raw(nr::WAIT, [0, FAR, 0, 0, 0, 0]),
        Err(Errno::Fault),
    );
    t.case(
        "ring-enter-unset",
        raw(nr::RING_ENTER, [0, 0, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    let ring_at = (b + 63) & !63;
    t.case(
        "ring-setup-3",
        raw(nr::RING_SETUP, [ring_at, 3, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "ring-setup-0",
        raw(nr::RING_SETUP, [ring_at, 0, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "ring-setup-huge",
        raw(nr::RING_SETUP, [ring_at, 1 << 13, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "ring-setup-wide",
        raw(nr::RING_SETUP, [ring_at, 1 << 33, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "ring-setup-unaligned",
        raw(nr::RING_SETUP, [ring_at + 8, 4, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "ring-setup-outside",
        raw(nr::RING_SETUP, [FAR, 4, 0, 0, 0, 0]),
        Err(Errno::Fault),
    );
    let boot = hypercall::boot_info_addr() & !63;
    t.case(
        "ring-setup-on-bootinfo",
        raw(nr::RING_SETUP, [boot, 4, 0, 0, 0, 0]),
        Err(Errno::Fault),
    );
}

/// Ring requests with bad paths and flags.
fn paths(t: &mut Suite, dir: &str) {
    let open_p = |path: GuestSlice, flags: u32| {
        ring::call(Sqe {
            op: op::OPEN,
            flags,
            a: path,
            ..Sqe::default()
        })
    };
    let f = format!("{dir}/f");
    let long = format!("{dir}/{}", "a".repeat(64 << 10));
    let bad_utf8 = [b'/', b'd', 0xff, 0xfe];
    let nul = format!("{dir}/a\0b");
    t.case("op-unknown", ring::call(sqe(999)), Err(Errno::Inval));
    t.case("op-max", ring::call(sqe(u32::MAX)), Err(Errno::Inval));
    t.case(
        "path-outside-ram",
        open_p(s(FAR, 8), open::READ),
        Err(Errno::Fault),
    );
    t.case(
        "path-len-max",
        open_p(s(p(&f).addr, u64::MAX), open::READ),
        Err(Errno::NameTooLong),
    );
    t.case(
        "path-64k",
        open_p(p(&long), open::READ),
        Err(Errno::NameTooLong),
    );
    t.case(
        "path-not-utf8",
        open_p(hypercall::slice(&bad_utf8), open::READ),
        Err(Errno::Inval),
    );
    t.case("path-nul", open_p(p(&nul), open::READ), Err(Errno::Inval));
    t.case(
        "path-relative",
        open_p(p("f"), open::READ),
        Err(Errno::Inval),
    );
    t.case(
        "path-outside-dirs",
        open_p(p("/etc/passwd"), open::READ),
        Err(Errno::NotFound),
    );
    t.case(
        "path-dotdot",
        open_p(p(&format!("{dir}/../../etc/passwd")), open::READ),
        Err(Errno::PermissionDenied),
    );
    t.case(
        "path-proc",
        open_p(p("/proc/self/mem"), open::READ),
        Err(Errno::NotFound),
    );
    t.case(
        "open-flags-unknown",
        open_p(p(&f), 1 << 20),
        Err(Errno::Inval),
    );
    t.case("open-flags-none", open_p(p(&f), 0), Err(Errno::Inval));
    t.case(
        "open-dir-for-write",
        open_p(p(dir), open::DIRECTORY | open::WRITE),
        Err(Errno::Inval),
    );
    t.case(
        "open-file-as-dir",
        open_p(p(&f), open::DIRECTORY),
        Err(Errno::NotADirectory),
    );
    t.case(
        "open-dir-as-file",
        open_p(p(dir), open::READ),
        Err(Errno::IsADirectory),
    );
    t.case(
        "open-create-new-exists",
        open_p(p(&f), open::WRITE | open::CREATE_NEW),
        Err(Errno::AlreadyExists),
    );
    t.case(
        "stat-missing",
        fs::metadata(format!("{dir}/nope"))
            .map(|_| 0)
            .map_err(errno),
        Err(Errno::NotFound),
    );
    t.case(
        "mkdir-root",
        path_op(op::MKDIR, dir),
        Err(Errno::PermissionDenied),
    );
    t.case(
        "mkdir-exists",
        path_op(op::MKDIR, &format!("{dir}/sub")),
        Err(Errno::AlreadyExists),
    );
    t.case(
        "rmdir-not-empty",
        path_op(op::RMDIR, &format!("{dir}/sub")),
        Err(Errno::NotEmpty),
    );
    t.case(
        "unlink-missing",
        path_op(op::UNLINK, &format!("{dir}/nope")),
        Err(Errno::NotFound),
    );
    t.case(
        "unlink-dotdot",
        path_op(op::UNLINK, &format!("{dir}/sub/..")),
        Err(Errno::PermissionDenied),
    );
    t.case(
        "rename-outside",
        rename(&f, "/elsewhere/x"),
        Err(Errno::NotFound),
    );
    t.case(
        "rename-escape",
        rename(&f, &format!("{dir}/../x")),
        Err(Errno::PermissionDenied),
    );
}

fn errno(e: guest_rt::io::Error) -> Errno {
    e.errno().unwrap_or(Errno::Io)
}

fn path_op(op: u32, path: &str) -> Got {
    ring::call(Sqe {
        op,
        a: p(path),
        ..Sqe::default()
    })
}

fn rename(a: &str, b: &str) -> Got {
    ring::call(Sqe {
        op: op::RENAME,
        a: p(a),
        b: p(b),
        ..Sqe::default()
    })
}

fn on(op: u32, handle: u64, a: GuestSlice, b: GuestSlice, offset: u64, flags: u32) -> Got {
    ring::call(Sqe {
        op,
        flags,
        handle,
        offset,
        a,
        b,
        ..Sqe::default()
    })
}

/// Bad handles and bad buffers on good handles.
fn handles(t: &mut Suite, dir: &str) {
    let mut buf = alloc::vec![0u8; 64];
    let b = s(buf.as_mut_ptr() as u64, 64);
    let f = File::open(format!("{dir}/f")).ok();
    let h = f.as_ref().map(File::handle).unwrap_or(0);
    t.case(
        "read-handle-0",
        on(op::READ, 0, b, s(0, 0), 0, 0),
        Err(Errno::BadHandle),
    );
    t.case(
        "read-handle-max",
        on(op::READ, u64::MAX, b, s(0, 0), 0, 0),
        Err(Errno::BadHandle),
    );
    t.case(
        "read-handle-foreign",
        on(op::READ, h ^ (7 << 32), b, s(0, 0), 0, 0),
        Err(Errno::BadHandle),
    );
    t.case(
        "read-handle-past-cap",
        on(op::READ, u64::from(MAX_HANDLES) + 5, b, s(0, 0), 0, 0),
        Err(Errno::BadHandle),
    );
    let closed = File::open(format!("{dir}/f"))
        .map(|g| g.handle())
        .unwrap_or(0);
    // `g` was dropped: its close rides on the next doorbell, before this read.
    t.case(
        "read-closed",
        on(op::READ, closed, b, s(0, 0), 0, 0),
        Err(Errno::BadHandle),
    );
    t.case(
        "close-twice",
        on(op::CLOSE, closed, s(0, 0), s(0, 0), 0, 0),
        Err(Errno::BadHandle),
    );
    t.case(
        "read-outside",
        on(op::READ, h, s(FAR, 8), s(0, 0), 0, 0),
        Err(Errno::Fault),
    );
    t.case(
        "read-len-max",
        on(op::READ, h, s(b.addr, u64::MAX), s(0, 0), 0, 0),
        Err(Errno::Fault),
    );
    t.case(
        "read-wrapping",
        on(op::READ, h, s(u64::MAX - 3, 8), s(0, 0), 0, 0),
        Err(Errno::Fault),
    );
    let frame = hypercall::frame_addr();
    t.case(
        "read-into-frame",
        on(op::READ, h, s(frame, 8), s(0, 0), 0, 0),
        Err(Errno::Busy),
    );
    t.case(
        "read-into-bootinfo",
        on(
            op::READ,
            h,
            s(hypercall::boot_info_addr(), 8),
            s(0, 0),
            0,
            0,
        ),
        Err(Errno::Busy),
    );
    let base = ring::testing::base().unwrap_or(0);
    t.case(
        "read-into-ring",
        on(op::READ, h, s(base, 8), s(0, 0), 0, 0),
        Err(Errno::Busy),
    );
    t.case(
        "read-into-sqe",
        on(
            op::READ,
            h,
            s(ring::testing::sqe_slot(3), 64),
            s(0, 0),
            0,
            0,
        ),
        Err(Errno::Busy),
    );
    let doorbell = guest_rt::abi::arch::x86_64::DOORBELL;
    let doorbell = if guest_rt::arch::NAME == "aarch64" {
        guest_rt::abi::arch::aarch64::DOORBELL
    } else {
        doorbell
    };
    t.case(
        "read-into-doorbell",
        on(op::READ, h, s(doorbell, 8), s(0, 0), 0, 0),
        Err(Errno::Fault),
    );
    t.case(
        "write-read-only-handle",
        on(op::WRITE, h, b, s(0, 0), 0, 0),
        Err(Errno::PermissionDenied),
    );
    t.case(
        "set-len-read-only",
        on(op::SET_LEN, h, s(0, 0), s(0, 0), 9, 0),
        Err(Errno::PermissionDenied),
    );
    t.case(
        "seek-bad-whence",
        on(op::SEEK, h, s(0, 0), s(0, 0), 0, 7),
        Err(Errno::Inval),
    );
    t.case(
        "seek-negative",
        on(op::SEEK, h, s(0, 0), s(0, 0), (-5i64).cast_unsigned(), 0),
        Err(Errno::Inval),
    );
    t.case(
        "fstat-small-buffer",
        on(op::FSTAT, h, s(0, 0), s(b.addr, 8), 0, 0),
        Err(Errno::Inval),
    );
    t.case(
        "fstat-outside",
        on(op::FSTAT, h, s(0, 0), s(FAR, 32), 0, 0),
        Err(Errno::Fault),
    );
    t.case(
        "read-dir-on-file",
        on(op::READ_DIR, h, s(0, 0), b, 0, 0),
        Err(Errno::NotADirectory),
    );
    let dir_h = ring::call(Sqe {
        op: op::OPEN,
        flags: open::DIRECTORY,
        a: p(dir),
        ..Sqe::default()
    })
    .unwrap_or(0);
    t.case(
        "read-dir-tiny-buffer",
        on(op::READ_DIR, dir_h, s(0, 0), s(b.addr, 4), 0, 0),
        Err(Errno::Inval),
    );
    t.case(
        "read-on-dir",
        on(op::READ, dir_h, b, s(0, 0), 0, 0),
        Err(Errno::IsADirectory),
    );
    t.case(
        "console-bad-stream",
        on(op::CONSOLE, 3, b, s(0, 0), 0, 0),
        Err(Errno::BadFd),
    );
    t.case(
        "console-outside",
        on(op::CONSOLE, 1, s(FAR, 4), s(0, 0), 0, 0),
        Err(Errno::Fault),
    );
    let _ = on(op::CLOSE, dir_h, s(0, 0), s(0, 0), 0, 0);
    drop(f);
}

/// Ring indices out of range or going backwards, a buffer shared by two
/// requests in flight, and the handle cap.
fn ring_cases(t: &mut Suite, dir: &str) {
    let e = ring::ENTRIES;
    // Hand over queued closes first, so the skews below are exact.
    let _ = ring::testing::enter_with_skew(0, 0);
    let skew = |sq: u32, cq: u32| ring::testing::enter_with_skew(sq, cq).map(|r| r.0);
    t.case("sq-tail-too-far", skew(e + 1, 0), Err(Errno::Inval));
    t.case("sq-tail-backwards", skew(u32::MAX, 0), Err(Errno::Inval));
    t.case("cq-head-ahead", skew(0, 1), Err(Errno::Inval));
    t.case(
        "cq-head-too-far-back",
        skew(0, 0u32.wrapping_sub(e + 1)),
        Err(Errno::Inval),
    );
    t.case(
        "ring-setup-twice",
        raw(
            nr::RING_SETUP,
            [ring::testing::base().unwrap_or(0), 4, 0, 0, 0, 0],
        ),
        Err(Errno::Busy),
    );
    t.case(
        "ring-enter-wide-min",
        raw(nr::RING_ENTER, [1 << 40, 0, 0, 0, 0, 0]),
        Err(Errno::Inval),
    );
    t.case(
        "ring-enter-empty",
        ring::testing::enter_with_skew(0, 0).map(|r| r.0),
        Ok(()),
    );
    let (r1, r2) = same_buffer(dir);
    t.case("same-buffer-first", r1, Ok(()));
    t.case("same-buffer-second", r2, Err(Errno::Busy));
    let (opened, past) = past_the_cap(dir);
    t.case("handles-past-cap", past, Err(Errno::TooManyHandles));
    let at_cap = if opened == MAX_HANDLES as usize {
        Ok(())
    } else {
        Err(Errno::Io)
    };
    t.case("handles-at-cap", Ok(0), at_cap);
}

/// Open `dir/f` MAX_HANDLES + 1 times at once (queued, a few doorbells):
/// how many opened, and the error of the first that did not.
fn past_the_cap(dir: &str) -> (usize, Got) {
    let path = format!("{dir}/f");
    guest_rt::task::block_on(async move {
        let mut pending = Vec::new();
        for _ in 0..=MAX_HANDLES {
            let owned = Vec::from(path.as_bytes());
            let sqe = Sqe {
                op: op::OPEN,
                flags: open::READ,
                a: hypercall::slice(&owned),
                ..Sqe::default()
            };
            pending.push(ring::submit_owned(sqe, owned));
        }
        let (mut handles, mut first_err) = (Vec::new(), Ok(0));
        for p in pending {
            match p.await.0 {
                Ok(h) => handles.push(h),
                Err(e) => {
                    if first_err.is_ok() {
                        first_err = Err(e);
                    }
                }
            }
        }
        let n = handles.len();
        for h in handles {
            ring::detach(Sqe {
                op: op::CLOSE,
                handle: h,
                ..Sqe::default()
            });
        }
        ring::testing::settle();
        (n, first_err)
    })
}

/// Two reads into one buffer in one batch: the second is Busy.
fn same_buffer(dir: &str) -> (Got, Got) {
    let Ok(f) = File::open(format!("{dir}/f")) else {
        return (Err(Errno::Io), Err(Errno::Io));
    };
    let shared = alloc::vec![0u8; 16];
    let read = Sqe {
        op: op::READ,
        handle: f.handle(),
        a: hypercall::slice(&shared),
        ..Sqe::default()
    };
    guest_rt::task::block_on(async move {
        let a = ring::submit_owned(read, Vec::new());
        let b = ring::submit_owned(read, Vec::new());
        let (ra, _) = a.await;
        let (rb, _) = b.await;
        drop(shared);
        drop(f);
        (ra, rb)
    })
}

/// Run the suite; true if every case got its documented error and the
/// launcher still serves good requests afterwards.
pub fn run(dir: &str) -> bool {
    let mut t = Suite {
        cases: 0,
        failed: 0,
    };
    calls(&mut t);
    paths(&mut t, dir);
    handles(&mut t, dir);
    ring_cases(&mut t, dir);
    let after = format!("{dir}/after");
    let still = fs::write(&after, b"still serving")
        .and_then(|()| fs::read(&after))
        .is_ok_and(|d| d == b"still serving");
    let _ = fs::remove_file(&after);
    println!(
        "hostile: {} cases, {} failed, still serving: {still}",
        t.cases, t.failed
    );
    t.failed == 0 && still
}
