//! GDT, TSS and IDT contents, and the matching KVM segment registers.
//!
//! The GDT is fixed: null, kernel code/data, user data/code (the order
//! `sysret` would want), then one 16-byte TSS descriptor per vCPU.

use kvm_bindings::kvm_segment;

pub const KERNEL_CS: u16 = 0x08;
#[allow(dead_code)] // documents GDT slot 2
pub const KERNEL_DS: u16 = 0x10;
pub const USER_DS: u16 = 0x18 | 3;
pub const USER_CS: u16 = 0x20 | 3;
/// Selector of vCPU 0's TSS; vCPU i's is `TSS_SELECTOR + 16 * i`.
pub const TSS_SELECTOR: u16 = 0x28;
/// Size of one TSS (the 64-bit TSS is 104 bytes).
pub const TSS_SIZE: u64 = 104;

/// Access byte bits.
const PRESENT: u64 = 1 << 47;
const DPL3: u64 = 3 << 45;
const CODE_DATA: u64 = 1 << 44;
const EXEC: u64 = 1 << 43;
const RW: u64 = 1 << 41;
const ACCESSED: u64 = 1 << 40;
/// Flags nibble.
const GRANULARITY: u64 = 1 << 55;
const SIZE32: u64 = 1 << 54;
const LONG: u64 = 1 << 53;
const LIMIT_MAX: u64 = 0xffff | (0xf << 48);

/// The fixed part of the GDT (5 entries).
pub fn gdt_fixed() -> [u64; 5] {
    let base = PRESENT | CODE_DATA | ACCESSED | RW | GRANULARITY | LIMIT_MAX;
    [
        0,
        base | EXEC | LONG,        // kernel code
        base | SIZE32,             // kernel data
        base | SIZE32 | DPL3,      // user data
        base | EXEC | LONG | DPL3, // user code
    ]
}

/// A 64-bit available TSS descriptor (two GDT slots).
pub fn tss_descriptor(base: u64) -> [u64; 2] {
    let limit = TSS_SIZE - 1;
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x9 << 40) // type: 64-bit TSS, available
        | PRESENT
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

/// A 64-bit TSS with the ring-0 stack and IST1 set.
pub fn tss(rsp0: u64, ist1: u64) -> [u8; TSS_SIZE as usize] {
    let mut t = [0u8; TSS_SIZE as usize];
    t[4..12].copy_from_slice(&rsp0.to_le_bytes());
    t[36..44].copy_from_slice(&ist1.to_le_bytes());
    // I/O map base past the limit: no I/O permission bitmap.
    t[102..104].copy_from_slice(&(TSS_SIZE as u16).to_le_bytes());
    t
}

/// A 64-bit interrupt gate to `handler` in the kernel code segment.
/// `ist` 0 keeps the current stack (RSP0 when coming from CPL3).
pub fn interrupt_gate(handler: u64, ist: u8, dpl: u8) -> [u64; 2] {
    let low = (handler & 0xffff)
        | (u64::from(KERNEL_CS) << 16)
        | (u64::from(ist & 7) << 32)
        | (0xe << 40) // type: 64-bit interrupt gate
        | (u64::from(dpl & 3) << 45)
        | PRESENT
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// The KVM view of a GDT code/data descriptor with selector `sel`.
pub fn segment(desc: u64, sel: u16) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: sel,
        type_: ((desc >> 40) & 0xf) as u8,
        present: 1,
        dpl: ((desc >> 45) & 3) as u8,
        db: ((desc >> 54) & 1) as u8,
        s: 1,
        l: ((desc >> 53) & 1) as u8,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// The KVM view of vCPU `i`'s task register (busy TSS).
pub fn task_register(base: u64, i: u16) -> kvm_segment {
    kvm_segment {
        base,
        limit: (TSS_SIZE - 1) as u32,
        selector: TSS_SELECTOR + 16 * i,
        type_: 0xb, // 64-bit TSS, busy
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_gdt_matches_the_well_known_encodings() {
        let g = gdt_fixed();
        assert_eq!(g[1], 0x00af_9b00_0000_ffff);
        assert_eq!(g[2], 0x00cf_9300_0000_ffff);
        assert_eq!(g[3], 0x00cf_f300_0000_ffff);
        assert_eq!(g[4], 0x00af_fb00_0000_ffff);
    }

    #[test]
    fn selectors_index_the_right_entries() {
        let g = gdt_fixed();
        assert_eq!((g[(USER_CS >> 3) as usize] >> 45) & 3, 3);
        assert_eq!(
            (g[(USER_CS >> 3) as usize] >> 53) & 1,
            1,
            "user code is 64-bit"
        );
        assert_eq!((g[(KERNEL_CS >> 3) as usize] >> 45) & 3, 0);
        assert_eq!(USER_CS & 3, 3);
        assert_eq!(USER_DS & 3, 3);
        assert_eq!(TSS_SELECTOR as usize, g.len() * 8);
    }

    #[test]
    fn kvm_segments_follow_the_descriptors() {
        let g = gdt_fixed();
        let cs = segment(g[4], USER_CS);
        assert_eq!((cs.dpl, cs.l, cs.db, cs.type_), (3, 1, 0, 0xb));
        let ds = segment(g[3], USER_DS);
        assert_eq!((ds.dpl, ds.l, ds.db, ds.type_), (3, 0, 1, 0x3));
    }

    #[test]
    fn tss_descriptor_splits_the_base() {
        let [lo, hi] = tss_descriptor(0x1234_5678_9abc_d000);
        assert_eq!(lo & 0xffff, TSS_SIZE - 1);
        assert_eq!((lo >> 16) & 0xff_ffff, 0xbc_d000);
        assert_eq!((lo >> 56) & 0xff, 0x9a);
        assert_eq!(hi, 0x1234_5678);
        assert_eq!((lo >> 40) & 0xf, 9);
        assert_eq!((lo >> 47) & 1, 1);
    }

    #[test]
    fn gate_encodes_handler_ist_and_dpl() {
        let [lo, hi] = interrupt_gate(0xffff_8000_1234_5678, 1, 0);
        assert_eq!(lo & 0xffff, 0x5678);
        assert_eq!((lo >> 48) & 0xffff, 0x1234);
        assert_eq!(hi, 0xffff_8000);
        assert_eq!((lo >> 16) & 0xffff, u64::from(KERNEL_CS));
        assert_eq!((lo >> 32) & 7, 1);
        assert_eq!((lo >> 40) & 0xff, 0x8e);
    }

    #[test]
    fn tss_has_rsp0_ist1_and_no_io_map() {
        let t = tss(0x1111, 0x2222);
        assert_eq!(u64::from_le_bytes(t[4..12].try_into().unwrap()), 0x1111);
        assert_eq!(u64::from_le_bytes(t[36..44].try_into().unwrap()), 0x2222);
        assert_eq!(u16::from_le_bytes([t[102], t[103]]), 104);
    }
}
