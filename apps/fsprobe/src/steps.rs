//! The steps: each prints `STEP ARGS: ok [VALUE]` or `STEP ARGS: err KIND`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use guest_rt::fs::{self, File, OpenOptions};
use guest_rt::io::{self, Read, Seek, SeekFrom, Write};
use guest_rt::{println, ring, task, time};

/// How many arguments a step takes.
pub fn arity(step: &str) -> usize {
    match step {
        "stdin" | "clock" | "random" | "wait" => 0,
        "write" | "append" | "rename" | "handles" | "async" | "flood" | "bench-reads"
        | "bench-seq" | "bench-blocking" => 2,
        _ => 1,
    }
}

fn show(step: &str, args: &[&str], r: io::Result<String>) -> bool {
    let a = args.join(" ");
    match r {
        Ok(v) if v.is_empty() => println!("{step} {a}: ok"),
        Ok(v) => println!("{step} {a}: ok {v}"),
        Err(e) => println!("{step} {a}: err {:?}", e.kind()),
    }
    true
}

/// Run one step; false if it found the runtime misbehaving.
pub fn run(step: &str, a: &[&str]) -> bool {
    let r: io::Result<String> = match step {
        "read" => fs::read(a[0]).map(|d| String::from_utf8_lossy(&d).into_owned()),
        "write" => fs::write(a[0], a[1]).map(|()| String::new()),
        "append" => OpenOptions::new()
            .append(true)
            .create(true)
            .open(a[0])
            .and_then(|mut f| f.write_all(a[1].as_bytes()))
            .map(|()| String::new()),
        "mkdir" => fs::create_dir(a[0]).map(|()| String::new()),
        "rmdir" => fs::remove_dir(a[0]).map(|()| String::new()),
        "rm" => fs::remove_file(a[0]).map(|()| String::new()),
        "rename" => fs::rename(a[0], a[1]).map(|()| String::new()),
        "stat" => fs::metadata(a[0])
            .map(|m| format!("len={} dir={} ro={}", m.len(), m.is_dir(), m.readonly())),
        "ls" => ls(a[0]),
        "roundtrip" => return roundtrip(a[0]),
        "handles" => handles(a[0], a[1].parse().unwrap_or(0)),
        "async" => async_read(a[0], a[1].parse().unwrap_or(1)),
        "flood" => flood(a[0], a[1].parse().unwrap_or(0)),
        "stdin" => stdin(),
        "wait" => wait(),
        "clock" => Ok(format!("{}", time::realtime_ns() / 1_000_000_000)),
        "random" => random(),
        "sleep" => sleep(a[0].parse().unwrap_or(0)),
        "hostile" => return crate::hostile::run(a[0]),
        "bench-console" => crate::bench::console(a[0].parse().unwrap_or(0)),
        "bench-reads" => crate::bench::reads(a[0], a[1].parse().unwrap_or(0)),
        "bench-nop" => crate::bench::nop(a[0].parse().unwrap_or(0)),
        "bench-seq" => crate::bench::seq(a[0], a[1]),
        "bench-blocking" => crate::bench::blocking(a[0], a[1].parse().unwrap_or(1)),
        _ => {
            println!("{step}: unknown step");
            return false;
        }
    };
    show(step, a, r)
}

fn ls(dir: &str) -> io::Result<String> {
    let mut names: Vec<String> = Vec::new();
    for e in fs::read_dir(dir)? {
        names.push(String::from(e?.file_name()));
    }
    names.sort();
    Ok(format!("{} {}", names.len(), names.join(",")))
}

/// Every call of the fs API once, checked; prints `roundtrip DIR: ok`.
fn roundtrip(dir: &str) -> bool {
    let r = (|| -> io::Result<()> {
        let sub = format!("{dir}/rt/a/b");
        fs::create_dir_all(&sub)?;
        fs::create_dir_all(&sub)?; // again: fine
        let p = format!("{sub}/f.txt");
        fs::write(&p, b"hello world")?;
        check(fs::read_to_string(&p)? == "hello world", "read back")?;
        let mut f = OpenOptions::new().read(true).write(true).open(&p)?;
        check(f.seek(SeekFrom::Start(6))? == 6, "seek")?;
        f.write_all(b"WORLD")?;
        f.seek(SeekFrom::Start(0))?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        check(s == "hello WORLD", "write at position")?;
        let mut b = [0u8; 5];
        check(f.read_at(&mut b, 6)? == 5 && &b == b"WORLD", "read_at")?;
        f.set_len(5)?;
        f.sync_all()?;
        check(
            f.metadata()?.len() == 5 && f.metadata()?.is_file(),
            "set_len",
        )?;
        check(f.seek(SeekFrom::End(-2))? == 3, "seek from end")?;
        drop(f);
        let q = format!("{sub}/g.txt");
        fs::rename(&p, &q)?;
        check(
            fs::metadata(&p).is_err() && fs::metadata(&q)?.len() == 5,
            "rename",
        )?;
        check(
            File::create_new(&q).unwrap_err().kind() == io::ErrorKind::AlreadyExists,
            "create_new",
        )?;
        let names: Vec<String> = fs::read_dir(&sub)?
            .map(|e| e.map(|e| String::from(e.file_name())))
            .collect::<io::Result<_>>()?;
        check(names == ["g.txt"], "read_dir")?;
        check(
            fs::remove_dir(format!("{dir}/rt")).unwrap_err().kind()
                == io::ErrorKind::DirectoryNotEmpty,
            "rmdir non-empty",
        )?;
        fs::remove_file(&q)?;
        fs::remove_dir(&sub)?;
        fs::remove_dir(format!("{dir}/rt/a"))?;
        fs::remove_dir(format!("{dir}/rt"))?;
        check(
            fs::metadata(format!("{dir}/rt")).unwrap_err().kind() == io::ErrorKind::NotFound,
            "removed",
        )?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            println!("roundtrip {dir}: ok");
            true
        }
        Err(e) => {
            println!("roundtrip {dir}: err {:?}", e.kind());
            false
        }
    }
}

fn check(ok: bool, what: &'static str) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        println!("roundtrip check failed: {what}");
        Err(io::ErrorKind::Other.into())
    }
}

/// Open `path` up to `n` times; report how many opened and the first error.
fn handles(path: &str, n: usize) -> io::Result<String> {
    let mut open = Vec::new();
    let mut first_err = None;
    for _ in 0..n {
        match File::open(path) {
            Ok(f) => open.push(f),
            Err(e) => {
                first_err = Some(e.kind());
                break;
            }
        }
    }
    let count = open.len();
    drop(open);
    // Every handle is free again once closed.
    let again = File::open(path).is_ok();
    Ok(format!("opened={count} then={first_err:?} reopen={again}"))
}

/// `n` tasks each read `dir/fI` with the async form, all at once.
fn async_read(dir: &str, n: usize) -> io::Result<String> {
    let before = ring::enters();
    let start = time::Instant::now();
    let dir = String::from(dir);
    let total = task::block_on(async move {
        let mut hs = Vec::new();
        for i in 0..n {
            let path = format!("{dir}/f{i}");
            hs.push(task::spawn(async move {
                let f = File::open_async(&path).await?;
                let d = f.read_at_async(64 << 10, 0).await?;
                Ok::<u64, io::Error>(d.iter().map(|&b| u64::from(b)).sum())
            }));
        }
        let mut sum = 0u64;
        for h in hs {
            sum += h.await?;
        }
        Ok::<u64, io::Error>(sum)
    })?;
    let ms = start.elapsed().as_millis();
    Ok(format!(
        "sum={total} ms={ms} enters={}",
        ring::enters() - before
    ))
}

/// `n` one-byte writes at the file position, queued without waiting; the
/// file must end up `n` bytes long.
fn flood(path: &str, n: usize) -> io::Result<String> {
    let f = File::create(path)?;
    let before = ring::enters();
    for _ in 0..n {
        let data = alloc::vec![b'x'];
        let sqe = guest_rt::abi::ring::Sqe {
            op: guest_rt::abi::ring::op::WRITE,
            handle: f.handle(),
            offset: guest_rt::abi::ring::CURSOR,
            a: guest_rt::hypercall::slice(&data),
            ..Default::default()
        };
        drop(ring::submit_owned(sqe, data)); // result dropped, buffer kept
    }
    f.sync_all()?; // after every write on this handle (same I/O thread)
    let len = f.metadata()?.len();
    Ok(format!("len={len} enters={}", ring::enters() - before))
}

fn stdin() -> io::Result<String> {
    let mut v = Vec::new();
    io::stdin().read_to_end(&mut v)?;
    let lines = v.iter().filter(|&&b| b == b'\n').count();
    let sum: u64 = v.iter().map(|&b| u64::from(b)).sum();
    Ok(format!("bytes={} lines={lines} sum={sum}", v.len()))
}

/// Settle the ring (nothing queued or in flight), say `wait : ok ready`,
/// and block until a line arrives on stdin (tests look at the launcher
/// meanwhile).
fn wait() -> io::Result<String> {
    ring::testing::settle();
    println!("wait : ok ready");
    let mut b = [0u8; 1];
    while io::stdin().read(&mut b)? == 1 && b[0] != b'\n' {}
    Ok(String::from("resumed"))
}

fn random() -> io::Result<String> {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    guest_rt::random::fill(&mut a).map_err(io::Error::from)?;
    guest_rt::random::fill(&mut b).map_err(io::Error::from)?;
    let nonzero = a.iter().any(|&x| x != 0);
    Ok(format!("differ={} nonzero={nonzero}", a != b))
}

/// A blocking sleep, then two tasks sleeping at once.
fn sleep(ms: u64) -> io::Result<String> {
    let d = Duration::from_millis(ms);
    let t = time::Instant::now();
    time::sleep(d);
    let blocking = t.elapsed().as_millis();
    let t = time::Instant::now();
    task::block_on(async move {
        let a = task::spawn(task::sleep(d));
        let b = task::spawn(task::sleep(d));
        a.await;
        b.await;
    });
    let tasks = t.elapsed().as_millis();
    Ok(format!("blocking_ms={blocking} tasks_ms={tasks}"))
}
