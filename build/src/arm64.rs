//! The arm64 suite: packed aarch64 apps run under real arm64 KVM inside
//! `qemu-system-aarch64 -M virt,virtualization=on` (TCG), booting Debian's
//! arm64 kernel with an initramfs whose /init (build/arm64-init) runs the
//! tests and reports one line each on the serial console.
//!
//! Everything it needs is installed here: qemu-system-arm (apt), the arm64
//! kernel (apt-get download of Debian's package, extracted under
//! target/arm64-kernel). The initramfs is written directly as a newc cpio
//! archive (no root needed for /dev/console).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{guests, project_root, setup, Arch};

/// Whole-suite limit, boot included.
const SUITE_LIMIT: Duration = Duration::from_secs(280);
/// Lengths QEMU's `-cpu max,sve=on` offers: every multiple of 128 up to 2048.
const SVE_LENGTHS: std::ops::RangeInclusive<u32> = 1..=16;

fn kernel_dir() -> PathBuf {
    project_root().join("target/arm64-kernel")
}

/// The kernel the suite boots: `$VESSEL_ARM64_KERNEL` if set (to try
/// another kernel, e.g. Debian 13's 6.12), else the one `setup` installs.
fn kernel() -> PathBuf {
    std::env::var_os("VESSEL_ARM64_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| kernel_dir().join("vmlinuz"))
}

/// qemu-system-aarch64 and an arm64 kernel with KVM built in.
pub fn setup(sh: &Shell) -> Result<()> {
    if cmd!(sh, "qemu-system-aarch64 --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        setup::apt_install(sh, &["qemu-system-arm"])?;
    }
    let dir = kernel_dir();
    if dir.join("vmlinuz").exists() {
        return Ok(());
    }
    let sudo = if setup::is_root() { "env" } else { "sudo" };
    let foreign = cmd!(sh, "dpkg --print-foreign-architectures").read()?;
    if !foreign.lines().any(|l| l.trim() == "arm64") {
        cmd!(sh, "{sudo} dpkg --add-architecture arm64").run()?;
        cmd!(sh, "{sudo} apt-get update -q").run()?;
    }
    // The metapackage names the current versioned kernel package.
    let deps = match cmd!(sh, "apt-cache depends linux-image-arm64:arm64").read() {
        Ok(d) => d,
        Err(_) => {
            cmd!(sh, "{sudo} apt-get update -q").run()?;
            cmd!(sh, "apt-cache depends linux-image-arm64:arm64").read()?
        }
    };
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|p| p.trim().trim_end_matches(":arm64"))
        .find(|p| p.starts_with("linux-image-"))
        .context("apt-cache depends linux-image-arm64:arm64 names no linux-image package")?
        .to_string();
    let dl = dir.join("download");
    let _ = std::fs::remove_dir_all(&dl);
    sh.create_dir(&dl)?;
    {
        let _d = sh.push_dir(&dl);
        let spec = format!("{pkg}:arm64");
        cmd!(sh, "apt-get download -q {spec}").run()?;
    }
    let deb = std::fs::read_dir(&dl)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let x = dl.join("x");
    cmd!(sh, "dpkg-deb -x {deb} {x}").run()?;
    let boot = x.join("boot");
    let mut vmlinuz = None;
    let mut config = None;
    for e in std::fs::read_dir(&boot)? {
        let p = e?.path();
        let n = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if n.starts_with("vmlinuz-") {
            vmlinuz = Some(p);
        } else if n.starts_with("config-") {
            config = Some(p);
        }
    }
    let vmlinuz = vmlinuz.context("the kernel package has no /boot/vmlinuz-*")?;
    if let Some(c) = config {
        let text = std::fs::read_to_string(&c)?;
        if !text.lines().any(|l| l == "CONFIG_KVM=y") {
            bail!(
                "{pkg}: KVM is not built in (CONFIG_KVM=y missing); the initramfs has no modules"
            );
        }
    }
    std::fs::copy(&vmlinuz, dir.join("vmlinuz"))?;
    std::fs::write(dir.join("kernel-package"), format!("{pkg}\n"))?;
    let _ = std::fs::remove_dir_all(&dl);
    eprintln!("xtask: arm64 kernel {pkg} in {}", dir.display());
    Ok(())
}

/// One test for /init: see build/arm64-init for the format.
struct T {
    name: String,
    code: i32,
    stdout: Vec<String>,
    stderr: Vec<String>,
    argv: String,
}

fn t(name: &str, code: i32, stdout: &[&str], stderr: &[&str], argv: &str) -> T {
    T {
        name: name.into(),
        code,
        stdout: stdout.iter().map(|s| s.to_string()).collect(),
        stderr: stderr.iter().map(|s| s.to_string()).collect(),
        argv: argv.into(),
    }
}

fn tests(apps: &[String]) -> Vec<T> {
    let mut v = vec![
        t(
            "hello",
            0,
            &["Hello from a Vessel VM on aarch64!", "args: []"],
            &[],
            "/apps/hello",
        ),
        t(
            "hello-args",
            0,
            &[r#"args: ["a", "b", "--x"]"#],
            &[],
            "/apps/hello -- a b --x",
        ),
        t("exit-0", 0, &[], &[], "/apps/selftest exit 0"),
        t("exit-42", 42, &[], &[], "/apps/selftest exit 42"),
        t(
            "exit-reserved",
            1,
            &[],
            &["collides with a code Vessel reserves"],
            "/apps/selftest exit 126",
        ),
        t(
            "panic",
            101,
            &["about to index"],
            &["panicked at", "index out of bounds"],
            "/apps/selftest panic",
        ),
        t(
            "abort",
            134,
            &[],
            &["guest aborted: boom"],
            "/apps/selftest abort boom",
        ),
        t(
            "exception-fault",
            126,
            &[],
            &[
                "guest exception: data abort",
                "ESR 0x96",
                "FAR 0xdead0000",
                "ELR 0x",
                "<__vessel_app_main+0x",
            ],
            "/apps/selftest fault",
        ),
        t(
            "exception-null",
            126,
            &[],
            &[
                "guest exception: data abort",
                "FAR 0x8,",
                "<__vessel_app_main+0x",
            ],
            "/apps/selftest null",
        ),
        t(
            "exception-udf",
            126,
            &[],
            &[
                "guest exception: undefined instruction",
                "ESR 0x02000000",
                "ELR 0x",
                " <",
            ],
            "/apps/selftest ud",
        ),
        t(
            "timeout",
            124,
            &["spinning"],
            &["timed out"],
            "/apps/selftest --timeout 1 spin",
        ),
        t("env", 0, &["K=v"], &[], "/apps/selftest -e K=v env K"),
        t("heap", 0, &["heap ok 8 MiB"], &[], "/apps/selftest heap 8"),
        t(
            "stderr",
            0,
            &[],
            &["to-stderr"],
            "/apps/selftest stderr to-stderr",
        ),
        t(
            "clock",
            0,
            &["host ", " ns guest "],
            &[],
            "/apps/selftest clock",
        ),
        t("sve-off", 0, &["sve off"], &[], "/apps/selftest sve"),
        t(
            "sve-max",
            0,
            &["sve 2048 bits"],
            &[],
            "/apps/selftest --sve max sve",
        ),
        t(
            "sve-bad-vl",
            125,
            &[],
            &["not a multiple of 128", "the host offers 128, 256"],
            "/apps/selftest --sve-vl 200 sve",
        ),
        t(
            "sve-too-long",
            125,
            &[],
            &["not a multiple of 128 in 128..=2048", "2048 bits"],
            "/apps/selftest --sve-vl 4096 sve",
        ),
        t(
            "dump-regs",
            0,
            &["sve 256 bits"],
            &[
                "vcpu0 z0   = 0x",
                "vcpu0 z31  = 0x",
                "vcpu0 p15  = 0x",
                "vcpu0 ffr  = 0x",
            ],
            "/apps/selftest --sve-vl 256 --dump-regs sve",
        ),
        t(
            "dump-regs-values",
            0,
            &[],
            &[
                // z30 = bytes 0..31 (most significant first), p14 = ptrue .s.
                "vcpu0 z30  = 0x1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100",
                "vcpu0 p14  = 0x11111111",
            ],
            "/apps/selftest --sve-vl 256 --dump-regs sve-pattern",
        ),
    ];
    for vq in SVE_LENGTHS {
        let bits = vq * 128;
        let line = format!("sve {bits} bits");
        v.push(t(
            &format!("sve-{bits}"),
            0,
            &[&line],
            &[],
            &format!("/apps/selftest --sve-vl {bits} sve"),
        ));
    }
    if apps.iter().any(|a| a == "lazyscan") {
        v.extend(apf_tests());
    }
    if apps.iter().any(|a| a == "vector") {
        // The app asks for `sve = max` in its header.
        v.push(t(
            "vector-header-max",
            0,
            &["vector: all kernels ok (isa=sve, vl=2048 bits)"],
            &[],
            "/apps/vector",
        ));
        v.push(t(
            "vector-sve-off",
            0,
            &["SVE absent in this VM", "all kernels ok (isa=scalar"],
            &[],
            "/apps/vector --sve off",
        ));
        for vq in SVE_LENGTHS {
            let bits = vq * 128;
            let line = format!("vector: all kernels ok (isa=sve, vl={bits} bits)");
            v.push(t(
                &format!("vector-sve-{bits}"),
                0,
                &[&line],
                &[],
                &format!("/apps/vector --sve-vl {bits} -- --isa sve"),
            ));
        }
    }
    v
}

/// Data files for the async-PF tests: (name in /data, bytes).
const APF_DATA: &[(&str, usize)] = &[
    ("sum.bin", 1_000_003),
    ("pair.bin", 256 * 4096),
    ("sync.bin", 300 * 1024),
    ("storm.bin", 64 * 4096),
    ("halt.bin", 8 * 4096),
    ("bad.bin", 10),
];

/// The equivalents of tests/apf.rs, with sums computed here.
fn apf_tests() -> Vec<T> {
    let sum = |name: &str| {
        let len = APF_DATA
            .iter()
            .find(|d| d.0 == name)
            .map(|d| d.1)
            .unwrap_or(0);
        vessel_tests::lazy_test_bytes(len).1.to_string()
    };
    let (s_sum, s_pair, s_sync, s_storm, s_halt) = (
        sum("sum.bin"),
        sum("pair.bin"),
        sum("sync.bin"),
        sum("storm.bin"),
        sum("halt.bin"),
    );
    vec![
        t(
            "apf-sum",
            0,
            &["enabled=true", "paired=true", &s_sum],
            &[],
            "/apps/lazyscan --lazy data=/data/sum.bin",
        ),
        t(
            "apf-pair",
            0,
            &["enabled=true", "paired=true async=true overlapped=true", &s_pair],
            &[],
            "/apps/lazyscan --lazy data=/data/pair.bin --lazy-latency 5 -- --tasks 8",
        ),
        t(
            "apf-sync",
            0,
            &["enabled=false not_present=0 ready=0", &s_sync],
            &[],
            "/apps/lazyscan --lazy data=/data/sync.bin --lazy-latency 1 --no-async-pf",
        ),
        // Under TCG each fault takes ~5 ms to raise, so the fetch latency
        // must be long enough for 32 or more of the 64 to be in flight at
        // once (100 ms gave 17-22 here).
        t(
            "apf-storm",
            0,
            &["paired=true async=true overlapped=true storm=true", &s_storm],
            &[],
            "/apps/lazyscan --lazy data=/data/storm.bin --lazy-latency 500 -- --tasks 64 --storm",
        ),
        t(
            "apf-halt",
            0,
            &["paired=true async=true", "faults8=true", &s_halt],
            &[],
            "/apps/lazyscan --lazy data=/data/halt.bin --lazy-latency 30 -- --tasks 1 --sleep-ms 50",
        ),
        t(
            "apf-bad-missing",
            125,
            &[],
            &["cannot open", "missing"],
            "/apps/lazyscan --lazy data=/data/missing",
        ),
        t(
            "apf-bad-dir",
            125,
            &[],
            &["not a regular file"],
            "/apps/lazyscan --lazy data=/data",
        ),
        t(
            "apf-bad-small",
            125,
            &[],
            &["smaller"],
            "/apps/lazyscan --lazy data=/data/bad.bin:4",
        ),
        t(
            "apf-write",
            126,
            &[],
            &["guest exception: data abort", "permission fault", "write"],
            "/apps/lazyscan --lazy data=/data/bad.bin -- --write",
        ),
    ]
}

fn spec(tests: &[T]) -> String {
    tests
        .iter()
        .map(|t| {
            format!(
                "{}\t{}\t{}\t{}\t{}\n",
                t.name,
                t.code,
                t.stdout.join(" && "),
                t.stderr.join(" && "),
                t.argv
            )
        })
        .collect()
}

/// A newc cpio archive, written without the cpio tool (and without root:
/// /dev/console is just a header).
#[derive(Clone)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.ino += 1;
        self.out.extend_from_slice(hdr.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, path: &Path) -> Result<()> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.entry(name, 0o100755, (0, 0), &data);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// Build everything, boot the test machine, report.
/// Run the suite; returns how many tests passed (any failure is an error).
pub fn test(sh: &Shell) -> Result<usize> {
    setup(sh)?;
    guests::build_all(sh, Arch::Aarch64)?;
    cmd!(
        sh,
        "cargo build --release -p vessel-arm64-init --target aarch64-unknown-linux-musl"
    )
    .run()?;
    let apps = guests::apps()?;
    let tests = tests(&apps);

    let mut c = Cpio::new();
    for d in ["dev", "proc", "sys", "tmp", "apps"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file(
        "init",
        &project_root().join("target/aarch64-unknown-linux-musl/release/vessel-arm64-init"),
    )?;
    for app in &apps {
        c.file(&format!("apps/{app}"), &guests::packed(Arch::Aarch64, app))?;
    }
    c.dir("data");
    for (name, len) in APF_DATA {
        c.entry(
            &format!("data/{name}"),
            0o100644,
            (0, 0),
            &vessel_tests::lazy_test_bytes(*len).0,
        );
    }
    let mut passed = 0;
    for (suite, cpu, tests) in [
        ("arm64 suite", "max,sve=on", tests),
        // A host whose SVE stops at 512 bits (vq 1..=4): the lengths it
        // cannot give must be refused naming those it can, and `max` and
        // the app's own request must mean 512.
        (
            "arm64 suite, SVE up to 512 bits",
            "max,sve=on,sve-max-vq=4",
            restricted_sve_tests(),
        ),
    ] {
        let mut c = c.clone();
        c.entry("tests.txt", 0o100644, (0, 0), spec(&tests).as_bytes());
        let initrd = project_root().join("target/arm64-initrd.cpio");
        std::fs::write(&initrd, c.finish())?;
        passed += boot(suite, cpu, &initrd, &tests)?;
    }
    Ok(passed)
}

/// Tests for a QEMU CPU that offers SVE lengths 128..=512 bits only.
fn restricted_sve_tests() -> Vec<T> {
    vec![
        t(
            "sve512-max",
            0,
            &["sve 512 bits"],
            &[],
            "/apps/selftest --sve max sve",
        ),
        t(
            "sve512-384",
            0,
            &["sve 384 bits"],
            &[],
            "/apps/selftest --sve-vl 384 sve",
        ),
        t(
            "sve512-refuses-1024",
            125,
            &[],
            &[
                "1024 bits is not one the host offers",
                "offers 128, 256, 384, 512 bits",
            ],
            "/apps/selftest --sve-vl 1024 sve",
        ),
        t(
            "sve512-vector-app-max",
            0,
            &["vector: all kernels ok (isa=sve, vl=512 bits)"],
            &[],
            "/apps/vector",
        ),
    ]
}

/// Boot QEMU with `initrd` on a `-cpu` model, stream the console and turn
/// the init's result lines into pass/fail. Returns the number passed; a
/// failure, a missing sentinel or the time limit is an error.
fn boot(suite: &str, cpu: &str, initrd: &Path, tests: &[T]) -> Result<usize> {
    let kernel = kernel();
    eprintln!(
        "xtask: booting the arm64 test machine ({}), -cpu {cpu} ({} tests, limit {} s)",
        kernel.display(),
        tests.len(),
        SUITE_LIMIT.as_secs()
    );
    let mut qemu = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            cpu,
            "-accel",
            "tcg,thread=multi",
            "-smp",
            "2",
            "-m",
            "1024",
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
            "-kernel",
        ])
        .arg(&kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyAMA0 rdinit=/init quiet panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting qemu-system-aarch64")?;
    let out = qemu.stdout.take().context("QEMU stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).split(b'\n').map_while(|l| l.ok()) {
            let s = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(s).is_err() {
                break;
            }
        }
    });

    let start = Instant::now();
    let (mut passed, mut failed, mut flaky) = (Vec::new(), Vec::new(), Vec::new());
    let mut summary = None;
    let mut done = None;
    let mut log = Vec::new();
    let stderr = std::io::stderr();
    while done.is_none() {
        let left = SUITE_LIMIT.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                let _ = writeln!(stderr.lock(), "  arm64| {line}");
                if let Some(r) = line.strip_prefix("VESSEL-TEST ok ") {
                    passed.push(r.to_string());
                } else if let Some(r) = line.strip_prefix("VESSEL-TEST FAIL ") {
                    failed.push(r.to_string());
                } else if let Some(r) = line.strip_prefix("VESSEL-FLAKY ") {
                    flaky.push(r.to_string());
                } else if let Some(r) = line.strip_prefix("VESSEL-TESTS ") {
                    summary = Some(r.to_string());
                } else if let Some(r) = line.find("VESSEL-DONE rc=") {
                    done = Some(line[r + 15..].trim().to_string());
                }
                log.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Power-off normally ends QEMU; make sure it is gone either way.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && qemu.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = qemu.kill();
    let _ = qemu.wait();

    let secs = start.elapsed().as_secs_f64();
    eprintln!("\n{suite} ({secs:.0} s):");
    for p in &passed {
        eprintln!("  ok    {p}");
    }
    for f in &failed {
        eprintln!("  FAIL  {f}");
    }
    for f in &flaky {
        eprintln!("  FLAKY {f}");
    }
    let ran = passed.len() + failed.len();
    match (&done, &summary) {
        (None, _) if start.elapsed() >= SUITE_LIMIT => {
            bail!(
                "{suite}: no result after {} s (QEMU killed); {} of {} tests reported",
                SUITE_LIMIT.as_secs(),
                ran,
                tests.len()
            )
        }
        (None, _) => bail!(
            "{suite}: QEMU ended without the VESSEL-DONE sentinel; {ran} of {} tests reported",
            tests.len()
        ),
        _ => {}
    }
    eprintln!(
        "{suite}: {}",
        summary.unwrap_or_else(|| "no summary line".into())
    );
    if !failed.is_empty() || ran != tests.len() || done.as_deref() != Some("0") {
        bail!(
            "{suite} failed: {} passed, {} failed, {} of {} reported",
            passed.len(),
            failed.len(),
            ran,
            tests.len()
        );
    }
    Ok(passed.len())
}
