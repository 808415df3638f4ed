//! The arm64 suite's set-of-vCPUs tests: `--cpus 2` and `4` inside QEMU's
//! `-smp 2` (threads, SVE on every vCPU, counter, wake, exit/panic/fault
//! from a secondary vCPU, apps/pi).

use super::suite::{t, T};

/// A set of vCPUs (`--cpus 2` and `4` inside QEMU's `-smp 2`): threads on
/// every vCPU with the same SVE length (each vCPU sets ZCR_EL1 and reports
/// RDVL), an exact counter, wake-from-wait, and exit / panic / fault on a
/// secondary vCPU ending the VM.
pub fn smp_tests() -> Vec<T> {
    let mut v = Vec::new();
    for n in [2, 4] {
        let every: Vec<String> = (0..n).map(|i| format!("vcpu {i}: sve 512 bits")).collect();
        let mut want: Vec<&str> = every.iter().map(String::as_str).collect();
        let joined = format!("joined {n} threads on {n} vCPUs");
        want.push(&joined);
        let c = format!("--cpus {n} --timeout 60");
        let all = [
            "join-sve", "counter", "wake", "parallel", "exit", "panic", "fault",
        ];
        // With 4 vCPUs (on QEMU's 2, under TCG): the SVE set on every vCPU
        // and the exit; the rest once, with 2 (the x86_64 tests run both).
        let keep = |name: &str| n == 2 || ["join-sve", "exit"].contains(&name);
        let mut tests = vec![
            t(
                &format!("smp{n}-join-sve"),
                0,
                &want,
                &[],
                &format!("/apps/selftest {c} --sve-vl 512 smp-join"),
            ),
            t(
                &format!("smp{n}-counter"),
                0,
                &["count 1000000"],
                &[],
                &format!("/apps/selftest {c} smp-counter 1000000"),
            ),
            t(
                &format!("smp{n}-wake"),
                0,
                &["woken true on vcpu "],
                &[],
                &format!("/apps/selftest {c} smp-wake"),
            ),
            t(
                &format!("smp{n}-parallel"),
                0,
                &["sum 499999500000"],
                &[],
                &format!("/apps/selftest {c} smp-parallel 1000000"),
            ),
            t(
                &format!("smp{n}-exit"),
                9,
                &["main waits on vcpu 0"],
                &[],
                &format!("/apps/selftest {c} smp-exit 9"),
            ),
            t(
                &format!("smp{n}-panic"),
                101,
                &[],
                &["panicked at", "thread on vCPU "],
                &format!("/apps/selftest {c} smp-panic"),
            ),
            t(
                &format!("smp{n}-fault"),
                126,
                &[],
                &[
                    "vessel: vCPU ",
                    "guest exception: data abort",
                    "FAR 0xdead0000",
                ],
                &format!("/apps/selftest {c} smp-fault"),
            ),
        ];
        let mut i = 0;
        tests.retain(|_| {
            i += 1;
            keep(all[i - 1])
        });
        v.extend(tests);
    }
    let points = format!("points {}", lattice_points(2000));
    v.push(t(
        "smp2-pi",
        0,
        &[&points, "threads 2 vcpus 2"],
        &[],
        "/apps/pi --cpus 2 -- --threads 2 2000",
    ));
    v.push(t(
        "smp-dump-regs",
        0,
        &["joined 2 threads"],
        &["vcpu0 z0   = 0x", "vcpu1 z0   = 0x", "vcpu1 ffr  = 0x"],
        "/apps/selftest --cpus 2 --sve-vl 256 --dump-regs smp-join",
    ));
    v
}

/// Lattice points with x, y in 0..r and x² + y² < r², counted with integer
/// square roots (not apps/pi's method).
fn lattice_points(r: u64) -> u64 {
    (0..r).map(|x| (r * r - x * x - 1).isqrt() + 1).sum()
}
