//! The guest heap (guest-rt/src/heap), end to end on x86_64 with
//! apps/heap: random allocations of every size and alignment checked
//! byte for byte, the same on two vCPUs with cross-vCPU frees, the
//! allocation kernels of `cargo xtask bench alloc` giving the same
//! checksums as natively, freed small blocks reused for large ones, and
//! the report of a failed allocation.

use vessel_tests::heap_kernels as kernel;
use vessel_tests::{require_kvm, run, texts};

fn heap(args: &[&str]) -> (i32, String, String) {
    let out = run("heap", args);
    let (o, e) = texts(&out);
    (out.status.code().unwrap_or(-1), o, e)
}

#[test]
fn random_blocks_of_every_size_and_alignment_keep_their_contents() {
    require_kvm!();
    let (code, out, err) = heap(&["--mem", "256M", "--", "check", "200000"]);
    assert_eq!(code, 0, "{out}{err}");
    // Everything freed again: the heap's use is back where it was.
    let used: Vec<&str> = out
        .trim()
        .rsplit("used ")
        .next()
        .unwrap()
        .split(" -> ")
        .collect();
    assert_eq!(used.len(), 2, "{out}");
    assert_eq!(used[0], used[1], "{out}");
}

#[test]
fn two_vcpus_allocate_at_once_and_free_each_others_blocks() {
    require_kvm!();
    let (code, out, err) = heap(&["--cpus", "2", "--mem", "256M", "--", "threads", "50000"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 vCPUs x 50000 operations, 0 failed"),
        "{out}"
    );
    assert!(out.contains("freed on vcpu 1: intact"), "{out}");
}

#[test]
fn kernels_give_the_native_checksums() {
    require_kvm!();
    for (k, n) in [("btree", 50_000), ("churn", 200_000)] {
        let (code, out, err) = heap(&["--mem", "512M", "--", k, &n.to_string()]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(out, format!("{k} {n} checksum {}\n", kernel::run(k, n)));
    }
}

#[test]
fn freed_small_blocks_are_reused_for_large_ones() {
    require_kvm!();
    let (code, out, err) = heap(&["--mem", "64M", "--", "reuse"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("heap reuse: "), "{out}");
}

#[test]
fn a_failed_allocation_names_the_size_and_the_heap_state() {
    require_kvm!();
    let (code, out, err) = heap(&["--mem", "64M", "--", "oom"]);
    assert_eq!(code, 101, "{out}{err}");
    assert!(
        err.contains("memory allocation of 1048576 bytes failed\n"),
        "{err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("heap: could not allocate 1048576 bytes (align 1): used "))
        .unwrap_or_else(|| panic!("{err}"));
    for part in [", free ", ", largest free block ", ", of "] {
        assert!(line.contains(part), "{line}");
    }
    // The largest free block is smaller than the request, or it would
    // not have failed.
    let largest = line.split(", largest free block ").nth(1).unwrap();
    let largest = largest.split(", of ").next().unwrap();
    assert!(bytes(largest) < 1048576.0, "{line}");
}

/// "1.5 MiB", "3.0 KiB" or "12 bytes" in bytes.
fn bytes(s: &str) -> f64 {
    let (n, unit) = s.split_once(' ').unwrap_or_else(|| panic!("{s}"));
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("{s}"));
    n * match unit {
        "MiB" => 1048576.0,
        "KiB" => 1024.0,
        "bytes" => 1.0,
        _ => panic!("{s}"),
    }
}
