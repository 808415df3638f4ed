//! Steps for `cargo xtask bench io`: each prints `bench NAME: k=v ...`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use guest_rt::abi::ring::{op, Sqe};
use guest_rt::abi::{Call, GuestSlice};
use guest_rt::fs::File;
use guest_rt::io::{self, Read, Write};
use guest_rt::{hypercall, ring, task, time};

fn us(t: time::Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

/// `n` small console writes: through the ring (queued, one doorbell per
/// batch) and as one Write hypercall each. Exits counted by the guest.
pub fn console(n: usize) -> io::Result<String> {
    let line = b"x\n";
    let before = ring::enters();
    for _ in 0..n {
        let data = line.to_vec();
        let sqe = Sqe {
            op: op::CONSOLE,
            handle: 2,
            a: hypercall::slice(&data),
            ..Sqe::default()
        };
        drop(ring::submit_owned(sqe, data));
    }
    ring::testing::settle();
    let ring_exits = ring::enters() - before;
    for _ in 0..n {
        let _ = hypercall::call(Call::Write {
            fd: 2,
            buf: hypercall::slice(line),
        });
    }
    Ok(format!("ring_exits={ring_exits} call_exits={n}"))
}

/// `n` 4 KiB reads of `path`: all queued at once (async, one doorbell per
/// batch) and one blocking request each.
pub fn reads(path: &str, n: usize) -> io::Result<String> {
    let f = File::open(path)?;
    let before = ring::enters();
    let h = f.handle();
    task::block_on(async move {
        let mut pending = Vec::new();
        for i in 0..n {
            let buf = alloc::vec![0u8; 4096];
            let sqe = Sqe {
                op: op::READ,
                handle: h,
                offset: (i as u64 % 16) * 4096,
                a: GuestSlice {
                    addr: buf.as_ptr() as u64,
                    len: 4096,
                },
                ..Sqe::default()
            };
            pending.push(ring::submit_owned(sqe, buf));
        }
        for p in pending {
            let _ = p.await;
        }
    });
    let batched = ring::enters() - before;
    let before = ring::enters();
    let mut buf = [0u8; 4096];
    for i in 0..n {
        f.read_at(&mut buf, (i as u64 % 16) * 4096)?;
    }
    let blocking = ring::enters() - before;
    Ok(format!("batched_exits={batched} blocking_exits={blocking}"))
}

/// Round trip of a ring NOP (doorbell, I/O thread, completion) against a
/// raw doorbell exit the launcher answers at once (an unknown call number).
pub fn nop(n: usize) -> io::Result<String> {
    let _ = ring::call(Sqe::default());
    let t = time::Instant::now();
    for _ in 0..n {
        let _ = ring::call(Sqe::default());
    }
    let ring_us = us(t);
    let t = time::Instant::now();
    for _ in 0..n {
        let _ = hypercall::call_frame(guest_rt::abi::Frame {
            nr: 999,
            ..Default::default()
        });
    }
    let raw_us = us(t);
    let t = time::Instant::now();
    for _ in 0..n {
        let _ = hypercall::call(Call::Clock { clock: 0 });
    }
    let clock_us = us(t);
    Ok(format!(
        "ring_nop_us={ring_us} raw_exit_us={raw_us} clock_call_us={clock_us} n={n}"
    ))
}

/// Read `path` to the end in 1 MiB requests; then write as many bytes to
/// `out` in 1 MiB requests and sync.
pub fn seq(path: &str, out: &str) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut buf = alloc::vec![0u8; 1 << 20];
    let t = time::Instant::now();
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let read_us = us(t);
    let mut o = File::create(out)?;
    let t = time::Instant::now();
    let mut left = total;
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        o.write_all(&buf[..n])?;
        left -= n as u64;
    }
    o.sync_all()?;
    let write_us = us(t);
    Ok(format!(
        "bytes={total} read_us={read_us} write_us={write_us}"
    ))
}

/// `n` files `dir/fI` read one after another with blocking calls.
pub fn blocking(dir: &str, n: usize) -> io::Result<String> {
    let t = time::Instant::now();
    let mut sum = 0u64;
    for i in 0..n {
        let d = guest_rt::fs::read(format!("{dir}/f{i}"))?;
        sum += d.iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    Ok(format!("sum={sum} ms={}", t.elapsed().as_millis()))
}
