//! A multi-vCPU run leaves nothing behind: every vCPU thread is joined and
//! every file descriptor (VM, vCPUs, wake-up timers) is closed when the
//! run ends, however it ends. In its own test binary: it counts this
//! process's threads and fds, which other tests running alongside would
//! disturb.

use vessel_tests::require_kvm;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

struct Sink;
impl vmm::HostIo for Sink {
    fn write(&mut self, _fd: u32, _data: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn read_stdin(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

fn run(host: &mut vmm::Host, cpus: u32, mode: &[&str]) -> vmm::Outcome {
    let bytes = vmm::read_image(&vessel_tests::guest_elf("selftest")).unwrap();
    let image = vmm::load_image(bytes).unwrap();
    let mut args = vec!["selftest".to_string()];
    args.extend(mode.iter().map(|s| s.to_string()));
    let cfg = vmm::VmConfig {
        vcpus: cpus,
        args,
        timeout: Some(std::time::Duration::from_secs(2)),
        ..Default::default()
    };
    vmm::run(host, &image, &cfg, &mut Sink).unwrap()
}

#[test]
fn runs_with_several_vcpus_leak_no_threads_and_no_fds() {
    require_kvm!();
    let mut host = vmm::Host::open().unwrap();
    // Warm up once (the kick signal's handler, lazy statics).
    run(&mut host, 2, &["exit", "0"]);
    let (threads, fds) = (count("/proc/self/task"), count("/proc/self/fd"));
    for _ in 0..3 {
        assert_eq!(
            run(&mut host, 4, &["smp-counter", "1000"]),
            vmm::Outcome::Exited(0)
        );
        assert_eq!(
            run(&mut host, 3, &["smp-exit", "5"]),
            vmm::Outcome::Exited(5)
        );
        assert!(matches!(
            run(&mut host, 2, &["smp-fault"]),
            vmm::Outcome::Fault(_)
        ));
        assert!(matches!(
            run(&mut host, 4, &["spin"]),
            vmm::Outcome::Stopped(vmm::StopReason::Timeout, _)
        ));
    }
    assert_eq!(count("/proc/self/task"), threads, "threads left running");
    assert_eq!(count("/proc/self/fd"), fds, "file descriptors leaked");
}
