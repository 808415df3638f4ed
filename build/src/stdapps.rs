//! Building unmodified `std` programs as Vessel guests.
//!
//! An app under apps/ that does not depend on guest-rt is an ordinary
//! `std` program (`fn main`, no `entry!`). It is built for the same guest
//! target as the others, `x86_64-unknown-linux-musl`, with Rust's prebuilt
//! std, but linked by rust-lld with guest-rt's linker script against empty
//! `libc.a`/`libunwind.a` and the rlibs of `vessel-libc` (guest-rt/libc,
//! the C library over guest-rt) and its dependencies, named on the link
//! line: the program names none of them. Everything is built with one set
//! of flags ([`rustflags`]) in its own target directory (`target/std`),
//! so the C library's rlibs match the program's std exactly.
//! `cargo xtask pack PATH` does the same for any crate on disk.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{project_root, Arch};

/// Where std programs and the C library are built.
pub fn target_dir() -> PathBuf {
    project_root().join("target/std")
}

/// The folder with the empty archives and guest-rt's linker script.
fn link_dir(arch: Arch) -> PathBuf {
    target_dir().join(format!("link-{}", arch.name()))
}

/// Whether apps/`app` is a std program: its manifest names no guest-rt.
pub fn is_std_app(app: &str) -> bool {
    let manifest = project_root().join("apps").join(app).join("Cargo.toml");
    std::fs::read_to_string(manifest)
        .map(|m| !m.contains("guest-rt"))
        .unwrap_or(false)
}

/// The compiler flags of every crate in a std program's build.
fn rustflags(arch: Arch) -> String {
    let link = link_dir(arch);
    [
        "--cfg vessel_guest",
        "--cfg vessel_std",
        // A panic unwinds as on the host (vessel-libc's unwinder reads
        // the `.eh_frame_hdr` index the linker writes).
        "-C link-arg=--eh-frame-hdr",
        "-C relocation-model=static",
        "-C link-self-contained=no",
        "-C linker=rust-lld",
        "-C link-arg=-Tvessel-guest.ld",
        "-C link-arg=-znorelro",
        &format!("-L native={}", link.display()),
    ]
    .join(" ")
}

/// A `cargo` for `arch`'s std builds, reporting in JSON on stdout.
fn cargo(arch: Arch, sub: &str) -> Command {
    let mut c = Command::new("cargo");
    c.args([sub, "--release", "--target", arch.std_target()])
        .arg("--target-dir")
        .arg(target_dir())
        .arg("--message-format=json-render-diagnostics")
        .env("RUSTFLAGS", rustflags(arch))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdout(Stdio::piped());
    c
}

/// Run `c`, returning cargo's JSON messages (its errors go to the terminal).
fn messages(mut c: Command) -> Result<(bool, Vec<serde_json::Value>)> {
    let mut child = c.spawn().context("starting cargo")?;
    let out = child.stdout.take().context("cargo's stdout is piped")?;
    let mut v = Vec::new();
    for line in std::io::BufReader::new(out).lines() {
        if let Ok(m) = serde_json::from_str(&line?) {
            v.push(m);
        }
    }
    let ok = child.wait().context("waiting for cargo")?.success();
    Ok((ok, v))
}

/// Build vessel-libc for `arch` and prepare the link folder; returns the
/// linker arguments naming its rlibs (and those of its dependencies).
fn build_libc(arch: Arch) -> Result<Vec<String>> {
    let link = link_dir(arch);
    std::fs::create_dir_all(&link).with_context(|| format!("creating {}", link.display()))?;
    // An empty archive is its magic line alone: std names `-lc` and
    // `-lunwind`, which the C library answers instead.
    for lib in ["libc.a", "libunwind.a"] {
        std::fs::write(link.join(lib), b"!<arch>\n").context("writing an empty archive")?;
    }
    let mut c = cargo(arch, "build");
    c.args(["-p", "vessel-libc"])
        .arg("--manifest-path")
        .arg(project_root().join("Cargo.toml"));
    eprintln!(
        "$ cargo build --release --target {} -p vessel-libc (std C library)",
        arch.std_target()
    );
    let (ok, msgs) = messages(c)?;
    if !ok {
        bail!("vessel-libc (guest-rt/libc) did not compile (see cargo's errors above)");
    }
    let triple = format!("/{}/", arch.std_target());
    let mut rlibs = Vec::new();
    for m in &msgs {
        if m["reason"] == "build-script-executed"
            && m["package_id"]
                .as_str()
                .is_some_and(|p| p.contains("guest-rt"))
        {
            let out = Path::new(m["out_dir"].as_str().unwrap_or_default()).join("vessel-guest.ld");
            std::fs::copy(&out, link.join("vessel-guest.ld"))
                .with_context(|| format!("copying {}", out.display()))?;
        }
        if m["reason"] != "compiler-artifact" {
            continue;
        }
        for f in m["filenames"].as_array().into_iter().flatten() {
            let f = f.as_str().unwrap_or_default();
            if f.ends_with(".rlib") && f.contains(&triple) {
                rlibs.push(f.to_string());
            }
        }
    }
    if !link.join("vessel-guest.ld").exists() || rlibs.is_empty() {
        bail!("building vessel-libc gave no linker script or no rlibs (cargo's messages changed?)");
    }
    // The list, for tests/std_apps.rs (which checks their symbols).
    std::fs::write(link.join("rlibs.txt"), rlibs.join("\n") + "\n").context("writing rlibs.txt")?;
    Ok(rlibs.iter().map(|f| format!("-Clink-arg={f}")).collect())
}

/// Link one binary with `rustc_args` (the C library); returns its ELF.
fn link_one(
    arch: Arch,
    manifest: &Path,
    pkg: Option<&str>,
    rlibs: &[String],
) -> Result<Option<PathBuf>> {
    let mut c = cargo(arch, "rustc");
    c.arg("--manifest-path").arg(manifest);
    if let Some(p) = pkg {
        c.args(["-p", p, "--bin", p]);
    }
    c.arg("--").args(rlibs);
    let (_, msgs) = messages(c)?;
    Ok(msgs
        .iter()
        .filter(|m| m["reason"] == "compiler-artifact")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from)))
}

/// Build the std apps `apps` for `arch`; returns app -> guest ELF for
/// those that compiled (cargo printed why the others did not).
pub fn compile(arch: Arch, apps: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut built = BTreeMap::new();
    if apps.is_empty() {
        return Ok(built);
    }
    let rlibs = build_libc(arch)?;
    let manifest = project_root().join("Cargo.toml");
    for app in apps {
        eprintln!(
            "$ cargo rustc --release --target {} -p {app} (std program)",
            arch.std_target()
        );
        if let Some(elf) = link_one(arch, &manifest, Some(app), &rlibs)? {
            built.insert(app.clone(), elf);
        }
    }
    Ok(built)
}

/// `cargo xtask pack PATH`: build the crate at PATH (a folder with a
/// Cargo.toml, one binary) as a Vessel guest; returns its ELF.
pub fn compile_crate(arch: Arch, path: &Path) -> Result<PathBuf> {
    let manifest = if path.is_dir() {
        path.join("Cargo.toml")
    } else {
        path.to_path_buf()
    };
    if !manifest.exists() {
        bail!(
            "{}: no Cargo.toml there (give a crate's folder or its manifest)",
            path.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .context("resolving the manifest path")?;
    let rlibs = build_libc(arch)?;
    eprintln!(
        "$ cargo rustc --release --target {} --manifest-path {} (std program)",
        arch.std_target(),
        manifest.display()
    );
    link_one(arch, &manifest, None, &rlibs)?.with_context(|| {
        format!("{} did not build (see cargo's errors above; a crate with several binaries is not supported)", manifest.display())
    })
}
