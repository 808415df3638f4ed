//! x86_64: TLS variant II (the thread pointer follows the TLS data and
//! points at itself), capabilities from CPUID.

use crate::tls::{BlockLayout, TCB_SIZE};

/// Where things go in a thread's block for a TLS image of `memsz` bytes
/// aligned to `align` (the segment's, a power of two; the block itself is
/// aligned to at least 16): padding to keep the thread pointer 16-aligned,
/// the data, then the control block at the thread pointer (what rust-lld's
/// local-exec offsets assume: a variable's address is
/// TP - round_up(memsz, align) + its offset).
pub fn block_layout(memsz: usize, align: usize) -> BlockLayout {
    let data = memsz.next_multiple_of(align);
    let tp = data.next_multiple_of(16);
    BlockLayout {
        size: tp + TCB_SIZE,
        image: tp - data,
        tp,
        tcb: tp,
    }
}

/// AT_HWCAP: CPUID.1:EDX, as Linux reports it.
pub fn hwcap() -> u64 {
    u64::from(core::arch::x86_64::__cpuid(1).edx)
}

/// AT_HWCAP2: bit 1 (HWCAP2_FSGSBASE) when the launcher lets the guest set
/// its thread pointer.
pub fn hwcap2(features: u64) -> u64 {
    if features & vessel_abi::features::THREAD_POINTER != 0 {
        1 << 1
    } else {
        0
    }
}
