//! Many calls with a reset after each keep the process's memory, fds,
//! threads and mappings flat. Its own test binary: nothing else runs in
//! the process while it counts.

use vessel_tests::{guest_elf, require_kvm};
use vmm::sandbox::Sandbox;

/// (RSS KiB, open fds, threads, mappings) of this process.
fn resources() -> (u64, usize, usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let maps = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count();
    (field("VmRSS:"), fds, field("Threads:") as usize, maps)
}

/// Calls with a reset after each keep memory, fds, threads and mappings
/// flat. `VESSEL_EMBED_CALLS` sets the count (the test command runs
/// 2,000; `VESSEL_EMBED_CALLS=10000 cargo test -p vessel-tests --test embed_soak`
/// runs the full count).
#[test]
fn resets_keep_resources_flat() {
    require_kvm!();
    let calls: u32 = std::env::var("VESSEL_EMBED_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut host = vmm::Host::open().unwrap();
    let mut sb = Sandbox::from_path(guest_elf("funcs"))
        .reset_after_call(true)
        .build(&mut host)
        .unwrap();
    for _ in 0..200 {
        sb.call::<u32>("touch", (16u32,)).unwrap();
    }
    let before = resources();
    for i in 0..calls {
        if i % 2 == 0 {
            assert_eq!(sb.call::<u64>("bump", ()).unwrap(), 1);
        } else {
            sb.call::<u32>("touch", (16u32,)).unwrap();
        }
    }
    let after = resources();
    assert!(
        after.0 <= before.0 + 1024,
        "RSS grew from {} to {} KiB",
        before.0,
        after.0
    );
    assert_eq!(after.1, before.1, "open fds");
    assert_eq!(after.2, before.2, "threads");
    assert_eq!(after.3, before.3, "mappings");
}
