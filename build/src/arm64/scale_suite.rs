//! The arm64 suite's workloads-at-scale tests: the guest heap with
//! apps/heap (random blocks checked byte for byte, two vCPUs freeing each
//! other's blocks, freed small blocks reused for large ones, the report
//! of a failed allocation, a kernel's checksum against the native one) and
//! the executor's deadlock report (selftest `deadlock-*`).

use super::suite::{t, T};

/// The heap tests (kept small: the suite runs under QEMU's TCG).
pub fn scale_tests() -> Vec<T> {
    let churn = format!(
        "churn 20000 checksum {}",
        vessel_tests::heap_kernels::churn(20_000)
    );
    vec![
        t(
            "heap-check",
            0,
            &["heap check: 20000 operations, peak 2000 live blocks"],
            &[],
            "/apps/heap --mem 256M --timeout 120 check 20000",
        ),
        t(
            "heap-threads",
            0,
            &[
                "heap threads: 2 vCPUs x 5000 operations, 0 failed",
                "freed on vcpu 1: intact",
            ],
            &[],
            "/apps/heap --cpus 2 --mem 256M --timeout 120 threads 5000",
        ),
        t(
            "heap-reuse",
            0,
            &["heap reuse: "],
            &[],
            "/apps/heap --mem 32M --timeout 120 reuse",
        ),
        t(
            "heap-oom",
            101,
            &[],
            &[
                "memory allocation of 1048576 bytes failed",
                "heap: could not allocate 1048576 bytes (align 1): used ",
                ", largest free block ",
            ],
            "/apps/heap --mem 32M --timeout 120 oom",
        ),
        t(
            "heap-churn",
            0,
            &[&churn],
            &[],
            "/apps/heap --mem 64M --timeout 120 churn 20000",
        ),
        t(
            "deadlock-channel",
            vessel_abi::exit::DEADLOCK,
            &["waiting"],
            &[
                "guest-rt: deadlock: all 2 task(s) wait",
                "task 1 waits on task 2 (its JoinHandle)",
                "task 2 waits on a channel receive",
            ],
            "/apps/selftest --timeout 60 deadlock-channel",
        ),
        t(
            "deadlock-timer",
            0,
            &["received Some(7)"],
            &[],
            "/apps/selftest --timeout 60 deadlock-timer",
        ),
        t(
            "deadlock-thread",
            vessel_abi::exit::DEADLOCK,
            &["thread done on vcpu 1"],
            &["task 1 waits on a future of its own"],
            "/apps/selftest --cpus 2 --timeout 60 deadlock-thread",
        ),
    ]
}
