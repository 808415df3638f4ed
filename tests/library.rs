//! The launcher as a library (`vmm`): what a host program embedding Vessel
//! sees. One memory size (`VmConfig::mem_size`) decides the guest's RAM,
//! and errors name `VmConfig` fields, not command-line flags.

use vessel_tests::{guest_elf, require_kvm};

/// A `HostIo` that keeps the guest's stdout.
#[derive(Default)]
struct Capture(Vec<u8>);

impl vmm::HostIo for Capture {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        if fd == 1 {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }
    fn read_stdin(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

fn config(mem_size: u64, args: &[&str]) -> vmm::VmConfig {
    vmm::VmConfig {
        mem_size,
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn one_image_runs_with_the_memory_its_config_asks_for() {
    require_kvm!();
    let bytes = vmm::read_image(&guest_elf("selftest")).unwrap();
    let image = vmm::load_image(bytes).unwrap();
    let mut host = vmm::Host::open().unwrap();
    // A 16 MiB allocation fits in 128 MiB of RAM, not in 8 MiB: the same
    // image follows each VmConfig::mem_size.
    let run = |host: &mut vmm::Host, mem: u64| {
        let mut out = Capture::default();
        let cfg = config(mem, &["selftest", "heap", "16"]);
        let outcome = vmm::run(host, &image, &cfg, &mut out).unwrap();
        (
            outcome.exit_code(),
            String::from_utf8_lossy(&out.0).into_owned(),
        )
    };
    let (code, out) = run(&mut host, 128 << 20);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("heap ok 16 MiB"), "{out}");
    let (code, out) = run(&mut host, 8 << 20);
    assert_ne!(code, 0, "16 MiB of heap in 8 MiB of RAM: {out}");
    assert!(!out.contains("heap ok"), "{out}");
}

#[test]
fn config_errors_name_fields_not_flags() {
    require_kvm!();
    let bytes = vmm::read_image(&guest_elf("hello")).unwrap();
    let image = vmm::load_image(bytes).unwrap();
    let mut host = vmm::Host::open().unwrap();
    for (cfg, field, want) in [
        (
            vmm::VmConfig {
                vcpus: 0,
                ..config(128 << 20, &["hello"])
            },
            "vcpus",
            "vcpus 0",
        ),
        (
            config(1 << 20, &["hello"]),
            "mem_size",
            "mem_size 1 MiB is outside",
        ),
        (
            vmm::VmConfig {
                stack_size: 100,
                ..config(128 << 20, &["hello"])
            },
            "stack_size",
            "stack_size 100 must be",
        ),
    ] {
        let Err(e) = vmm::Vm::new(&mut host, &image, &cfg) else {
            panic!("{cfg:?} was accepted");
        };
        let msg = e.to_string();
        assert!(msg.contains(want), "{msg}");
        assert!(!msg.contains("--"), "a library error names no flag: {msg}");
        assert_eq!(e.config_field(), Some(field), "{msg}");
    }
}
