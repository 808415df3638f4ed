//! The arm64 suite's file tests: the fs paths of tests/fs.rs on arm64 KVM
//! (pre-opened directories, sandbox refusals, the ring, wc, sort, the
//! hostile suite, the output cap).

use super::suite::{t, T};

/// Files under /data/fs in the initramfs: (path, mode, contents). Mode
/// 0o120777 is a symlink whose contents are its target.
pub const FS_DATA: &[(&str, u32, &[u8])] = &[
    ("data/fs", 0o040755, b""),
    ("data/fs/f", 0o100644, b"hello\n"),
    ("data/fs/t.txt", 0o100644, b"b line\na  two words\n\nc"),
    ("data/fs/sub", 0o040755, b""),
    ("data/fs/sub/y", 0o100644, b"x\n"),
    ("data/fs/abs-link", 0o120777, b"/init"),
    ("data/fs/up-link", 0o120777, b"../.."),
    ("data/fs/f0", 0o100644, b"\x01\x02\x03"),
    ("data/fs/f1", 0o100644, b"\x04\x05"),
    ("data/fs/f2", 0o100644, b"\x06"),
    ("data/fs/f3", 0o100644, b"\x07\x08\x09\x0a"),
];

const D: &str = "--dir /data/fs:/d";

/// Every file test for the arm64 machine.
pub fn fs_tests() -> Vec<T> {
    let p = |steps: &str| format!("/apps/fsprobe {D} -- {steps}");
    vec![
        t("fs-roundtrip", 0, &["roundtrip /d: ok"], &[], &p("roundtrip /d")),
        t(
            "fs-escapes",
            0,
            &[
                "read /d/../../init: err PermissionDenied",
                "read /d/abs-link: err PermissionDenied",
                "read /d/up-link/init: err PermissionDenied",
                "read /proc/self/mem: err NotFound",
                "read /d/f: ok hello",
            ],
            &[],
            &p("read /d/../../init read /d/abs-link read /d/up-link/init read /proc/self/mem read /d/f"),
        ),
        t(
            "fs-readonly",
            0,
            &["write /ro/x y: err PermissionDenied", "rm /ro/f: err PermissionDenied", "read /ro/f: ok hello"],
            &[],
            "/apps/fsprobe --dir /data/fs:/ro:ro -- write /ro/x y rm /ro/f read /ro/f",
        ),
        t(
            "fs-hostile",
            0,
            &["cases, 0 failed, still serving: true"],
            &[],
            &p("hostile /d"),
        ),
        t("fs-async", 0, &["async /d 4: ok sum=55 "], &[], &p("async /d 4")),
        t("fs-flood", 0, &["flood /d/out 500: ok len=500 "], &[], &p("flood /d/out 500")),
        t("fs-wc", 0, &["3 6 22 /d/t.txt"], &[], &format!("/apps/wc {D} -- /d/t.txt")),
        t("fs-sort", 0, &[], &[], &format!("/apps/sort {D} -- /d/t.txt /d/sorted")),
        t("fs-sorted", 0, &["4 6 23 /d/sorted"], &[], &format!("/apps/wc {D} -- /d/sorted")),
        t(
            "fs-cap",
            73,
            &[],
            &["--max-output (1024 bytes"],
            &format!("/apps/fsprobe {D} --max-output 1K -- flood /d/out 5000"),
        ),
        t(
            "fs-missing-dir",
            125,
            &[],
            &["--dir /nope: No such file or directory"],
            "/apps/fsprobe --dir /nope -- stdin",
        ),
        t("fs-stdin-eof", 0, &["stdin : ok bytes=0 lines=0 sum=0"], &[], "/apps/fsprobe -- stdin"),
    ]
}
