//! The arm64 test table: what /init runs and what each run must print.

/// Lengths QEMU's `-cpu max,sve=on` offers: every multiple of 128 up to 2048.
const SVE_LENGTHS: std::ops::RangeInclusive<u32> = 1..=16;

/// One test for /init: see build/arm64-init for the format.
pub struct T {
    name: String,
    code: i32,
    stdout: Vec<String>,
    stderr: Vec<String>,
    argv: String,
}

/// One test: name, exit code, stdout and stderr substrings, command line.
pub(crate) fn t(name: &str, code: i32, stdout: &[&str], stderr: &[&str], argv: &str) -> T {
    T {
        name: name.into(),
        code,
        stdout: stdout.iter().map(|s| s.to_string()).collect(),
        stderr: stderr.iter().map(|s| s.to_string()).collect(),
        argv: argv.into(),
    }
}

/// /init's `tests.txt`: one tab-separated line per test.
pub fn spec(tests: &[T]) -> String {
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

/// Every test for QEMU's `-cpu max,sve=on`, given the apps that were built.
pub fn tests(apps: &[String]) -> Vec<T> {
    let mut v = launcher_tests();
    v.extend(runtime_tests());
    v.extend(sve_tests());
    v.extend(super::smp_suite::smp_tests());
    if apps.iter().any(|a| a == "lazyscan") {
        v.extend(apf_tests());
    }
    if apps.iter().any(|a| a == "vector") {
        v.extend(vector_tests());
    }
    if apps.iter().any(|a| a == "heap") {
        v.extend(super::scale_suite::scale_tests());
    }
    if ["fsprobe", "wc", "sort"]
        .iter()
        .all(|n| apps.iter().any(|a| a == n))
    {
        v.extend(super::fs_suite::fs_tests());
    }
    v
}

/// `vessel snapshot` of the library guest at `bits` of SVE, then restored
/// into a new VM and saved again: bit-identical (Z/P/FFR and ZCR_EL1
/// included).
fn snapshot_round_trip(bits: u32) -> [T; 2] {
    let file = format!("/tmp/funcs-sve{bits}.snap");
    [
        t(
            &format!("snapshot-sve{bits}"),
            0,
            &["bump -> 1", "bump -> 2", &format!("wrote {file}")],
            &[],
            &format!(
                "/vessel snapshot /apps/funcs --sve-vl {bits} --call bump --call bump -o {file}"
            ),
        ),
        t(
            &format!("snapshot-sve{bits}-restore"),
            0,
            &["saved again: bit-identical"],
            &[],
            &format!("/vessel snapshot --check {file}"),
        ),
    ]
}

/// Output, arguments, exit codes and how the launcher ends a guest.
fn launcher_tests() -> Vec<T> {
    vec![
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
            "timeout",
            124,
            &["spinning"],
            &["timed out"],
            "/apps/selftest --timeout 1 spin",
        ),
    ]
}

/// Exceptions and the runtime's services (environment, heap, stderr, clock).
fn runtime_tests() -> Vec<T> {
    vec![
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
            "forged-fault-report",
            126,
            &[],
            &["from outside the exception stubs"],
            "/apps/selftest forge-fault",
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
                // FAR is UNKNOWN for this exception class: not printed.
                "!FAR",
            ],
            "/apps/selftest ud",
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
    ]
}

/// SVE off, `max`, bad lengths, register dumps and every length QEMU offers.
fn sve_tests() -> Vec<T> {
    let mut v = vec![
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
            &["4096 bits is outside 128..=2048", "2048 bits"],
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
    v
}

/// The vector app with its own `sve = max`, with SVE off, at every length.
fn vector_tests() -> Vec<T> {
    let mut v = vec![
        t(
            "vector-header-max",
            0,
            &["vector: all kernels ok (isa=sve, vl=2048 bits)"],
            &[],
            "/apps/vector",
        ),
        t(
            "vector-sve-off",
            0,
            &["SVE absent in this VM", "all kernels ok (isa=rust-neon"],
            &[],
            "/apps/vector --sve off",
        ),
        // Every table: plain Rust (scalar, NEON-vectorized) and SVE asm.
        t(
            "vector-all",
            0,
            &[
                "all kernels ok (isa=scalar,",
                "all kernels ok (isa=rust-neon, vl=128",
                "all kernels ok (isa=sve, vl=256",
            ],
            &[],
            "/apps/vector --sve-vl 256 -- --all",
        ),
    ];
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
    v
}

/// Data files for the async-PF tests: (name in /data, bytes).
pub const APF_DATA: &[(&str, usize)] = &[
    ("sum.bin", 1_000_003),
    ("pair.bin", 256 * 4096),
    ("sync.bin", 300 * 1024),
    ("storm.bin", 64 * 4096),
    ("halt.bin", 8 * 4096),
    ("float.bin", 32 * 4096),
    ("bad.bin", 10),
];

/// Tasks of the float-state tests (`lazyscan --float`).
const FLOAT_TASKS: usize = 4;

/// The sum of the bytes of `/data/NAME`, as lazyscan prints it.
fn apf_sum(name: &str) -> String {
    vessel_tests::lazy_test_bytes(apf_len(name)).1.to_string()
}

/// The length of `/data/NAME`.
fn apf_len(name: &str) -> usize {
    APF_DATA
        .iter()
        .find(|d| d.0 == name)
        .map(|d| d.1)
        .unwrap_or(0)
}

/// What `lazyscan --float -- --tasks FLOAT_TASKS` prints for `/data/NAME`:
/// the host's float fingerprint of the same bytes.
fn apf_float(name: &str) -> String {
    let (bytes, _) = vessel_tests::lazy_test_bytes(apf_len(name));
    vessel_tests::float_fingerprint(&bytes, FLOAT_TASKS).to_string()
}

/// The equivalents of tests/apf.rs, with sums computed here. Overlap is
/// shown by lazyscan's counters (more than one fault outstanding at once),
/// not by how many faults a given latency keeps in flight.
fn apf_tests() -> Vec<T> {
    let (s_sum, s_pair, s_sync, s_storm, s_halt) = (
        apf_sum("sum.bin"),
        apf_sum("pair.bin"),
        apf_sum("sync.bin"),
        apf_sum("storm.bin"),
        apf_sum("halt.bin"),
    );
    let mut v = vec![
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
        t(
            "apf-storm",
            0,
            &["paired=true async=true overlapped=true", &s_storm],
            &[],
            "/apps/lazyscan --lazy data=/data/storm.bin --lazy-latency 100 -- --tasks 64 --storm",
        ),
        t(
            "apf-halt",
            0,
            &["paired=true async=true", "faults8=true", &s_halt],
            &[],
            "/apps/lazyscan --lazy data=/data/halt.bin --lazy-latency 30 -- --tasks 1 --sleep-ms 50",
        ),
    ];
    v.extend(apf_float_tests());
    // --stats on arm64: every page of halt.bin is one launcher-served
    // "not present" (an EFAULT exit) with its "ready", fetched once.
    v.push(t(
        "apf-stats",
        0,
        &[&s_halt],
        &[
            "vessel stats:",
            "lazy_fault 8",
            "not_present 8 ready 8 sync 0",
            "pages fetched          8",
        ],
        "/apps/lazyscan --stats --lazy data=/data/halt.bin -- --tasks 1",
    ));
    v.extend(apf_error_tests());
    v
}

/// Float-heavy tasks parked and resumed across faults (tests/apf.rs's
/// `float_state_survives_faults_bit_for_bit`): NEON and FP registers live
/// across every fault must come back bit for bit, with the Q-register save
/// path and, with SVE on, the Z/P/FFR one. The total is the host's.
fn apf_float_tests() -> Vec<T> {
    let fp = apf_float("float.bin");
    let argv = |sve: &str| {
        format!(
            "/apps/lazyscan --lazy data=/data/float.bin --lazy-latency 2 {sve}-- --tasks {FLOAT_TASKS} --float --passes 2"
        )
    };
    let want = [
        "paired=true async=true overlapped=true",
        "faults8=true",
        fp.as_str(),
    ];
    vec![
        t("apf-float", 0, &want, &[], &argv("")),
        t("apf-float-sve", 0, &want, &[], &argv("--sve max ")),
    ]
}

/// Bad lazy regions are refused before boot; writing one is a guest fault.
fn apf_error_tests() -> Vec<T> {
    vec![
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

/// Tests for a QEMU CPU that offers SVE lengths 128..=512 bits only.
pub fn restricted_sve_tests() -> Vec<T> {
    let mut v = vec![
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
    ];
    // Snapshots round trip with SVE at two lengths (256 and 512 bits); one
    // asking for the whole set here is refused for a 384-bit snapshot.
    // (On this boot rather than the full one: its 8 tests leave room.)
    v.extend(snapshot_round_trip(256));
    v.extend([
        t(
            "sve512-snapshot",
            0,
            &["wrote /tmp/funcs-sve512.snap"],
            &[],
            "/vessel snapshot /apps/funcs --sve max --call bump -o /tmp/funcs-sve512.snap",
        ),
        t(
            "sve512-snapshot-restore",
            0,
            &["saved again: bit-identical"],
            &[],
            "/vessel snapshot --check /tmp/funcs-sve512.snap",
        ),
        t(
            "sve512-snapshot-384",
            0,
            &["wrote /tmp/funcs-sve384.snap"],
            &[],
            "/vessel snapshot /apps/funcs --sve-vl 384 -o /tmp/funcs-sve384.snap",
        ),
        t(
            "sve512-refuses-other-sve-set",
            125,
            &[],
            &["the snapshot has SVE lengths 128, 256, 384 bits; this host gives 128, 256, 384, 512 bits"],
            "/vessel snapshot --check /tmp/funcs-sve384.snap --sve max",
        ),
    ]);
    v
}
