//! SVE pure logic: vector lengths, the KVM VLS bitmap, the clipping rule and
//! the KVM register ids of the SVE registers.
//!
//! Deliberately free of `cfg(target_arch)`: it is unit-tested on every host
//! against the values of the arm64 uapi header (`asm/kvm.h`).

use std::fmt;

/// `KVM_REG_ARM64`.
pub const KVM_REG_ARM64: u64 = 0x6000_0000_0000_0000;
/// `KVM_REG_SIZE_SHIFT`.
const SIZE_SHIFT: u64 = 52;
/// `KVM_REG_SIZE_U64`, `_U256`, `_U512`, `_U2048`.
pub const KVM_REG_SIZE_U64: u64 = 3 << SIZE_SHIFT;
/// `KVM_REG_SIZE_U256`.
pub const KVM_REG_SIZE_U256: u64 = 5 << SIZE_SHIFT;
/// `KVM_REG_SIZE_U512`.
pub const KVM_REG_SIZE_U512: u64 = 6 << SIZE_SHIFT;
/// `KVM_REG_SIZE_U2048`.
pub const KVM_REG_SIZE_U2048: u64 = 8 << SIZE_SHIFT;
/// `KVM_REG_ARM64_SVE` (coprocessor field 0x15).
pub const KVM_REG_ARM64_SVE: u64 = 0x0015 << 16;
const ZREG_BASE: u64 = 0;
const PREG_BASE: u64 = 0x400;
const FFR_BASE: u64 = 0x600;

/// `KVM_REG_ARM64_SVE_VLS`: the set of vector lengths, a `u64[8]` bitmap.
pub const VLS_ID: u64 = KVM_REG_ARM64 | KVM_REG_ARM64_SVE | KVM_REG_SIZE_U512 | 0xffff;

/// Number of Z / P registers.
pub const Z_REGS: u32 = 32;
/// Number of P registers.
pub const P_REGS: u32 = 16;
/// Bytes of one register slice as KVM transfers it: Z 2048 bits, P/FFR 256 bits.
pub const Z_SLICE_BYTES: usize = 256;
/// Bytes of one P or FFR slice.
pub const P_SLICE_BYTES: usize = 32;

/// `KVM_REG_ARM64_SVE_ZREG(n, i)`.
pub const fn zreg_id(n: u32, slice: u32) -> u64 {
    KVM_REG_ARM64
        | KVM_REG_ARM64_SVE
        | ZREG_BASE
        | KVM_REG_SIZE_U2048
        | (((n & 0x1f) as u64) << 5)
        | (slice & 0x1f) as u64
}

/// `KVM_REG_ARM64_SVE_PREG(n, i)`.
pub const fn preg_id(n: u32, slice: u32) -> u64 {
    KVM_REG_ARM64
        | KVM_REG_ARM64_SVE
        | PREG_BASE
        | KVM_REG_SIZE_U256
        | (((n & 0xf) as u64) << 5)
        | (slice & 0x1f) as u64
}

/// `KVM_REG_ARM64_SVE_FFR(i)`.
pub const fn ffr_id(slice: u32) -> u64 {
    KVM_REG_ARM64 | KVM_REG_ARM64_SVE | FFR_BASE | KVM_REG_SIZE_U256 | (slice & 0x1f) as u64
}

/// Smallest and largest vector length the architecture allows, in bits.
pub const MIN_BITS: u32 = 128;
/// Largest vector length the architecture allows, in bits.
pub const MAX_BITS: u32 = 2048;

/// Vector length in bits -> vq (number of 128-bit quadwords).
pub const fn bits_to_vq(bits: u32) -> u32 {
    bits / 128
}

/// vq -> vector length in bits.
pub const fn vq_to_bits(vq: u32) -> u32 {
    vq * 128
}

/// What the user or the app asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SveRequest {
    /// No SVE, even if the app's header asks for it (`--sve off`).
    Off,
    /// The largest length the host offers.
    Max,
    /// At most this many bits (a multiple of 128 in 128..=2048).
    Bits(u32),
}

impl SveRequest {
    /// Parse `--sve-vl BITS` / `--sve max|off` values. Any number parses: its
    /// range is checked against the host's lengths at launch ([`VlSet::clip`]),
    /// so the error can name what the host offers.
    pub fn parse(s: &str) -> Result<SveRequest, SveError> {
        match s {
            "max" => return Ok(SveRequest::Max),
            "off" => return Ok(SveRequest::Off),
            _ => {}
        }
        s.parse::<u32>()
            .map(SveRequest::Bits)
            .map_err(|_| SveError::NotALength(s.to_string()))
    }

    /// From `GuestHeader::sve_bits` (u64::MAX = max; 0 means none and is
    /// not passed here).
    pub fn from_header(bits: u64) -> SveRequest {
        match bits {
            u64::MAX => SveRequest::Max,
            b => SveRequest::Bits(u32::try_from(b).unwrap_or(u32::MAX)),
        }
    }
}

/// Whether `bits` is an architecturally valid vector length.
pub fn valid_bits(bits: u32) -> bool {
    (MIN_BITS..=MAX_BITS).contains(&bits) && bits.is_multiple_of(128)
}

impl fmt::Display for SveRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SveRequest::Off => write!(f, "off"),
            SveRequest::Max => write!(f, "max"),
            SveRequest::Bits(b) => write!(f, "{b} bits"),
        }
    }
}

/// An SVE request this host or this launcher cannot grant ("invalid
/// configuration: ...").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SveError {
    /// A request that is neither a length in bits nor `max`.
    #[error("`{0}` is not a vector length in bits (e.g. 256) or `max`")]
    NotALength(String),
    /// SVE asked for on a host without SVE lengths.
    #[error("SVE requested but the host offers no SVE vector lengths")]
    HostHasNone,
    /// SVE was turned off.
    #[error("SVE is off; nothing to choose")]
    Off,
    /// A length outside 128..=2048 bits.
    #[error("SVE vector length {bits} bits is outside {}..={} (the host offers {} bits)", MIN_BITS, MAX_BITS, host.describe())]
    OutOfRange {
        /// The length asked for.
        bits: u32,
        /// What the host offers.
        host: Box<VlSet>,
    },
    /// A length that is not a multiple of 128 bits.
    #[error("SVE vector length {bits} bits is not a multiple of 128 (the host offers {} bits)", host.describe())]
    NotMultiple {
        /// The length asked for.
        bits: u32,
        /// What the host offers.
        host: Box<VlSet>,
    },
    /// A valid length the host does not offer.
    #[error("SVE vector length {bits} bits is not one the host offers (it offers {} bits)", host.describe())]
    NotOffered {
        /// The length asked for.
        bits: u32,
        /// What the host offers.
        host: Box<VlSet>,
    },
    /// arm64 host without KVM_CAP_ARM_SVE.
    #[error("SVE ({0}) requested but this host has no KVM_CAP_ARM_SVE (it offers no SVE vector lengths)")]
    NoKvmCap(SveRequest),
    /// An x86_64 launcher asked for SVE.
    #[error("sve {0}: SVE is an arm64 feature; it cannot be asked for on x86_64")]
    NotThisArch(SveRequest),
    /// A vCPU finalized another set of lengths than vCPU 0 (KVM's SVE
    /// design assumes one set for every vCPU of a VM).
    #[error("vCPU {vcpu} has SVE lengths {} bits, vCPU 0 has {} bits: every vCPU must have the same set", got.describe(), first.describe())]
    VcpusDiffer {
        /// The vCPU whose set differs.
        vcpu: u32,
        /// vCPU 0's set.
        first: Box<VlSet>,
        /// That vCPU's set.
        got: Box<VlSet>,
    },
    /// SVE was granted on some vCPUs and not on others.
    #[error("vCPU {vcpu} has SVE {}, vCPU 0 {}", on_off(*.got), on_off(*.first))]
    VcpuSveMismatch {
        /// The vCPU that differs.
        vcpu: u32,
        /// Whether vCPU 0 has SVE.
        first: bool,
        /// Whether that vCPU has SVE.
        got: bool,
    },
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// vCPU `vcpu`'s finalized set `got` against vCPU 0's `first` (None: SVE
/// off): the launcher refuses to run a VM whose vCPUs differ.
pub fn check_same_set(
    vcpu: u32,
    first: Option<&VlSet>,
    got: Option<&VlSet>,
) -> Result<(), SveError> {
    match (first, got) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(a), Some(b)) => Err(SveError::VcpusDiffer {
            vcpu,
            first: Box::new(*a),
            got: Box::new(*b),
        }),
        (a, b) => Err(SveError::VcpuSveMismatch {
            vcpu,
            first: a.is_some(),
            got: b.is_some(),
        }),
    }
}

/// The set of vector lengths, as KVM's VLS register holds it: bit (vq-1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlSet(pub [u64; 8]);

impl VlSet {
    /// The set from the VLS register's 64 bytes (little-endian words).
    pub fn from_bytes(b: &[u8; 64]) -> VlSet {
        let mut w = [0u64; 8];
        for (i, c) in b.chunks_exact(8).enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            w[i] = u64::from_le_bytes(a);
        }
        VlSet(w)
    }

    /// The VLS register's 64 bytes.
    pub fn to_bytes(self) -> [u8; 64] {
        let mut b = [0u8; 64];
        for (i, w) in self.0.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// The set of these vqs (out-of-range ones ignored).
    pub fn from_vqs(vqs: &[u32]) -> VlSet {
        let mut s = VlSet::default();
        for &vq in vqs {
            if (1..=512).contains(&vq) {
                let b = vq - 1;
                s.0[(b / 64) as usize] |= 1 << (b % 64);
            }
        }
        s
    }

    /// Whether the set has `vq`.
    pub fn contains_vq(&self, vq: u32) -> bool {
        (1..=512).contains(&vq) && self.0[((vq - 1) / 64) as usize] & (1 << ((vq - 1) % 64)) != 0
    }

    /// Supported vqs, ascending.
    pub fn vqs(&self) -> Vec<u32> {
        (1..=512).filter(|&vq| self.contains_vq(vq)).collect()
    }

    /// Supported lengths in bits, ascending.
    pub fn bits(&self) -> Vec<u32> {
        self.vqs().into_iter().map(vq_to_bits).collect()
    }

    /// The largest vq in the set.
    pub fn max_vq(&self) -> Option<u32> {
        self.vqs().last().copied()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// "128, 256, 512" or "none".
    pub fn describe(&self) -> String {
        let b = self.bits();
        if b.is_empty() {
            return "none".into();
        }
        b.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    }

    /// The set to write back for `req`: the host's set with every length
    /// above the requested maximum cleared. KVM only lets userspace choose
    /// the maximum (the set below it must equal the host's), so the request
    /// must itself be a length the host offers. Returns the set and its
    /// maximum in bits, or a one-line error naming what the host offers.
    pub fn clip(&self, req: SveRequest) -> Result<(VlSet, u32), SveError> {
        let Some(host_max) = self.max_vq() else {
            return Err(SveError::HostHasNone);
        };
        let max_vq = match req {
            SveRequest::Off => return Err(SveError::Off),
            SveRequest::Max => host_max,
            SveRequest::Bits(bits) if !(MIN_BITS..=MAX_BITS).contains(&bits) => {
                return Err(SveError::OutOfRange {
                    bits,
                    host: Box::new(*self),
                });
            }
            SveRequest::Bits(bits) if !valid_bits(bits) => {
                return Err(SveError::NotMultiple {
                    bits,
                    host: Box::new(*self),
                });
            }
            SveRequest::Bits(bits) => {
                let vq = bits_to_vq(bits);
                if !self.contains_vq(vq) {
                    return Err(SveError::NotOffered {
                        bits,
                        host: Box::new(*self),
                    });
                }
                vq
            }
        };
        let keep: Vec<u32> = self.vqs().into_iter().filter(|&v| v <= max_vq).collect();
        Ok((VlSet::from_vqs(&keep), vq_to_bits(max_vq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_ids_match_the_uapi_header() {
        // Values computed from arch/arm64/include/uapi/asm/kvm.h.
        assert_eq!(VLS_ID, 0x6060_0000_0015_ffff);
        assert_eq!(zreg_id(0, 0), 0x6080_0000_0015_0000);
        assert_eq!(zreg_id(31, 0), 0x6080_0000_0015_03e0);
        assert_eq!(zreg_id(1, 1), 0x6080_0000_0015_0021);
        assert_eq!(preg_id(0, 0), 0x6050_0000_0015_0400);
        assert_eq!(preg_id(15, 0), 0x6050_0000_0015_05e0);
        assert_eq!(ffr_id(0), 0x6050_0000_0015_0600);
        // Size field = log2(bytes): Z 256 bytes, P/FFR 32 bytes, VLS 64.
        assert_eq!(1usize << ((zreg_id(0, 0) >> 52) & 0xf), Z_SLICE_BYTES);
        assert_eq!(1usize << ((preg_id(0, 0) >> 52) & 0xf), P_SLICE_BYTES);
        assert_eq!(1usize << ((ffr_id(0) >> 52) & 0xf), P_SLICE_BYTES);
        assert_eq!(1usize << ((VLS_ID >> 52) & 0xf), 64);
    }

    #[test]
    fn vl_and_vq_convert() {
        assert_eq!(bits_to_vq(128), 1);
        assert_eq!(bits_to_vq(2048), 16);
        assert_eq!(vq_to_bits(4), 512);
    }

    #[test]
    fn vls_bitmap_round_trips() {
        // QEMU's -cpu max,sve=on: every vq 1..=16 -> 0xffff.
        let s = VlSet::from_vqs(&(1..=16).collect::<Vec<_>>());
        assert_eq!(s.0, [0xffff, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(VlSet::from_bytes(&s.to_bytes()), s);
        assert_eq!(s.max_vq(), Some(16));
        let big = VlSet::from_vqs(&[1, 65, 512]);
        assert_eq!(big.0[1], 1);
        assert_eq!(big.0[7], 1 << 63);
        assert_eq!(big.vqs(), vec![1, 65, 512]);
        assert!(VlSet::default().is_empty());
        assert_eq!(VlSet::default().describe(), "none");
    }

    #[test]
    fn clipping_keeps_the_host_set_below_the_requested_maximum() {
        let host = VlSet::from_vqs(&[1, 2, 4, 8]);
        let (s, bits) = host.clip(SveRequest::Bits(512)).unwrap();
        assert_eq!((s.vqs(), bits), (vec![1, 2, 4], 512));
        let (s, bits) = host.clip(SveRequest::Max).unwrap();
        assert_eq!((s, bits), (host, 1024));
        let e = host.clip(SveRequest::Bits(384)).unwrap_err().to_string();
        assert!(e.contains("128, 256, 512, 1024"), "{e}");
        let e = host.clip(SveRequest::Bits(2048)).unwrap_err().to_string();
        assert!(e.contains("not one the host offers"), "{e}");
        assert!(VlSet::default().clip(SveRequest::Max).is_err());
        for bad in [0, 64, 2176, 4096, u32::MAX] {
            let e = host.clip(SveRequest::Bits(bad)).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{bad} bits is outside 128..=2048")) && e.contains("1024"),
                "{e}"
            );
        }
        for bad in [200, 1000, 2047] {
            let e = host.clip(SveRequest::Bits(bad)).unwrap_err().to_string();
            assert!(
                e.contains("not a multiple of 128 (") && e.contains("1024"),
                "{e}"
            );
        }
    }

    #[test]
    fn requests_parse_and_reject_bad_lengths() {
        assert_eq!(SveRequest::parse("max"), Ok(SveRequest::Max));
        assert_eq!(SveRequest::parse("256"), Ok(SveRequest::Bits(256)));
        assert_eq!(SveRequest::parse("100"), Ok(SveRequest::Bits(100)));
        for bad in ["abc", "-128", ""] {
            assert!(SveRequest::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SveRequest::from_header(u64::MAX), SveRequest::Max);
        assert_eq!(SveRequest::from_header(1 << 40), SveRequest::Bits(u32::MAX));
        assert!(valid_bits(2048) && valid_bits(128) && !valid_bits(2176) && !valid_bits(192));
    }

    #[test]
    fn every_vcpu_must_have_vcpu_0s_set() {
        let a = VlSet([0b1011, 0, 0, 0, 0, 0, 0, 0]);
        let b = VlSet([0b0011, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(check_same_set(1, Some(&a), Some(&a)), Ok(()));
        assert_eq!(check_same_set(3, None, None), Ok(()));
        let e = check_same_set(2, Some(&a), Some(&b)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("vCPU 2"), "{msg}");
        assert!(
            msg.contains(&a.describe()) && msg.contains(&b.describe()),
            "{msg}"
        );
        assert!(matches!(e, SveError::VcpusDiffer { vcpu: 2, .. }));
        let e = check_same_set(1, Some(&a), None).unwrap_err().to_string();
        assert_eq!(e, "vCPU 1 has SVE off, vCPU 0 on");
    }
}
