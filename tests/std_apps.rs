//! Unmodified `std` programs as Vessel VMs (x86_64): each app's output is
//! compared with the same source built and run natively on this host in
//! the same test, and the C library (guest-rt/libc) is checked against the
//! symbols std needs.
//!
//! `cargo xtask test` builds and packs the std apps (apps/std-*); the
//! native builds go to target/std/native (their own target directory, so
//! the outer `cargo test` keeps its lock).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use vessel_tests::{app, require_kvm, texts};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The std apps under apps/ (each built natively too).
const STD_APPS: &[&str] = &["std-hello", "std-json", "std-rayon"];

/// The std apps built natively, once per test binary.
fn native(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = root().join("target/std/native");
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--release", "--quiet"])
            .args(STD_APPS.iter().flat_map(|a| ["-p", a]))
            .arg("--target-dir")
            .arg(&dir)
            .current_dir(root())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo for the native build");
        assert!(st.success(), "native build of the std apps failed");
    });
    dir.join("release").join(name)
}

/// Run the native build with exactly `env` as its environment.
fn run_native(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(native(name))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run the native build")
}

/// Run the packed guest with launcher flags, `--`, and `args`.
fn run_guest(name: &str, flags: &[&str], args: &[&str]) -> Output {
    Command::new(app(name))
        .args(flags)
        .args(["--timeout", "60", "--"])
        .args(args)
        .output()
        .expect("run the packed app")
}

/// stderr without the launcher's warning about more vCPUs than cores.
fn err_of(o: &Output) -> String {
    texts(o)
        .1
        .lines()
        .filter(|l| !l.starts_with("vessel: warning: --cpus"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A fresh empty host directory.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vessel-std-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("make a scratch directory");
    d
}

/// std-hello with files in `dir` (seen at the same path in the guest).
fn hello_both(cpus: &str, dir: &Path) -> (Output, Output) {
    let d = dir.to_str().expect("utf-8 temp path");
    let mapping = format!("{d}:{d}");
    let guest = run_guest(
        "std-hello",
        &["--cpus", cpus, "-e", "GREETING=hi", "--dir", &mapping],
        &[d],
    );
    let native = run_native("std-hello", &[d], &[("GREETING", "hi")]);
    (guest, native)
}

#[test]
fn std_hello_prints_what_it_prints_natively_on_4_vcpus() {
    require_kvm!();
    let dir = scratch("hello4");
    let (guest, native) = hello_both("4", &dir);
    let (out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{out}{}", err_of(&guest));
    assert_eq!(out, texts(&native).0);
    // Thread-locals per thread, Instant across vCPUs, the file removed.
    assert!(
        out.contains("thread 2: tls 702 sum 150000 monotonic true\n"),
        "{out}"
    );
    assert!(out.contains("main tls 7\n"), "{out}");
    assert!(out.contains("exists after remove: false\n"), "{out}");
    assert_eq!(std::fs::read_dir(&dir).map(Iterator::count).ok(), Some(0));
}

#[test]
fn std_hello_on_one_vcpu_runs_its_threads_at_join() {
    require_kvm!();
    let dir = scratch("hello1");
    let (guest, native) = hello_both("1", &dir);
    assert_eq!(guest.status.code(), Some(0), "{}", err_of(&guest));
    assert_eq!(texts(&guest).0, texts(&native).0);
}

#[test]
fn process_exit_is_the_vm_exit_code() {
    require_kvm!();
    let guest = run_guest("std-hello", &[], &["--exit", "42"]);
    let native = run_native("std-hello", &["--exit", "42"], &[]);
    assert_eq!(guest.status.code(), Some(42), "{}", err_of(&guest));
    assert_eq!(native.status.code(), Some(42));
    assert_eq!(texts(&guest).0, texts(&native).0);
}

/// The panic message lines of `err` with the thread id taken out (the
/// host's is the OS thread id; the guest's counts from 1 for `main`).
fn panic_message(err: &str) -> String {
    let mut lines = err.lines().skip_while(|l| !l.starts_with("thread '"));
    let head = lines.next().unwrap_or_default();
    let head = match (head.find(" ("), head.find(") panicked")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &head[..a], &head[b + 1..]),
        _ => head.to_string(),
    };
    format!("{head}\n{}", lines.next().unwrap_or_default())
}

#[test]
fn a_panic_unwinds_and_exits_101_like_native() {
    require_kvm!();
    for (arg, thread, code) in [
        ("--panic", "thread 'main' (1)", 101),
        ("--thread-panic", "thread '<unnamed>' (2)", 0),
    ] {
        let guest = run_guest("std-hello", &[], &[arg]);
        let native = run_native("std-hello", &[arg], &[]);
        let err = err_of(&guest);
        // std's own message, then the panic unwinds: `main` returns 101,
        // a panicked thread's join is Err and the program goes on.
        assert_eq!(guest.status.code(), Some(code), "{err}");
        assert_eq!(native.status.code(), Some(code));
        assert!(
            err.contains(&format!("{thread} panicked at apps/std-hello/src/main.rs:")),
            "{err}"
        );
        assert!(!err.contains("guest aborted"), "{err}");
        let native_err = texts(&native).1;
        assert_eq!(
            panic_message(&err),
            panic_message(&native_err),
            "{err}\n{native_err}"
        );
        assert_eq!(texts(&guest).0, texts(&native).0);
    }
}

#[test]
fn catch_unwind_catches_and_runs_destructors() {
    require_kvm!();
    let guest = run_guest("std-hello", &[], &["--catch"]);
    let native = run_native("std-hello", &["--catch"], &[]);
    let (out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{}", err_of(&guest));
    assert!(
        out.contains("dropped guard\ncaught: Some(\"caught panic with 2 args\")\n"),
        "{out}"
    );
    assert!(out.contains("no panic: Ok(7)\n"), "{out}");
    assert_eq!(out, texts(&native).0);
}

#[test]
fn a_missing_greeting_and_a_missing_file_read_as_std_errors() {
    require_kvm!();
    let dir = scratch("nofile");
    let d = dir.to_str().expect("utf-8 temp path");
    let mapping = format!("{d}:{d}");
    let guest = run_guest("std-hello", &["--dir", &mapping], &[d]);
    let (out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{}", err_of(&guest));
    assert!(out.contains("GREETING=Err(NotPresent)\n"), "{out}");
    assert!(out.contains("missing: Err(NotFound)\n"), "{out}");
    assert_eq!(out, texts(&run_native("std-hello", &[d], &[])).0);
}

/// Input files for std-json: two documents, a broken one, a text file
/// and a subdirectory.
fn json_inputs(dir: &Path) {
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write an input");
    w(
        "orders.json",
        r#"{"id": 7, "items": [{"sku": "a-1", "qty": 2, "price": 9.5}, {"sku": "b", "qty": 1}], "paid": true}"#,
    );
    w("nums.json", "[1, 2, 3, -40, 0.25, {\"deep\": [[[5]]]}]");
    w("broken.json", "{\"key\": [1, 2,");
    w("readme.txt", "not json\n");
    std::fs::create_dir(dir.join("nested")).expect("make a subdirectory");
}

/// Run std-json over `input` writing `out`, guest or native; returns the
/// run and what it wrote (then removed, for the other run).
fn json_run(guest: bool, root: &Path, input: &Path, out: &Path) -> (Output, String) {
    let (i, o) = (input.to_str().expect("utf-8"), out.to_str().expect("utf-8"));
    let r = if guest {
        let mapping = format!("{0}:{0}", root.to_str().expect("utf-8"));
        run_guest("std-json", &["--dir", &mapping], &[i, o])
    } else {
        run_native("std-json", &[i, o], &[])
    };
    let written = std::fs::read_to_string(out).unwrap_or_default();
    let _ = std::fs::remove_file(out);
    (r, written)
}

#[test]
fn std_json_lists_parses_and_writes_as_natively() {
    require_kvm!();
    let root = scratch("json");
    let input = root.join("in");
    std::fs::create_dir(&input).expect("make the input directory");
    json_inputs(&input);
    let out = root.join("out.json");
    let (guest, g_written) = json_run(true, &root, &input, &out);
    let (native, n_written) = json_run(false, &root, &input, &out);
    let (g_out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{g_out}{}", err_of(&guest));
    assert_eq!(native.status.code(), Some(0));
    assert_eq!(g_out, texts(&native).0);
    assert_eq!(g_written, n_written);
    // read_dir's kinds and sizes, serde_json's error, the transform.
    assert!(
        g_out.starts_with("file broken.json 14\n  bad json: EOF"),
        "{g_out}"
    );
    assert!(g_out.contains("dir nested 0\n"), "{g_out}");
    assert!(g_out.contains("file readme.txt 9\n"), "{g_out}");
    assert!(
        g_out.ends_with(&format!("wrote 2 files to {}\n", out.display())),
        "{g_out}"
    );
    assert!(g_written.contains("\"price\": 19.0"), "{g_written}");
}

#[test]
fn std_json_on_a_missing_directory_fails_as_natively() {
    require_kvm!();
    let root = scratch("json-missing");
    let input = root.join("no-such-dir");
    let out = root.join("out.json");
    let (guest, _) = json_run(true, &root, &input, &out);
    let (native, _) = json_run(false, &root, &input, &out);
    assert_eq!(guest.status.code(), Some(1), "{}", err_of(&guest));
    assert_eq!(native.status.code(), Some(1));
    let err = err_of(&guest);
    assert!(err.ends_with("(NotFound)\n"), "{err}");
    assert_eq!(err, texts(&native).1);
}

#[test]
fn std_rayon_reduces_on_3_vcpus_as_natively() {
    require_kvm!();
    // Two pool threads both ways: vCPUs 1 and 2 here (vCPU 0 runs main).
    let guest = run_guest(
        "std-rayon",
        &["--cpus", "3", "-e", "RAYON_NUM_THREADS=2"],
        &["400000"],
    );
    let native = run_native("std-rayon", &["400000"], &[("RAYON_NUM_THREADS", "2")]);
    let (out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{out}{}", err_of(&guest));
    assert_eq!(native.status.code(), Some(0));
    assert_eq!(out, texts(&native).0);
    assert!(out.contains("pool threads: 2\n"), "{out}");
    assert!(out.contains("sqrt sum close: true\n"), "{out}");
}

#[test]
fn rayon_sizes_its_pool_to_the_vcpus_that_can_run_threads() {
    require_kvm!();
    // available_parallelism counts the vCPUs but vCPU 0 (main's).
    let guest = run_guest("std-rayon", &["--cpus", "2"], &["20000"]);
    let (out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{out}{}", err_of(&guest));
    assert!(out.contains("pool threads: 1\n"), "{out}");
}

#[test]
fn threads_without_a_vcpu_stop_the_vm_clearly_instead_of_hanging() {
    require_kvm!();
    // One vCPU: rayon's worker never starts and main waits for it.
    let t0 = std::time::Instant::now();
    let guest = run_guest("std-rayon", &["--cpus", "1"], &["20000"]);
    let err = err_of(&guest);
    assert_eq!(guest.status.code(), Some(134), "{err}");
    assert!(
        err.contains("1 spawned thread(s) have no vCPU to start on"),
        "{err}"
    );
    assert!(
        err.contains("run with --cpus 2 or more (this VM has 1)"),
        "{err}"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn files_from_a_thread_off_vcpu_0_fail_unsupported() {
    require_kvm!();
    let dir = scratch("pool-file");
    let f = dir.join("f.txt");
    std::fs::write(&f, "hello\n").expect("write the input");
    let (d, f) = (dir.to_str().expect("utf-8"), f.to_str().expect("utf-8"));
    let mapping = format!("{d}:{d}");
    let guest = run_guest(
        "std-rayon",
        &["--cpus", "2", "--dir", &mapping],
        &["--file", f],
    );
    let (out, _) = texts(&guest);
    assert_eq!(guest.status.code(), Some(0), "{out}{}", err_of(&guest));
    // Only vCPU 0 has an I/O ring (guest-rt/README.md): a clear error
    // where the host would read the file.
    assert!(out.starts_with("pool thread: Unsupported: "), "{out}");
    let native = run_native("std-rayon", &["--file", f], &[]);
    assert_eq!(texts(&native).0, "pool thread read 6 bytes\n");
}

/// The C functions a std program needs (the issue's list: std::fs, env,
/// time, thread, HashMap; then rayon/serde_json/regex's four more), and
/// those std-hello adds (unlink, exit, ...).
const NEEDED: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "free",
    "posix_memalign",
    "memcpy",
    "memmove",
    "memset",
    "bcmp",
    "memcmp",
    "strlen",
    "open",
    "read",
    "write",
    "writev",
    "close",
    "lseek",
    "fstat",
    "stat",
    "readlink",
    "realpath",
    "getcwd",
    "dup",
    "fcntl",
    "poll",
    "mmap",
    "munmap",
    "mprotect",
    "clock_gettime",
    "getenv",
    "getauxval",
    "sysconf",
    "syscall",
    "__errno_location",
    "__xpg_strerror_r",
    "abort",
    "pause",
    "signal",
    "sigaction",
    "sigaltstack",
    "pthread_create",
    "pthread_join",
    "pthread_self",
    "pthread_getattr_np",
    "pthread_attr_init",
    "pthread_attr_destroy",
    "pthread_attr_setstacksize",
    "pthread_attr_getstack",
    "pthread_attr_getguardsize",
    "pthread_key_create",
    "pthread_key_delete",
    "pthread_setspecific",
    "pthread_getspecific",
    "pthread_setname_np",
    "pthread_detach",
    "sched_getaffinity",
    "sched_yield",
    "dl_iterate_phdr",
    "_Unwind_Backtrace",
    "_Unwind_GetIP",
    "_Unwind_GetIPInfo",
    "_Unwind_GetCFA",
    "_Unwind_GetLanguageSpecificData",
    "_Unwind_GetRegionStart",
    "_Unwind_GetTextRelBase",
    "_Unwind_GetDataRelBase",
    "_Unwind_SetGR",
    "_Unwind_SetIP",
    "_Unwind_Resume",
    "_Unwind_RaiseException",
    "_Unwind_DeleteException",
    "unlink",
    "exit",
    "nanosleep",
    "environ",
    "opendir",
    "readdir",
    "closedir",
    "dirfd",
    "fdopendir",
    "fstatat",
    "gettid",
];

/// The rlibs the build tool linked std-hello with (it lists them).
fn linked_rlibs() -> Vec<PathBuf> {
    let list = root().join("target/std/link-x86_64/rlibs.txt");
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `cargo xtask build std-hello`)",
            list.display()
        )
    });
    text.lines().map(PathBuf::from).collect()
}

/// Global symbols defined by the objects of the archive at `path`.
fn defined_in_archive(path: &Path) -> Vec<String> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(path).expect("read the rlib");
    let ar = object::read::archive::ArchiveFile::parse(&*data).expect("an rlib is an archive");
    let mut names = Vec::new();
    for m in ar.members() {
        let m = m.expect("archive member");
        let Ok(bytes) = m.data(&*data) else {
            continue;
        };
        // A copy: ELF parsing wants the object 8-byte aligned, which an
        // archive member need not be (malloc'd memory is).
        let bytes = bytes.to_vec();
        let Ok(obj) = object::File::parse(&*bytes) else {
            continue;
        };
        for s in obj.symbols() {
            if s.is_global() && !s.is_undefined() {
                if let Ok(n) = s.name() {
                    names.push(n.to_string());
                }
            }
        }
    }
    names
}

#[test]
fn the_c_library_defines_every_symbol_std_needs() {
    let rlibs = linked_rlibs();
    let ours = |stem: &str| {
        rlibs
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(stem))
            })
            .unwrap_or_else(|| panic!("no {stem}*.rlib among {rlibs:?}"))
    };
    let mut defined = defined_in_archive(ours("libvessel_libc"));
    defined.extend(defined_in_archive(ours("libguest_rt-")));
    // The unwinder (`_Unwind_*`) is the `unwinding` crate's.
    defined.extend(defined_in_archive(ours("libunwinding-")));
    let missing: Vec<&&str> = NEEDED
        .iter()
        .filter(|s| !defined.iter().any(|d| d == **s))
        .collect();
    assert!(missing.is_empty(), "vessel-libc lacks {missing:?}");
}

#[test]
fn a_linked_std_program_leaves_no_symbol_undefined() {
    use object::{Object, ObjectSymbol};
    for app in STD_APPS {
        let elf = root()
            .join("target/std/x86_64-unknown-linux-musl/release")
            .join(app);
        let data = std::fs::read(&elf)
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask build {app}`)", elf.display()));
        let obj = object::File::parse(&*data).expect("parse the ELF");
        let undefined: Vec<String> = obj
            .symbols()
            .filter(|s| s.is_undefined() && !s.is_weak() && !s.name().unwrap_or("").is_empty())
            .filter_map(|s| s.name().ok().map(str::to_string))
            // The general-dynamic TLS calls in the prebuilt std are relaxed
            // to local-exec by the static link: the name stays, no call does.
            .filter(|n| n != "__tls_get_addr")
            .collect();
        assert!(undefined.is_empty(), "undefined in {app}: {undefined:?}");
    }
}
