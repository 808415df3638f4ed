//! KVM's dirty log for guest RAM, in manual-protect mode when KVM has it
//! (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), with a hot set.
//!
//! Measured here (`cargo xtask bench embed`): with the classic log every
//! KVM_GET_DIRTY_LOG write-protects the pages it reports, so the next call
//! takes one write-protection fault per page it writes again, about 15 us
//! each on this machine's KVM: a `nop` call after a restore cost 5x a plain
//! call. In manual mode KVM_GET_DIRTY_LOG only reports; pages stay
//! writable and reported until KVM_CLEAR_DIRTY_LOG. So a restore copies
//! back every reported page (the hot set: what recent calls wrote, about
//! 1 us a page) and clears nothing, and calls after it take no faults. When
//! the hot set grows past [`HOT_MAX`] pages the whole log is cleared
//! (re-protected), so a guest that once wrote much memory does not make
//! every later restore copy it.

use std::os::fd::AsRawFd;

use kvm_bindings::{kvm_clear_dirty_log, kvm_enable_cap, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2};
use kvm_ioctls::VmFd;

use crate::error::{KvmContext, Result};

/// The most pages a restore copies back before it re-protects them all.
pub const HOT_MAX: usize = 512;

/// KVM_CLEAR_DIRTY_LOG: _IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log).
const KVM_CLEAR_DIRTY_LOG: u64 =
    (3 << 30) | ((std::mem::size_of::<kvm_clear_dirty_log>() as u64) << 16) | (0xae << 8) | 0xc0;

/// Switch `vm` to manual protection (before its memslots exist); false if
/// KVM cannot (the classic log is used then).
pub(crate) fn enable_manual(vm: &VmFd) -> bool {
    let cap = kvm_enable_cap {
        cap: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
        args: [
            u64::from(kvm_bindings::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE),
            0,
            0,
            0,
        ],
        ..Default::default()
    };
    vm.check_extension_raw(u64::from(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)) > 0
        && vm.enable_cap(&cap).is_ok()
}

/// The pages of `slot` (`size` bytes) the guest wrote: since the last
/// [`clear`] (manual mode), or since the last call (classic mode).
pub(crate) fn get(vm: &VmFd, slot: u32, size: u64) -> Result<Vec<u64>> {
    vm.get_dirty_log(slot, size as usize)
        .kvm("KVM_GET_DIRTY_LOG")
}

/// Forget and re-protect every page of `slot` (manual mode).
pub(crate) fn clear(vm: &VmFd, slot: u32, size: u64) -> Result<()> {
    let pages = size.div_ceil(crate::memory::PAGE);
    let mut all = vec![u64::MAX; pages.div_ceil(64) as usize];
    let arg = kvm_clear_dirty_log {
        slot,
        num_pages: u32::try_from(pages).unwrap_or(u32::MAX),
        first_page: 0,
        __bindgen_anon_1: kvm_bindings::kvm_clear_dirty_log__bindgen_ty_1 {
            dirty_bitmap: all.as_mut_ptr().cast(),
        },
    };
    // SAFETY: a VM fd, and an argument whose bitmap has a bit for each of
    // `num_pages` pages; KVM only reads it.
    let r = unsafe { libc::ioctl(vm.as_raw_fd(), KVM_CLEAR_DIRTY_LOG as _, &raw const arg) };
    if r < 0 {
        let e = kvm_ioctls::Error::last();
        return Err(crate::Error::Kvm {
            what: "KVM_CLEAR_DIRTY_LOG".into(),
            source: e,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn clear_dirty_log_number_matches_the_uapi_header() {
        // _IOWR('\xae', 0xc0, struct kvm_clear_dirty_log), 24 bytes.
        assert_eq!(super::KVM_CLEAR_DIRTY_LOG, 0xc018_aec0);
    }
}
