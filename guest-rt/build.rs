//! Puts the guest linker script for the target architecture on the library
//! search path; `.cargo/config.toml` passes `-Tvessel-guest.ld` to the
//! linker of every guest app.
use std::{env, fs, path::PathBuf};

fn main() {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let src = PathBuf::from(format!("src/arch/{arch}/link.ld"));
    println!("cargo:rerun-if-changed={}", src.display());
    if !src.exists() {
        // Host builds (e.g. `cargo doc`) have no guest linker script.
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(&src, out.join("vessel-guest.ld")).expect("copy linker script");
    println!("cargo:rustc-link-search=native={}", out.display());
}
