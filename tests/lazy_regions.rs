//! Many lazy regions: hundreds of small regions (each needing its own page
//! table for the 2 MiB block it ends in) boot, and one past the documented
//! limit is a one-line error naming it.
//!
//! Needs `cargo xtask build` first (VESSEL_DIR, default <repo>/target/vessel);
//! skipped with a reason when /dev/kvm is missing.

use std::path::PathBuf;

use vessel_tests::{lazy_test_bytes, require_kvm, run, texts};

/// `vmm::lazy::MAX_REGIONS`, as documented in the README.
const MAX_LAZY_REGIONS: usize = 500;

/// A 1 MiB data file in a fresh temp dir, and its byte sum.
fn data_file(tag: &str) -> (PathBuf, u64) {
    let dir = std::env::temp_dir().join(format!("vessel-regions-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bytes, sum) = lazy_test_bytes(1 << 20);
    let p = dir.join("data.bin");
    std::fs::write(&p, bytes).unwrap();
    (p, sum)
}

/// `--lazy` flags for `n` regions of the file: `data`, then `r1`, `r2`, ...
fn lazy_flags(file: &std::path::Path, n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|i| {
            let name = if i == 0 {
                "data".to_string()
            } else {
                format!("r{i}")
            };
            ["--lazy".to_string(), format!("{name}={}", file.display())]
        })
        .collect()
}

fn lazyscan(flags: &[String]) -> std::process::Output {
    let mut args: Vec<&str> = vec!["--timeout", "60"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--", "--tasks", "4"]);
    run("lazyscan", &args)
}

#[test]
fn two_hundred_regions_of_one_mib_boot() {
    require_kvm!();
    let (p, sum) = data_file("many");
    let out = lazyscan(&lazy_flags(&p, 200));
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let total: u64 = stdout.lines().last().unwrap().trim().parse().unwrap();
    assert_eq!(total, sum, "{stdout}");
    std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
}

#[test]
fn the_most_regions_boot_and_one_more_names_the_limit() {
    require_kvm!();
    let (p, sum) = data_file("limit");
    let out = lazyscan(&lazy_flags(&p, MAX_LAZY_REGIONS));
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.lines().last().unwrap().trim(), sum.to_string());

    let out = lazyscan(&lazy_flags(&p, MAX_LAZY_REGIONS + 1));
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("at most {MAX_LAZY_REGIONS} lazy regions")),
        "{stderr}"
    );
    std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
}
