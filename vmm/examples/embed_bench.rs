//! `cargo xtask bench embed`: what embedded calls, restores and sandbox
//! creation cost, each as a ratio to a baseline measured in the same run.
//!
//! Baselines: one raw doorbell exit (the guest's clock hypercall, timed
//! inside one guest call over many exits), and the raw-KVM floor of VM
//! creation (KVM_CREATE_VM, one RAM memslot, one vCPU, then teardown).
//! Rounds alternate between the measured thing and its baseline, and the
//! report gives medians over rounds; nothing is asserted.
//!
//! ```sh
//! cargo run --release -p vmm --example embed_bench -- GUEST_ELF [ROUNDS]
//! ```

use std::time::{Duration, Instant};

use kvm_bindings::kvm_userspace_memory_region;
use vmm::sandbox::Sandbox;

const PER_ROUND: u32 = 200;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Microseconds per item of `f()` run `n` times.
fn per(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// Microseconds per raw exit, from one guest call making `n` of them
/// (the call's own cost subtracted with a call making none).
fn raw_exit_us(sb: &mut Sandbox, n: u32) -> f64 {
    let t = Instant::now();
    sb.call::<u64>("exits", (n,)).expect("exits");
    let with = t.elapsed();
    let t = Instant::now();
    sb.call::<u64>("exits", (0u32,)).expect("exits");
    let without = t.elapsed();
    with.saturating_sub(without).as_secs_f64() * 1e6 / f64::from(n)
}

fn host_call_us(sb: &mut Sandbox, n: u32) -> f64 {
    let t = Instant::now();
    assert_eq!(sb.call::<u32>("host_calls", (n,)).expect("host_calls"), n);
    let with = t.elapsed();
    let t = Instant::now();
    sb.call::<u32>("host_calls", (0u32,)).expect("host_calls");
    with.saturating_sub(t.elapsed()).as_secs_f64() * 1e6 / f64::from(n)
}

/// The raw-KVM floor: a VM with one RAM slot of `mem` bytes and a vCPU,
/// created and torn down.
fn raw_vm_us(kvm: &kvm_ioctls::Kvm, mem: usize) -> f64 {
    let t = Instant::now();
    let vm = kvm.create_vm().expect("KVM_CREATE_VM");
    let ram = vm_memory::MmapRegion::<()>::new(mem).expect("mmap");
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: mem as u64,
        userspace_addr: ram.as_ptr() as u64,
    };
    // SAFETY: the region is `ram`'s mapping, which outlives the VM (the
    // VM is dropped first, below).
    unsafe { vm.set_user_memory_region(region) }.expect("memslot");
    let vcpu = vm.create_vcpu(0).expect("vCPU");
    drop(vcpu);
    drop(vm);
    drop(ram);
    t.elapsed().as_secs_f64() * 1e6
}

struct Row {
    name: &'static str,
    base: &'static str,
    goal: &'static str,
    v: Vec<f64>,
    b: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let guest = args.next().ok_or("usage: embed_bench GUEST_ELF [ROUNDS]")?;
    let rounds: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(15);
    let mut host = vmm::Host::open()?;
    let mut sb = Sandbox::from_path(&guest)
        .register("nop", || Ok::<_, String>(()))
        .build(&mut host)?;
    let ready = sb.snapshot()?;
    let kvm = kvm_ioctls::Kvm::new()?;
    let mem = 128usize << 20;
    let mut rows = [
        Row {
            name: "guest call (nop)",
            base: "raw exit",
            goal: "<= 1.2",
            v: vec![],
            b: vec![],
        },
        Row {
            name: "host call from the guest",
            base: "raw exit",
            goal: "<= 1.2",
            v: vec![],
            b: vec![],
        },
        Row {
            name: "call + restore",
            base: "call",
            goal: "<= 2.0",
            v: vec![],
            b: vec![],
        },
        Row {
            name: "restore alone",
            base: "64 us",
            goal: "<= 1.0",
            v: vec![],
            b: vec![],
        },
        Row {
            name: "sandbox from snapshot",
            base: "raw VM",
            goal: "<= 1.5",
            v: vec![],
            b: vec![],
        },
    ];
    for _ in 0..3 {
        raw_exit_us(&mut sb, PER_ROUND);
        per(PER_ROUND, || sb.call::<()>("nop", ()).expect("nop"));
    }
    for _ in 0..rounds {
        let exit = raw_exit_us(&mut sb, PER_ROUND);
        let call = per(PER_ROUND, || sb.call::<()>("nop", ()).expect("nop"));
        rows[0].v.push(call);
        rows[0].b.push(exit);
        rows[1].v.push(host_call_us(&mut sb, PER_ROUND));
        rows[1].b.push(raw_exit_us(&mut sb, PER_ROUND));
        sb.restore(&ready)?;
        let both = per(PER_ROUND, || {
            sb.call::<()>("nop", ()).expect("nop");
            sb.restore(&ready).expect("restore");
        });
        rows[2].v.push(both);
        rows[2]
            .b
            .push(per(PER_ROUND, || sb.call::<()>("nop", ()).expect("nop")));
        sb.restore(&ready)?;
        let mut restore_only = Duration::ZERO;
        for _ in 0..PER_ROUND {
            sb.call::<()>("nop", ()).expect("nop");
            let t = Instant::now();
            sb.restore(&ready)?;
            restore_only += t.elapsed();
        }
        rows[3]
            .v
            .push(restore_only.as_secs_f64() * 1e6 / f64::from(PER_ROUND));
        rows[3].b.push(64.0);
        let t = Instant::now();
        let fresh = Sandbox::from_snapshot(ready.clone()).build(&mut host)?;
        drop(fresh);
        rows[4].v.push(t.elapsed().as_secs_f64() * 1e6);
        rows[4].b.push(raw_vm_us(&kvm, mem));
    }
    println!(
        "embed benchmark: medians of {rounds} rounds ({PER_ROUND} calls a round), this machine"
    );
    println!(
        "  {:<28} {:>10} {:>12} {:>10} {:>7}  goal",
        "", "us", "baseline", "base us", "ratio"
    );
    for r in &mut rows {
        let (v, b) = (median(&mut r.v), median(&mut r.b));
        println!(
            "  {:<28} {:>10.1} {:>12} {:>10.1} {:>7.2}  {}",
            r.name,
            v,
            r.base,
            b,
            v / b,
            r.goal
        );
    }
    println!("  Hyperlight, published (their CI): guest call 12.9 us, restore 88 us;");
    println!("  Hyperlight measured on this machine: 14.6 ms per call (CPL0 guest), 64 us restore");
    Ok(())
}
