//! arm64 guest-physical address size: which VM type to ask KVM for.
//!
//! Free of `cfg(target_arch)` so it is unit-tested on every host.

use crate::layout::LayoutError;

/// The IPA size KVM uses for VM type 0 (and the only one without
/// `KVM_CAP_ARM_VM_IPA_SIZE`).
pub const DEFAULT_IPA_BITS: u32 = 40;

/// `KVM_VM_TYPE_ARM_IPA_SIZE(n)`.
pub const fn vm_type(bits: u32) -> u64 {
    (bits & 0xff) as u64
}

/// Bits needed to address `[0, end)`.
pub fn bits_for(end: u64) -> u32 {
    if end <= 1 {
        return 1;
    }
    64 - (end - 1).leading_zeros()
}

/// Choose `(KVM_CREATE_VM type, IPA bits)` for memory ending at `end`, given
/// the host's `KVM_CAP_ARM_VM_IPA_SIZE` answer (0: cap absent, 40 bits only).
/// Errors (one line) when the layout does not fit the host.
pub fn choose(end: u64, host_limit: i32) -> Result<(u64, u32), LayoutError> {
    let need = bits_for(end).max(32);
    if host_limit <= 0 {
        if need > DEFAULT_IPA_BITS {
            return Err(LayoutError::IpaTooSmall {
                end,
                need,
                limit: None,
            });
        }
        return Ok((0, DEFAULT_IPA_BITS));
    }
    let limit = host_limit.cast_unsigned();
    if need > limit {
        return Err(LayoutError::IpaTooSmall {
            end,
            need,
            limit: Some(limit),
        });
    }
    // Ask for the default when it suffices (what every VMM does), else the
    // smallest size that holds the layout.
    let bits = need.max(DEFAULT_IPA_BITS.min(limit));
    Ok((vm_type(bits), bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_types() {
        assert_eq!(bits_for(1 << 32), 32);
        assert_eq!(bits_for((1 << 32) + 1), 33);
        assert_eq!(vm_type(40), 40);
        assert_eq!(choose(0x4800_0000, 0), Ok((0, 40)));
        assert_eq!(choose(0x4800_0000, 48), Ok((40, 40)));
        assert_eq!(choose(0x4800_0000, 36), Ok((36, 36)));
        assert_eq!(choose(1 << 44, 48), Ok((44, 44)));
        assert!(choose((1 << 40) + 4096, 0).is_err());
        assert!(choose(1 << 37, 36).unwrap_err().to_string().contains("36"));
    }
}
