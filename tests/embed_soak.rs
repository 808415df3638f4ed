//! Many calls with a reset after each keep the process's memory, fds,
//! threads and mappings flat. Its own test binary: nothing else runs in
//! the process while it counts.

use vessel_tests::{footprint, guest_elf, require_kvm};
use vmm::sandbox::Sandbox;

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
    let before = footprint("self").unwrap();
    for i in 0..calls {
        if i % 2 == 0 {
            assert_eq!(sb.call::<u64>("bump", ()).unwrap(), 1);
        } else {
            sb.call::<u32>("touch", (16u32,)).unwrap();
        }
    }
    let after = footprint("self").unwrap();
    assert!(
        after.rss_kib <= before.rss_kib + 1024,
        "RSS grew from {} to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
    assert_eq!(after.fds, before.fds, "open fds");
    assert_eq!(after.threads, before.threads, "threads");
    assert_eq!(after.maps, before.maps, "mappings");
}
