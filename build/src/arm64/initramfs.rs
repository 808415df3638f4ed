//! The test machine's initramfs: /init (build/arm64-init), the packed apps,
//! the async-PF data files and the test table, as a newc cpio archive
//! written directly (no cpio tool, no root needed for /dev/console).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::suite::{self, T};
use crate::{guests, project_root, Arch};

/// A newc cpio archive (/dev/console is just a header).
#[derive(Clone)]
pub struct Cpio {
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

/// Everything but the test table: /init, /apps/*, /data/*.
pub fn base(apps: &[String]) -> Result<Cpio> {
    let mut c = Cpio::new();
    for d in ["dev", "proc", "sys", "tmp", "apps"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("init", &init_path())?;
    for app in apps {
        c.file(&format!("apps/{app}"), &guests::packed(Arch::Aarch64, app))?;
    }
    // The launcher itself, for its commands (`vessel snapshot`).
    c.file("vessel", &guests::launcher(Arch::Aarch64))?;
    c.dir("data");
    for (name, len) in suite::APF_DATA {
        c.entry(
            &format!("data/{name}"),
            0o100644,
            (0, 0),
            &vessel_tests::lazy_test_bytes(*len).0,
        );
    }
    Ok(c)
}

/// `base` plus /tests.txt for `tests`, written to target/arm64-initrd.cpio.
pub fn write(base: &Cpio, tests: &[T]) -> Result<PathBuf> {
    let mut c = base.clone();
    c.entry("tests.txt", 0o100644, (0, 0), suite::spec(tests).as_bytes());
    let initrd = project_root().join("target/arm64-initrd.cpio");
    std::fs::write(&initrd, c.finish()).with_context(|| format!("writing {}", initrd.display()))?;
    Ok(initrd)
}

/// The initramfs of `cargo xtask run APP --arch aarch64`: /init, /apps/APP,
/// the `--lazy` files at their archive paths, and /run.txt (`argv`,
/// NUL-separated). Written to target/arm64-run.cpio; returns its path and size.
pub fn for_run(app: &str, files: &[(String, PathBuf)], argv: &[String]) -> Result<(PathBuf, u64)> {
    let mut c = Cpio::new();
    for d in ["dev", "proc", "sys", "tmp", "apps", "files"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("init", &init_path())?;
    c.file(&format!("apps/{app}"), &guests::packed(Arch::Aarch64, app))?;
    for (inside, host) in files {
        if let Some((dir, _)) = inside.rsplit_once('/') {
            c.dir(dir);
        }
        c.file(inside, host)?;
    }
    c.entry("run.txt", 0o100644, (0, 0), argv.join("\0").as_bytes());
    let initrd = project_root().join("target/arm64-run.cpio");
    let bytes = c.finish();
    std::fs::write(&initrd, &bytes).with_context(|| format!("writing {}", initrd.display()))?;
    Ok((initrd, bytes.len() as u64))
}

/// Where cargo puts /init (build/arm64-init).
fn init_path() -> PathBuf {
    project_root().join("target/aarch64-unknown-linux-musl/release/vessel-arm64-init")
}
