//! The lists, the compiled filters, and a trapped call ending a child
//! process with its one-line report.

use super::*;

#[test]
fn every_listed_name_is_a_system_call_of_a_supported_machine() {
    for role in Role::ALL {
        for name in role.calls() {
            let x86 = name.parse::<syscalls::x86_64::Sysno>().is_ok();
            let arm = name.parse::<syscalls::aarch64::Sysno>().is_ok();
            assert!(x86 || arm, "{}: `{name}` is no system call", role.name());
        }
    }
}

#[test]
fn a_role_allows_what_the_roles_it_starts_need() {
    for role in Role::ALL {
        let calls = role.calls();
        let ioctls = role.ioctls();
        for child in role.starts() {
            for c in child.calls() {
                assert!(calls.contains(&c), "{:?} lacks {c} of {:?}", role, child);
            }
            for i in child.ioctls() {
                assert!(ioctls.contains(&i), "{:?} lacks {i:?} of {:?}", role, child);
            }
        }
    }
}

#[test]
fn narrow_roles_leave_out_what_they_never_do() {
    let has = |r: Role, c: &str| r.calls().contains(&c);
    for r in [Role::Fetch, Role::Io, Role::Timer] {
        for c in [
            "execve",
            "clone",
            "clone3",
            "socket",
            "ptrace",
            "userfaultfd",
        ] {
            assert!(!has(r, c), "{r:?} allows {c}");
        }
    }
    for c in [
        "execve",
        "socket",
        "connect",
        "ptrace",
        "mount",
        "bpf",
        "kexec_load",
    ] {
        assert!(!has(Role::Main, c), "main allows {c}");
        assert!(!has(Role::Vcpu, c), "vcpu allows {c}");
    }
    assert!(!has(Role::Timer, "openat2"), "timer threads open no files");
    assert_eq!(Role::Timer.ioctls(), vec![Ioctl::Exact(KVM_SIGNAL_MSI)]);
    assert!(Role::Io.ioctls().is_empty());
}

#[test]
fn ioctl_numbers_match_the_kernel_headers() {
    // KVM_SIGNAL_MSI = _IOW(KVMIO, 0xa5, struct kvm_msi) (32 bytes).
    assert_eq!(KVM_SIGNAL_MSI, 0x4020_aea5);
    assert_eq!(Role::Fetch.ioctls().len(), 3);
    assert!(
        Role::Fetch.ioctls().contains(&Ioctl::Exact(0xc028_aa03)),
        "UFFDIO_COPY"
    );
}

#[test]
fn every_role_compiles_and_names_resolve() {
    for role in Role::ALL {
        compile(role).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(number("write"), Some(libc::SYS_write));
    assert_eq!(name(libc::SYS_socket), Some("socket"));
    assert_eq!(name(-1), None);
}

#[test]
fn the_report_names_the_call_and_the_role() {
    let l = report::format_line(1, libc::SYS_socket);
    assert!(l.contains("forbidden system call `socket`"), "{l}");
    assert!(l.contains("exit 159") && l.ends_with('\n'), "{l}");
    assert!(l.contains("vmm/src/seccomp/lists.rs"), "{l}");
    assert_eq!(l.lines().count(), 1);
    assert!(report::format_line(1, 100_000).contains("number 100000"));
}

/// Run one of the `child_*` tests below in a child process of the test
/// binary: it installs a filter, so it must not share a process with
/// other tests.
fn in_child(test: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("VESSEL_SECCOMP_CHILD", "1")
        .output()
        .unwrap()
}

fn child() -> bool {
    std::env::var_os("VESSEL_SECCOMP_CHILD").is_some()
}

#[test]
fn child_forbidden_socket() {
    if !child() {
        return;
    }
    enable().unwrap();
    install(Role::Io).unwrap();
    assert_eq!(current(), Some(Role::Io));
    eprintln!("before");
    // SAFETY: a plain socket call; the filter traps it.
    unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    eprintln!("after: not reached");
}

#[test]
fn child_forbidden_ioctl() {
    if !child() {
        return;
    }
    enable().unwrap();
    install(Role::Timer).unwrap();
    // SAFETY: a zeroed winsize is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize; the filter traps it first.
    unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &raw mut ws) };
    eprintln!("after: not reached");
}

#[test]
fn a_forbidden_call_ends_the_process_with_one_line_naming_it() {
    if child() {
        return;
    }
    for (test, call) in [
        ("seccomp::tests::child_forbidden_socket", "`socket`"),
        ("seccomp::tests::child_forbidden_ioctl", "`ioctl`"),
    ] {
        let out = in_child(test);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(vessel_abi::exit::SECCOMP),
            "{test}: {err}"
        );
        let line = err
            .lines()
            .find(|l| l.starts_with("vessel: seccomp:"))
            .unwrap_or_else(|| panic!("{test}: no report in {err}"));
        assert!(line.contains(call), "{line}");
        assert!(!err.contains("not reached"), "{err}");
    }
}
