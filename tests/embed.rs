//! Embedding: a host program drives the `funcs` guest through
//! `vmm::Sandbox`: typed guest and host functions, large arguments,
//! re-entry, hostile guests (poisoned until restored), snapshots,
//! reset after every call, and flat resources over many calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use vessel_tests::{guest_elf, require_kvm};
use vmm::sandbox::{Caller, HostFnError, Sandbox, SandboxBuilder, SandboxError};

fn funcs() -> SandboxBuilder {
    Sandbox::from_path(guest_elf("funcs"))
        .register("prefix", |who: String| Ok::<_, String>(format!("hi {who}")))
        .register("nop", || Ok::<_, String>(()))
        .register("double", |a: i64| Ok::<_, String>(a * 2))
        .register("refuse", |_a: i64| Err::<i64, _>("refused on purpose"))
        .register_with_caller("down", |c: &mut Caller<'_>, n: u32| {
            c.call::<u32>("recurse", (n,)).map_err(|e| match e {
                HostFnError::Guest(g) => g.to_string(),
                other => format!("{other:?}"),
            })
        })
}

fn build(b: SandboxBuilder) -> Sandbox {
    let mut host = vmm::Host::open().expect("open KVM");
    b.build(&mut host).expect("sandbox")
}

/// A `Write` the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn calls_typed_guest_functions() {
    require_kvm!();
    let mut sb = build(funcs());
    for f in ["add", "greet", "recurse", "spin"] {
        assert!(
            sb.exports().iter().any(|e| e == f),
            "{f} in {:?}",
            sb.exports()
        );
    }
    assert_eq!(sb.call::<i64>("add", (40i64, 2i64)).unwrap(), 42);
    assert_eq!(sb.call::<i64>("add", (-5i64, 3i64)).unwrap(), -2);
    assert_eq!(sb.call::<u64>("init_value", ()).unwrap(), 42);
    sb.call::<()>("nop", ()).unwrap();
    let data: Vec<u8> = (0..=255).collect();
    assert_eq!(sb.call::<Vec<u8>>("echo", (data.clone(),)).unwrap(), data);
}

#[test]
fn host_functions_answer_and_fail_cleanly() {
    require_kvm!();
    let out = Captured::default();
    let mut sb = build(funcs().stdout(Box::new(out.clone())));
    assert_eq!(
        sb.call::<String>("greet", ("guest",)).unwrap(),
        "hi guest, guest!"
    );
    assert_eq!(sb.call::<i64>("call_host", ("double", 21i64)).unwrap(), 42);
    // An unknown host function and a failing one reach the guest as errors.
    assert_eq!(sb.call::<i64>("call_host", ("nosuch", 1i64)).unwrap(), -1);
    assert_eq!(sb.call::<i64>("call_host", ("refuse", 1i64)).unwrap(), -1);
    let text = out.text();
    assert!(
        text.contains("no host function \\\"nosuch\\\"") || text.contains("nosuch"),
        "{text}"
    );
    assert!(text.contains("refused on purpose"), "{text}");
    // Arguments of the wrong type for the host function.
    assert_eq!(sb.call::<i64>("call_host", ("prefix", 1i64)).unwrap(), -1);
    assert!(sb.poisoned().is_none());
    sb.call::<()>("say", ("printed",)).unwrap();
    assert!(out.text().contains("printed\n"));
}

#[test]
fn bad_calls_are_errors_without_poisoning() {
    require_kvm!();
    let mut sb = build(funcs());
    match sb.call::<i64>("nosuch", ()) {
        Err(SandboxError::UnknownFunction(f)) => assert_eq!(f, "nosuch"),
        other => panic!("{other:?}"),
    }
    match sb.call::<i64>("add", ("x",)) {
        Err(SandboxError::BadArguments(m)) => assert!(m.contains("1 arguments where 2"), "{m}"),
        other => panic!("{other:?}"),
    }
    match sb.call::<i64>("add", (1u32, 2u32)) {
        Err(SandboxError::BadArguments(m)) => assert!(m.contains("expected a i64"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A result of another type than asked is the host's mistake here, but
    // it cannot be told from garbage: it poisons.
    assert!(matches!(
        sb.call::<String>("add", (1i64, 2i64)),
        Err(SandboxError::BadResult { .. })
    ));
    assert!(sb.poisoned().is_some());
}

#[test]
fn large_arguments_and_results_pass_beyond_the_shared_buffer() {
    require_kvm!();
    let mut sb = build(funcs());
    let small = sb.call::<u64>("addr_of", (&[1u8, 2, 3][..],)).unwrap();
    let again = sb.call::<u64>("addr_of", (&[9u8; 100][..],)).unwrap();
    assert_eq!(
        small, again,
        "small arguments are read in place in the shared buffer"
    );
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let sum: u64 = big.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(
        sb.call::<(u64, u64)>("sum_bytes", (&big[..],)).unwrap(),
        (big.len() as u64, sum)
    );
    assert_ne!(sb.call::<u64>("addr_of", (&big[..],)).unwrap(), small);
    assert_eq!(sb.call::<Vec<u8>>("echo", (big.clone(),)).unwrap(), big);
}

#[test]
fn host_and_guest_reenter_to_the_documented_depth() {
    require_kvm!();
    let mut sb = build(funcs());
    // recurse(n): guest -> host `down` -> guest recurse(n-1) ...
    assert_eq!(sb.call::<u32>("recurse", (5u32,)).unwrap(), 5);
    let max = vessel_abi::embed::MAX_DEPTH;
    assert_eq!(sb.call::<u32>("recurse", (max - 1,)).unwrap(), max - 1);
    // One level more: the deepest host call is refused, the guest sees
    // the failure (1000) and every level above adds one.
    assert_eq!(sb.call::<u32>("recurse", (max,)).unwrap(), 1000 + max - 1);
    assert!(sb.poisoned().is_none());
    assert_eq!(sb.call::<u32>("recurse", (2u32,)).unwrap(), 2);
}

/// `f` poisons the sandbox with an error `check` accepts; calls are then
/// refused until a restore, after which the guest works again.
fn poisons(
    sb: &mut Sandbox,
    f: &str,
    args: impl vessel_abi::value::Encode,
    check: fn(&SandboxError) -> bool,
) {
    let snap = sb.snapshot().unwrap();
    let e = sb.call::<()>(f, args).expect_err(f);
    assert!(check(&e), "{f}: {e:?}");
    assert!(sb.poisoned().is_some(), "{f} poisons");
    assert!(matches!(
        sb.call::<u64>("init_value", ()),
        Err(SandboxError::Poisoned(_))
    ));
    assert!(
        sb.snapshot().is_err(),
        "a poisoned sandbox is not snapshotted"
    );
    sb.restore(&snap).unwrap();
    assert!(sb.poisoned().is_none());
    assert_eq!(sb.call::<u64>("init_value", ()).unwrap(), 42, "after {f}");
    assert_eq!(sb.call::<i64>("add", (1i64, 1i64)).unwrap(), 2);
}

#[test]
fn hostile_guests_poison_until_restored() {
    require_kvm!();
    let mut sb = build(funcs().timeout(Duration::from_millis(300)));
    poisons(&mut sb, "spin", (), |e| {
        matches!(e, SandboxError::TimedOut(_))
    });
    poisons(
        &mut sb,
        "panic_now",
        ("boom",),
        |e| matches!(e, SandboxError::GuestPanicked(m) if m.contains("asked to panic: boom")),
    );
    poisons(
        &mut sb,
        "fault",
        (),
        |e| matches!(e, SandboxError::GuestFaulted(f) if f.message.contains("0x5ead00000000")),
    );
    poisons(&mut sb, "exit_now", (3i32,), |e| {
        matches!(e, SandboxError::GuestExited(3))
    });
    poisons(&mut sb, "garbage", (), |e| {
        matches!(e, SandboxError::BadResult { .. })
    });
    poisons(
        &mut sb,
        "scribble",
        (),
        |e| matches!(e, SandboxError::Protocol(m) if m.contains("0xffffffff0000")),
    );
}

#[test]
fn interrupt_handle_stops_a_running_call() {
    require_kvm!();
    let mut sb = build(funcs());
    let snap = sb.snapshot().unwrap();
    let h = sb.interrupt_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        h.interrupt();
    });
    let start = std::time::Instant::now();
    assert!(matches!(
        sb.call::<()>("spin", ()),
        Err(SandboxError::Interrupted)
    ));
    assert!(start.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
    sb.restore(&snap).unwrap();
    assert_eq!(sb.call::<i64>("add", (2i64, 2i64)).unwrap(), 4);
}

#[test]
fn a_guest_that_does_not_serve_is_refused() {
    require_kvm!();
    let mut host = vmm::Host::open().unwrap();
    let e = Sandbox::from_path(guest_elf("hello"))
        .build(&mut host)
        .err()
        .expect("hello exports nothing");
    assert!(matches!(e, SandboxError::NotServing(_)), "{e}");
    assert!(e.to_string().contains("exited with code 0"), "{e}");
}

#[test]
fn snapshot_restore_and_reset_after_call() {
    require_kvm!();
    let mut sb = build(funcs());
    assert_eq!(sb.call::<u64>("bump", ()).unwrap(), 1);
    assert_eq!(sb.call::<u64>("bump", ()).unwrap(), 2);
    let at2 = sb.snapshot().unwrap();
    assert_eq!(sb.call::<u64>("bump", ()).unwrap(), 3);
    sb.call::<u32>("touch", (64u32,)).unwrap();
    sb.restore(&at2).unwrap();
    assert_eq!(
        sb.call::<u64>("bump", ()).unwrap(),
        3,
        "restored to the state after two bumps"
    );
    // A second sandbox from the snapshot, resetting after every call.
    let mut host = vmm::Host::open().unwrap();
    let mut fresh = Sandbox::from_snapshot(at2.clone())
        .reset_after_call(true)
        .build(&mut host)
        .unwrap();
    for _ in 0..50 {
        assert_eq!(fresh.call::<u64>("bump", ()).unwrap(), 3);
    }
    // Reset mode from the start: every call sees the state at `serve`.
    let mut reset = build(funcs().reset_after_call(true));
    for _ in 0..50 {
        assert_eq!(reset.call::<u64>("bump", ()).unwrap(), 1);
        reset.call::<u32>("touch", (8u32,)).unwrap();
    }
    // A snapshot of another guest image is refused.
    let mut other = build(funcs().mem_size(64 << 20));
    let e = other.restore(&at2).unwrap_err();
    assert!(matches!(e, SandboxError::SnapshotMismatch(_)), "{e}");
}

#[test]
fn many_sandboxes_on_many_threads() {
    require_kvm!();
    let threads: Vec<_> = (0..4i64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut sb = build(funcs());
                for i in 0..200i64 {
                    assert_eq!(sb.call::<i64>("add", (t, i)).unwrap(), t + i);
                }
                // A sandbox moves to another thread between calls.
                std::thread::spawn(move || sb.call::<i64>("add", (t, 1i64)).unwrap())
                    .join()
                    .unwrap()
            })
        })
        .collect();
    for (t, h) in (0i64..).zip(threads) {
        assert_eq!(h.join().unwrap(), t + 1);
    }
}

// Snapshot files.

/// (tag, payload offset, payload length) of each section of a snapshot file.
fn sections(b: &[u8]) -> Vec<(u32, usize, usize)> {
    let mut at = vmm::snapshot::file::HEADER;
    let mut v = Vec::new();
    while at + 16 <= b.len() - 8 {
        let tag = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let len = u64::from_le_bytes(b[at + 8..at + 16].try_into().unwrap()) as usize;
        v.push((tag, at + 16, len));
        at += 16 + len;
    }
    v
}

/// Recompute the trailer after an edit, so the edit itself is what a
/// check must catch.
fn reseal(b: &mut [u8]) {
    let n = b.len() - 8;
    let sum = vmm::snapshot::file::checksum(&b[..n]);
    b[n..].copy_from_slice(&sum.to_le_bytes());
}

fn refused(b: &[u8], want: &str) {
    match vmm::snapshot::Snapshot::from_bytes(b) {
        Ok(_) => panic!("accepted a file that should fail with {want:?}"),
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains(want), "{m:?} should say {want:?}");
            assert!(!m.contains('\n'), "one line: {m:?}");
        }
    }
}

#[test]
fn snapshot_files_round_trip_bit_identical() {
    require_kvm!();
    let mut sb = build(funcs());
    sb.call::<u64>("bump", ()).unwrap();
    let bytes = sb.snapshot().unwrap().to_bytes();
    let snap = Arc::new(vmm::snapshot::Snapshot::from_bytes(&bytes).unwrap());
    let mut host = vmm::Host::open().unwrap();
    let mut back = Sandbox::from_snapshot(snap)
        .register("prefix", |who: String| Ok::<_, String>(format!("hi {who}")))
        .build(&mut host)
        .unwrap();
    assert_eq!(
        back.snapshot().unwrap().to_bytes(),
        bytes,
        "save -> restore -> save"
    );
    assert_eq!(back.call::<u64>("bump", ()).unwrap(), 2);
    assert_eq!(
        back.call::<String>("greet", ("again",)).unwrap(),
        "hi again, again!"
    );
}

#[test]
fn crafted_snapshot_files_are_refused_with_one_line() {
    require_kvm!();
    let good = build(funcs()).snapshot().unwrap().to_bytes();
    refused(&good[..50], "too short");
    refused(&good[..good.len() - 1], "the header says");
    let mut b = good.clone();
    b[0] = b'X';
    refused(&b, "bad magic");
    let mut b = good.clone();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    refused(&b, "checksum mismatch");
    let patch = |at: usize, v: &[u8], want: &str| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        reseal(&mut b);
        refused(&b, want);
    };
    patch(8, &2u32.to_le_bytes(), "format version 2");
    patch(12, &999u32.to_le_bytes(), "ABI version 999");
    patch(
        16,
        &183u32.to_le_bytes(),
        "made on aarch64; this host is x86_64",
    );
    patch(20, &2u32.to_le_bytes(), "2 vCPUs");
    let s = sections(&good);
    assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    // A section longer than the file.
    patch(
        s[0].1 - 8,
        &(u64::MAX / 2).to_le_bytes(),
        "left in the file",
    );
    // Memory: a huge page count, and page indexes out of order (overlap).
    let (_, mem, _) = s[4];
    patch(mem + 8, &(u64::MAX / 8).to_le_bytes(), "pages do not fill");
    let first = u64::from_le_bytes(good[mem + 16..mem + 24].try_into().unwrap());
    patch(mem + 24, &first.to_le_bytes(), "out of order");
    patch(mem + 16, &(1u64 << 40).to_le_bytes(), "past");
    // RAM size that disagrees with the config.
    patch(mem, &(1u64 << 20).to_le_bytes(), "the config says");
}

#[test]
fn a_snapshot_from_another_cpu_feature_set_is_refused() {
    require_kvm!();
    let good = build(funcs()).snapshot().unwrap().to_bytes();
    let s = sections(&good);
    let (_, vcpu, _) = s[3];
    // XCR0 in the header and in the vCPU's kvm_xcrs (after kvm_regs,
    // kvm_sregs and the 4 KiB XSAVE area; value of xcrs[0]).
    let xcr0_at = vcpu + 144 + 312 + 4096 + 16;
    let mut b = good.clone();
    let other = 0x3u64;
    b[24..32].copy_from_slice(&other.to_le_bytes());
    b[xcr0_at..xcr0_at + 8].copy_from_slice(&other.to_le_bytes());
    reseal(&mut b);
    let snap = vmm::snapshot::Snapshot::from_bytes(&b).expect("well formed");
    let mut host = vmm::Host::open().unwrap();
    let e = Sandbox::from_snapshot(Arc::new(snap))
        .build(&mut host)
        .err()
        .expect("refused");
    let m = e.to_string();
    assert!(m.contains("XSAVE) features 0x3; this host gives"), "{m}");
}

/// Random corruption never panics the parser: it refuses or accepts.
/// `VESSEL_FUZZ_ITERS` sets the count (300 here; the fuzzing command in
/// vmm/README.md runs 100,000).
#[test]
fn snapshot_parser_survives_mutations() {
    require_kvm!();
    let good = build(funcs()).snapshot().unwrap().to_bytes();
    let iters: u32 = std::env::var("VESSEL_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..iters {
        let mut b = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % b.len();
            b[at] = next() as u8;
        }
        if next() % 4 == 0 {
            b.truncate((next() as usize) % b.len());
        }
        if next() % 2 == 0 && b.len() > 8 {
            reseal(&mut b);
        }
        let _ = vmm::snapshot::Snapshot::from_bytes(&b);
    }
}

#[test]
fn vessel_snapshot_writes_and_checks_files() {
    require_kvm!();
    let dir = std::env::temp_dir().join(format!("vessel-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("funcs.snap");
    let elf = guest_elf("funcs");
    let f = file.to_str().unwrap();
    let out = vessel_tests::vessel(&["snapshot", elf.to_str().unwrap(), "--call", "bump", "-o", f]);
    let (so, se) = vessel_tests::texts(&out);
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("bump -> 1"), "{so}");
    let out = vessel_tests::vessel(&["snapshot", "--check", f]);
    let (so, se) = vessel_tests::texts(&out);
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("saved again: bit-identical"), "{so}");
    let out = vessel_tests::vessel(&["snapshot", "--check", f, "--call", "bump"]);
    assert!(vessel_tests::texts(&out).0.contains("bump -> 2"));
    let mut b = std::fs::read(&file).unwrap();
    let at = b.len() / 3;
    b[at] ^= 0x40;
    std::fs::write(&file, &b).unwrap();
    let out = vessel_tests::vessel(&["snapshot", "--check", f]);
    let (_, se) = vessel_tests::texts(&out);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(se.lines().count(), 1, "{se}");
    assert!(se.contains("checksum mismatch"), "{se}");
    std::fs::remove_dir_all(&dir).unwrap();
}
