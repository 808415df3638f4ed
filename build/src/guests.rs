//! Building guests for their bare-metal target and packing them with the launcher.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{project_root, stdapps, Arch};

/// Names of the apps under apps/.
pub fn apps() -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(project_root().join("apps")).context("reading apps/")? {
        let e = e?;
        if e.path().join("Cargo.toml").exists() {
            v.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    v.sort();
    Ok(v)
}

/// Check that every name in `wanted` is an app (before anything is built);
/// an empty `wanted` means every app. Returns the apps to build.
pub fn select(wanted: &[String]) -> Result<Vec<String>> {
    let all = apps()?;
    if all.iter().any(|a| a == "vessel") {
        bail!("an app may not be called `vessel`: that name is the launcher's");
    }
    if wanted.is_empty() {
        return Ok(all);
    }
    for w in wanted {
        if !all.contains(w) {
            bail!("{}", unknown_app(w, &all));
        }
    }
    Ok(wanted.to_vec())
}

/// "no app named `helo` (did you mean `hello`?; apps: ...)".
fn unknown_app(name: &str, all: &[String]) -> String {
    let near = all
        .iter()
        .map(|a| (strsim::levenshtein(name, a), a))
        .min()
        .filter(|(d, _)| *d <= 2)
        .map(|(_, a)| format!(" (did you mean `{a}`?)"))
        .unwrap_or_default();
    format!(
        "no app named `{name}`{near}; the apps are the folders of apps/: {}",
        all.join(", ")
    )
}

/// Where packed apps for `arch` go: target/vessel (x86_64), target/vessel/aarch64.
pub fn packed_dir(arch: Arch) -> PathBuf {
    let base = project_root().join("target/vessel");
    match arch {
        Arch::X86_64 => base,
        Arch::Aarch64 => base.join("aarch64"),
    }
}

/// The packed executable of `app` for `arch`.
pub fn packed(arch: Arch, app: &str) -> PathBuf {
    packed_dir(arch).join(app)
}

/// The unpacked guest ELF of `app`.
pub fn guest_elf(arch: Arch, app: &str) -> PathBuf {
    project_root()
        .join("target")
        .join(arch.guest_target())
        .join("release")
        .join(app)
}

/// The launcher binary cargo builds for `arch` (statically linked).
pub fn launcher_build(arch: Arch) -> PathBuf {
    project_root()
        .join("target")
        .join(arch.launcher_target())
        .join("release/vessel")
}

/// The launcher next to the packed apps: `target/vessel[/aarch64]/vessel`.
pub fn launcher(arch: Arch) -> PathBuf {
    packed_dir(arch).join("vessel")
}

/// Build the launcher for `arch`; returns where cargo put it.
///
/// It is linked statically: every packed app starts faster without the
/// dynamic loader (measured: 4.3 -> 3.7 ms per boot), and one file is all
/// a user needs to copy. Passing --target keeps the static flag away from
/// build scripts and proc-macros.
fn build_launcher(sh: &Shell, arch: Arch) -> Result<PathBuf> {
    let ltarget = arch.launcher_target();
    let var = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        ltarget.to_uppercase().replace('-', "_")
    );
    let _flags = sh.push_env(&var, "-C target-feature=+crt-static");
    cmd!(
        sh,
        "cargo build --release -p vmm --bin vessel --target {ltarget}"
    )
    .run()?;
    Ok(launcher_build(arch))
}

/// What a build of some apps gave: those packed, those that did not compile.
#[derive(Debug, Default)]
pub struct Built {
    /// Apps built and packed into `packed_dir`.
    pub packed: Vec<String>,
    /// Apps that did not compile (cargo printed why).
    pub failed: Vec<String>,
}

impl Built {
    /// An error naming the apps that did not compile, if any.
    pub fn check(&self) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let packed = if self.packed.is_empty() {
            "none".to_string()
        } else {
            self.packed.join(", ")
        };
        bail!(
            "these apps did not compile (see cargo's errors above): {}; packed: {packed}",
            self.failed.join(", ")
        )
    }
}

/// Build every app for `arch`, the launcher, and pack each app; an app that
/// does not compile is an error after the others are packed.
pub fn build_all(sh: &Shell, arch: Arch) -> Result<()> {
    build(sh, arch, &select(&[])?)?.check()
}

/// Build `apps` for `arch` and the launcher, and pack each app that
/// compiled. cargo's `--keep-going` builds every app it can, so one that
/// does not compile does not stop the others.
pub fn build(sh: &Shell, arch: Arch, apps: &[String]) -> Result<Built> {
    let (std_apps, rt_apps): (Vec<String>, Vec<String>) =
        apps.iter().cloned().partition(|a| stdapps::is_std_app(a));
    let std_apps = std_for(arch, std_apps);
    let mut elves: BTreeMap<String, PathBuf> = compile_apps(arch, &rt_apps)?
        .into_iter()
        .map(|a| {
            let elf = guest_elf(arch, &a);
            (a, elf)
        })
        .collect();
    elves.extend(stdapps::compile(arch, &std_apps)?);
    let dir = packed_dir(arch);
    sh.create_dir(&dir)?;
    sh.copy_file(build_launcher(sh, arch)?, launcher(arch))?;
    // Packing is done by a launcher that runs here (it knows the section
    // format): the x86_64 one, built the same way whatever `arch` is, so
    // an aarch64 build needs no earlier x86_64 build. For aarch64 it packs
    // the aarch64 launcher given with --launcher.
    let host = if arch == Arch::X86_64 {
        launcher_build(arch)
    } else {
        build_launcher(sh, Arch::X86_64)?
    };
    let target_launcher = launcher(arch);
    let mut built = Built::default();
    for app in rt_apps.iter().chain(&std_apps) {
        let Some(elf) = elves.get(app) else {
            built.failed.push(app.clone());
            continue;
        };
        let out = packed(arch, app);
        cmd!(
            sh,
            "{host} pack {elf} -o {out} --launcher {target_launcher}"
        )
        .quiet()
        .run()?;
        built.packed.push(app.clone());
    }
    Ok(built)
}

/// The std apps built for `arch`: all on x86_64; none yet on aarch64,
/// which says so (guest-rt/README.md, "std programs").
fn std_for(arch: Arch, std_apps: Vec<String>) -> Vec<String> {
    if arch == Arch::Aarch64 && !std_apps.is_empty() {
        eprintln!(
            "xtask: std programs are x86_64-only for now; not built for aarch64: {}",
            std_apps.join(", ")
        );
        return Vec::new();
    }
    std_apps
}

/// Pack the guest ELF `elf` as `out` with `arch`'s launcher (built first).
pub fn pack(sh: &Shell, arch: Arch, elf: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let host = build_launcher(sh, Arch::X86_64)?;
    let target_launcher = if arch == Arch::X86_64 {
        host.clone()
    } else {
        build_launcher(sh, arch)?
    };
    cmd!(
        sh,
        "{host} pack {elf} -o {out} --launcher {target_launcher}"
    )
    .quiet()
    .run()?;
    Ok(())
}

/// Compile `apps` for `arch`'s guest target; returns those cargo produced
/// an executable for (compiler errors go to the terminal as usual).
fn compile_apps(arch: Arch, apps: &[String]) -> Result<BTreeSet<String>> {
    // No `-p` at all would build the workspace's default members for the
    // guest target (only std apps asked for, say).
    if apps.is_empty() {
        return Ok(BTreeSet::new());
    }
    let target = arch.guest_target();
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--release", "--keep-going", "--target", target])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(project_root())
        .stdout(Stdio::piped());
    for a in apps {
        cargo.args(["-p", a]);
    }
    eprintln!(
        "$ cargo build --release --keep-going --target {target} ({})",
        apps.join(", ")
    );
    let mut child = cargo.spawn().context("starting cargo")?;
    let out = child.stdout.take().context("cargo's stdout is piped")?;
    let mut compiled = BTreeSet::new();
    for line in std::io::BufReader::new(out).lines() {
        if let Some(bin) = built_executable(&line?) {
            compiled.insert(bin);
        }
    }
    // A failing app shows as a missing executable; the status adds nothing.
    child.wait().context("waiting for cargo")?;
    Ok(compiled.into_iter().filter(|b| apps.contains(b)).collect())
}

/// The binary name in one of cargo's `compiler-artifact` messages that
/// produced an executable (fresh or rebuilt).
fn built_executable(line: &str) -> Option<String> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" || msg["executable"].is_null() {
        return None;
    }
    msg["target"]["name"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_read_from_cargo_messages() {
        let bin = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/apps/hello#0.1.0","target":{"kind":["bin"],"name":"hello"},"executable":"/w/target/x86_64-unknown-linux-musl/release/hello","fresh":true}"#;
        let lib = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"guest_rt"},"executable":null}"#;
        let msg = r#"{"reason":"compiler-message","target":{"name":"broken"},"executable":"x"}"#;
        assert_eq!(built_executable(bin).as_deref(), Some("hello"));
        assert_eq!(built_executable(lib), None);
        assert_eq!(built_executable(msg), None);
        assert_eq!(built_executable("not json"), None);
    }

    #[test]
    fn a_failed_app_is_named_with_those_packed() {
        let b = Built {
            packed: vec!["hello".into(), "vector".into()],
            failed: vec!["broken".into()],
        };
        let e = b.check().unwrap_err().to_string();
        assert!(e.contains(": broken;"), "{e}");
        assert!(e.ends_with("packed: hello, vector"), "{e}");
        assert!(Built::default().check().is_ok());
    }

    #[test]
    fn unknown_apps_are_refused_before_building() {
        let e = select(&["helo".into()]).unwrap_err().to_string();
        assert!(
            e.starts_with("no app named `helo` (did you mean `hello`?)"),
            "{e}"
        );
        assert!(e.contains("hello, "), "{e}");
        assert_eq!(select(&["hello".into()]).unwrap(), ["hello"]);
        assert!(select(&[]).unwrap().contains(&"selftest".to_string()));
    }
}
