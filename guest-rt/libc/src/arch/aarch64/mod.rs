//! aarch64: TLS variant I (the thread pointer is followed by two reserved
//! words, then the TLS data), capabilities from the ID registers.

use crate::tls::{BlockLayout, TCB_SIZE};

/// Where things go in a thread's block for a TLS image of `memsz` bytes
/// aligned to `align` (the segment's, a power of two; the block itself is
/// aligned to at least 16): the control block, the
/// thread pointer, 16 reserved bytes, then the data (what rust-lld's
/// local-exec offsets assume: TP + round_up(16, align) + offset).
pub fn block_layout(memsz: usize, align: usize) -> BlockLayout {
    let tp = TCB_SIZE.next_multiple_of(align);
    let image = tp + 16usize.next_multiple_of(align);
    BlockLayout {
        size: image + memsz,
        image,
        tp,
        tcb: 0,
    }
}

/// AT_HWCAP bits from the ID registers: what std's feature detection
/// reads (`is_aarch64_feature_detected!`), true to what this VM offers.
pub fn hwcap() -> u64 {
    let pfr0: u64;
    let isar0: u64;
    // SAFETY: reading ID registers at EL1 has no effect.
    unsafe {
        core::arch::asm!("mrs {}, ID_AA64PFR0_EL1", out(reg) pfr0, options(nomem, nostack));
        core::arch::asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0, options(nomem, nostack));
    }
    let field = |r: u64, at: u32| (r >> at) & 0xf;
    let mut cap = libc::HWCAP_FP | libc::HWCAP_ASIMD | libc::HWCAP_CPUID;
    if field(isar0, 4) >= 1 {
        cap |= libc::HWCAP_AES;
    }
    if field(isar0, 4) >= 2 {
        cap |= libc::HWCAP_PMULL;
    }
    if field(isar0, 8) >= 1 {
        cap |= libc::HWCAP_SHA1;
    }
    if field(isar0, 12) >= 1 {
        cap |= libc::HWCAP_SHA2;
    }
    if field(isar0, 16) >= 1 {
        cap |= libc::HWCAP_CRC32;
    }
    if field(isar0, 20) >= 2 {
        cap |= libc::HWCAP_ATOMICS;
    }
    // SVE only when the launcher enabled it for this VM (the ID register
    // says what the CPU model has, not what the VM was given).
    let sve = guest_rt::env::features() & vessel_abi::features::SVE != 0;
    if sve && field(pfr0, 32) >= 1 {
        cap |= libc::HWCAP_SVE;
    }
    cap
}

/// AT_HWCAP2: none reported.
pub fn hwcap2(_features: u64) -> u64 {
    0
}
