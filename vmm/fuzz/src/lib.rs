//! Fuzz targets over everything in the launcher that reads guest-controlled
//! bytes, runnable on stable Rust (cargo-fuzz's sanitizers need nightly):
//! hypercall decoding and dispatch against a fake guest memory, the I/O
//! ring with a real (scratch) pre-opened directory, guest path
//! resolution, the ELF loader, BootInfo building and the snapshot-file
//! parser. A target returns normally for every
//! input; a panic (on any thread) is a finding.
//!
//! [`mutate`] is a small deterministic mutator (bit flips, boundary
//! values at aligned offsets, splices, truncation); `src/main.rs` runs a
//! target for a time budget over its seed corpus in `vmm/fuzz/corpus/TARGET`.

pub mod mutate;
pub mod targets;

/// The targets, by name.
pub const TARGETS: [&str; 6] = ["hypercall", "ring", "path", "elf", "boot_info", "snapshot"];

/// Run target `name` on `data`. Err: no such target.
pub fn run(name: &str, data: &[u8]) -> Result<(), String> {
    match name {
        "hypercall" => targets::hypercall(data),
        "ring" => targets::ring(data),
        "path" => targets::path(data),
        "elf" => targets::elf(data),
        "boot_info" => targets::boot_info(data),
        "snapshot" => targets::snapshot(data),
        _ => {
            return Err(format!(
                "no fuzz target `{name}` (targets: {})",
                TARGETS.join(", ")
            ))
        }
    }
    Ok(())
}

/// The seed corpus of `target` (files in vmm/fuzz/corpus/TARGET, by name).
pub fn corpus(target: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    names.iter().map(std::fs::read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target survives its seeds and a few thousand mutations of
    /// them (what the test command runs; `cargo xtask fuzz` runs longer).
    #[test]
    fn every_target_survives_its_corpus_and_mutations() {
        let found = mutate::catch_thread_panics();
        for t in TARGETS {
            let seeds = corpus(t).unwrap();
            assert!(!seeds.is_empty(), "{t}: empty corpus");
            let mut m = mutate::Mutator::new(0x5eed);
            let rounds = match t {
                "ring" => 300,
                "snapshot" => 500,
                _ => 3000,
            };
            for i in 0..rounds {
                let input = if i < seeds.len() {
                    seeds[i].clone()
                } else {
                    m.mutate(&seeds[i % seeds.len()], &seeds)
                };
                let r = std::panic::catch_unwind(|| run(t, &input));
                assert!(
                    r.is_ok() && !found.load(std::sync::atomic::Ordering::SeqCst),
                    "{t}: panic on {input:?}"
                );
            }
        }
        targets::cleanup();
    }
}
