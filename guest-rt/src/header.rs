//! The guest image's `.vessel.header`, which the launcher reads before the
//! guest runs: a [`vessel_abi::GuestHeader`] built by [`crate::entry!`] in
//! the app, with the addresses of the arch entry stubs left to the linker.

use core::mem::{offset_of, size_of};

use vessel_abi::{GuestHeader, ABI_VERSION, HEADER_MAGIC};

/// Words of `GuestHeader::reserved`.
const RESERVED: usize = (size_of::<GuestHeader>() - offset_of!(GuestHeader, reserved)) / 8;

/// [`GuestHeader`] with its two stub addresses as pointers, so that a
/// `static` can hold them (a pointer cannot become an integer at compile
/// time). The assertions below keep it byte for byte the ABI type.
#[doc(hidden)]
#[repr(C)]
pub struct Header {
    magic: u64,
    abi_version: u32,
    vector_count: u32,
    vector_table: *const (),
    vector_stride: u64,
    sve_bits: u64,
    irq_entry: *const (),
    vcpus: u64,
    reserved: [u64; RESERVED],
}

// SAFETY: the header is immutable data for the launcher; the guest never
// dereferences its pointers, so sharing it between threads is harmless.
unsafe impl Sync for Header {}

impl Header {
    /// The header of an app that asks for `sve_bits` of SVE and, by
    /// default, `vcpus` vCPUs (0: none named).
    pub const fn new(sve_bits: u64, vcpus: u64) -> Header {
        let (vector_table, irq_entry) = crate::arch::header_entries();
        Header {
            magic: HEADER_MAGIC,
            abi_version: ABI_VERSION,
            vector_count: crate::arch::VECTOR_COUNT,
            vector_table,
            vector_stride: crate::arch::VECTOR_STRIDE,
            sve_bits,
            irq_entry,
            vcpus,
            reserved: [0; RESERVED],
        }
    }
}

const _: () = {
    assert!(size_of::<Header>() == size_of::<GuestHeader>());
    assert!(size_of::<*const ()>() == size_of::<u64>());
    assert!(offset_of!(Header, magic) == offset_of!(GuestHeader, magic));
    assert!(offset_of!(Header, abi_version) == offset_of!(GuestHeader, abi_version));
    assert!(offset_of!(Header, vector_count) == offset_of!(GuestHeader, vector_count));
    assert!(offset_of!(Header, vector_table) == offset_of!(GuestHeader, vector_table));
    assert!(offset_of!(Header, vector_stride) == offset_of!(GuestHeader, vector_stride));
    assert!(offset_of!(Header, sve_bits) == offset_of!(GuestHeader, sve_bits));
    assert!(offset_of!(Header, irq_entry) == offset_of!(GuestHeader, irq_entry));
    assert!(offset_of!(Header, vcpus) == offset_of!(GuestHeader, vcpus));
    assert!(offset_of!(Header, reserved) == offset_of!(GuestHeader, reserved));
};

/// Emits the app's `.vessel.header` (used by [`crate::entry!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __vessel_header {
    ($sve_bits:expr, $vcpus:expr) => {
        #[used]
        #[unsafe(link_section = ".vessel.header")]
        static __VESSEL_HEADER: $crate::header::Header =
            $crate::header::Header::new($sve_bits, $vcpus);
    };
}
