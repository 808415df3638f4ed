//! The Vessel host/guest contract, version 1.
//!
//! Protocol in three lines:
//! 1. The launcher loads the guest ELF, writes a [`BootInfo`] into guest memory
//!    and starts vCPU 0 at the ELF entry with the BootInfo address in `rdi`/`x0`.
//! 2. The guest checks [`BootInfo::magic`] and [`BootInfo::abi_version`] before
//!    its first hypercall; feature bits in [`BootInfo::features`] say what exists.
//! 3. A hypercall is a [`Frame`] in guest memory whose guest-physical address the
//!    guest stores to the doorbell ([`arch`]`::DOORBELL`); the launcher answers in
//!    the same frame before the vCPU resumes.
//!
//! Every `#[repr(C)]` type here has its size and field offsets asserted at
//! compile time: both sides compile this one crate, so a layout change shows
//! up as a build error, not as a silent mismatch. Each also derives
//! zerocopy's `FromBytes + IntoBytes + Immutable`, whose derives refuse a
//! type with padding or with bytes that are not valid for every pattern, so
//! the host reads and writes them in guest memory without `unsafe`.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

use zerocopy::{FromBytes, Immutable, IntoBytes};

pub mod apf;
pub mod call;
pub mod embed;
pub mod exit;
pub mod fs;
pub mod http;
pub mod ring;
pub mod value;

pub use call::{clock, nr, Call, DecodeError, Errno, Frame, GuestSlice};
/// The byte-safety traits every `#[repr(C)]` type here derives
/// (`FromBytes`, `IntoBytes`, `Immutable`), re-exported so both sides use
/// the same version.
pub use zerocopy;

/// The ABI version. A guest refuses to run on a launcher with another one,
/// and the launcher refuses a guest built against another one.
///
/// 2: the launcher reserves the stdout buffer ([`BootInfo::stdout_buffer`]);
/// the guest no longer exports it as an ELF symbol.
pub const ABI_VERSION: u32 = 2;

/// The most vCPUs a VM has: the length bound of [`BootInfo::vcpus`] (and
/// at most 64, the bits of [`Call::Wake`]'s mask).
pub const MAX_VCPUS: u32 = 32;

const _: () = assert!(MAX_VCPUS <= 64);

/// `BootInfo::magic`: "VESSELBI" read as a little-endian u64.
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"VESSELBI");

/// `GuestHeader::magic`: "VESSELHD" read as a little-endian u64.
pub const HEADER_MAGIC: u64 = u64::from_le_bytes(*b"VESSELHD");

/// Name of the ELF section holding the guest's [`GuestHeader`].
pub const HEADER_SECTION: &str = ".vessel.header";

/// Feature bits in [`BootInfo::features`].
pub mod features {
    /// Async page faults are offered: lazy regions report "not present" / "ready".
    pub const ASYNC_PF: u64 = 1 << 0;
    /// SVE is enabled for this VM; `BootInfo::vector_bits` is the maximum length.
    pub const SVE: u64 = 1 << 1;
}

/// Per-vCPU data the launcher prepares. One entry per vCPU, indexed by vCPU id.
///
/// Every vCPU starts at the ELF entry with the BootInfo address in its
/// first argument register and its own stack; code finds the entry of the
/// vCPU it runs on through a register the launcher set and the guest cannot
/// change: the GS segment base on x86_64 (the entry's address: `mov %gs:0`
/// reads `id`), and MPIDR_EL1 on aarch64 (`Aff0` = `id`, see
/// [`arch::aarch64::MPIDR_VCPU_MASK`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct VcpuInfo {
    /// vCPU index (0-based).
    pub id: u64,
    /// Guest-physical address of this vCPU's hypercall [`Frame`].
    pub frame: u64,
    /// Top of this vCPU's unprivileged stack (16-byte aligned).
    pub stack_top: u64,
    /// Size of that stack in bytes.
    pub stack_size: u64,
}

/// A memory region the launcher fills lazily, found by name.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct LazyRegion {
    /// Name given on the command line (`--lazy NAME=FILE`).
    pub name: GuestSlice,
    /// Guest address of the first byte.
    pub addr: u64,
    /// Bytes of file data (the region itself is rounded up to whole pages).
    pub len: u64,
}

/// What the launcher tells the guest at boot. Lives in guest memory; its
/// address arrives in the first argument register.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct BootInfo {
    /// [`BOOT_MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// Number of entries in `vcpus`.
    pub vcpu_count: u32,
    /// Feature bits, see [`features`].
    pub features: u64,
    /// Size of guest RAM in bytes (guest-physical 0..mem_size).
    pub mem_size: u64,
    /// Start of the heap the guest may use (page aligned).
    pub heap_start: u64,
    /// Heap size in bytes.
    pub heap_size: u64,
    /// Guest address of `argc` [`GuestSlice`]s; argument 0 is the program name.
    pub argv: u64,
    /// Number of arguments at `argv`.
    pub argc: u64,
    /// Guest address of `envc` [`GuestSlice`]s, each `KEY=VALUE`.
    pub envp: u64,
    /// Number of entries at `envp`.
    pub envc: u64,
    /// Guest address of `vcpu_count` [`VcpuInfo`]s.
    pub vcpus: u64,
    /// Guest address of `lazy_count` [`LazyRegion`]s.
    pub lazy: u64,
    /// Number of regions at `lazy`.
    pub lazy_count: u64,
    /// Vector length in bits granted to the guest (SVE maximum), 0 if none.
    pub vector_bits: u64,
    /// Frequency of the guest's cycle counter (TSC / CNTVCT) in kHz, 0 if unknown.
    pub counter_khz: u64,
    /// Console behaviour bits, see [`console`].
    pub console_flags: u64,
    /// Guest address of the zeroed [`ConsoleBuffer`] the launcher reserved
    /// for the guest's buffered stdout (8-byte aligned, never 0).
    pub stdout_buffer: u64,
    /// Reserved for later versions; zero.
    pub reserved: [u64; 6],
}

/// The guest's stdout buffer, which the launcher can read when the guest
/// cannot flush it itself (crash, timeout).
///
/// guest-rt buffers stdout (a write hypercall per [`console::BUFFER`]
/// bytes, at exit, before idling or reading stdin; per line when
/// [`console::STDOUT_LINE_BUFFERED`] is set, i.e. stdout is a terminal).
/// Its buffer is the [`ConsoleBuffer`] the launcher reserved in the boot
/// area and named in [`BootInfo::stdout_buffer`](crate::BootInfo::stdout_buffer);
/// after a crash or a timeout the launcher prints what is left in it (it
/// remembers the address it wrote, it does not read it back from BootInfo).
pub mod console {
    /// `BootInfo::console_flags`: flush stdout at every newline.
    pub const STDOUT_LINE_BUFFERED: u64 = 1 << 0;
    /// Bytes of stdout guest-rt buffers.
    pub const BUFFER: usize = 4096;
}

/// Pending console output: `len` bytes at the start of `data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct ConsoleBuffer {
    /// Bytes of `data` in use.
    pub len: u64,
    /// The buffered bytes.
    pub data: [u8; console::BUFFER],
}

impl Default for ConsoleBuffer {
    fn default() -> Self {
        ConsoleBuffer {
            len: 0,
            data: [0; console::BUFFER],
        }
    }
}

/// Static data the guest image carries in its [`HEADER_SECTION`] section, read
/// by the launcher before the guest runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct GuestHeader {
    /// [`HEADER_MAGIC`].
    pub magic: u64,
    /// ABI version the guest was built against.
    pub abi_version: u32,
    /// Number of exception/interrupt entry stubs at `vector_table`.
    pub vector_count: u32,
    /// Guest address of the exception entry stubs (x86_64: one stub per vector,
    /// `vector_stride` bytes apart; arm64: the VBAR_EL1 table).
    pub vector_table: u64,
    /// Distance between two x86_64 stubs in bytes.
    pub vector_stride: u64,
    /// SVE vector length the app asks for in bits: 0 none, u64::MAX the maximum.
    pub sve_bits: u64,
    /// x86_64: guest address of the one ring-0 stub that takes every external
    /// interrupt (vectors 32..=255: "page ready" and wake-ups); 0 if the
    /// guest has none (older guests: the field was reserved and zero).
    pub irq_entry: u64,
    /// vCPUs the app runs on when the launcher is not told (`--cpus`):
    /// `entry!(main, cpus = N)`; 0: the app names none (1 vCPU).
    pub vcpus: u64,
    /// Reserved; zero.
    pub reserved: [u64; 2],
}

/// Memory layout constants both sides rely on, per architecture.
pub mod arch {
    /// x86_64: guest-physical addresses are identity mapped.
    pub mod x86_64 {
        /// The hypercall doorbell: a store of a [`Frame`](crate::Frame)
        /// address here is a hypercall.
        pub const DOORBELL: u64 = 0xc000_0000;
        /// A store of an exception frame address here reports a fatal
        /// exception (written by the ring-0 stub, never by Rust code).
        pub const DOORBELL_FAULT: u64 = DOORBELL + 8;
        /// Highest guest RAM size the layout allows (RAM ends below DOORBELL).
        pub const MAX_RAM: u64 = DOORBELL;
        /// Where the guest image is linked.
        pub const IMAGE_BASE: u64 = 0x20_0000;
        /// Number of exception vectors with stubs.
        pub const EXCEPTION_VECTORS: u32 = 32;
        /// Bytes between two stubs.
        pub const STUB_STRIDE: u64 = 16;

        /// Model-specific registers the launcher and the guest's ring-0
        /// stubs both name.
        pub mod msr {
            /// x2APIC end of interrupt: the interrupt stub writes 0 here.
            pub const X2APIC_EOI: u32 = 0x80b;
            /// x2APIC spurious-interrupt vector: the launcher enables the
            /// APIC through it.
            pub const X2APIC_SVR: u32 = 0x80f;
            /// KVM: async-PF area address and enable bits (launcher).
            pub const KVM_ASYNC_PF_EN: u32 = 0x4b56_4d02;
            /// KVM: the "page ready" interrupt vector (launcher).
            pub const KVM_ASYNC_PF_INT: u32 = 0x4b56_4d06;
            /// KVM: "page ready" consumed, the next one may come (the
            /// interrupt stub writes 1 after clearing `ApfArea::token`).
            pub const KVM_ASYNC_PF_ACK: u32 = 0x4b56_4d07;
        }
    }
    /// arm64: guest-physical addresses are identity mapped.
    pub mod aarch64 {
        /// Guest RAM starts here (below is MMIO).
        pub const RAM_BASE: u64 = 0x4000_0000;
        /// The hypercall doorbell (no memslot: a store exits as MMIO).
        pub const DOORBELL: u64 = 0x0900_0000;
        /// A store of an exception frame address here reports a fatal exception.
        pub const DOORBELL_FAULT: u64 = DOORBELL + 8;
        /// Where the guest image is linked.
        pub const IMAGE_BASE: u64 = RAM_BASE + 0x20_0000;
        /// Highest guest RAM size the layout allows (39-bit VA identity map).
        pub const MAX_RAM: u64 = 64 << 30;
        /// Entries of the VBAR_EL1 vector table (`GuestHeader::vector_count`).
        pub const EXCEPTION_VECTORS: u32 = 16;
        /// Bytes between two VBAR_EL1 entries (`GuestHeader::vector_stride`).
        pub const VECTOR_STRIDE: u64 = 0x80;
        /// ESR_EL1.EC of the launcher's async-PF "page not present": a data
        /// abort taken without a change in exception level.
        pub const APF_ABORT_EC: u64 = 0x25;
        /// ESR_EL1.DFSC of that abort: synchronous external abort.
        pub const APF_ABORT_DFSC: u64 = 0x10;
        /// The bits of MPIDR_EL1 (Aff0) that hold the vCPU's index; the
        /// launcher sets MPIDR_EL1 to exactly the index.
        pub const MPIDR_VCPU_MASK: u64 = 0xff;

        const _: () = assert!(crate::MAX_VCPUS as u64 <= MPIDR_VCPU_MASK + 1);

        // The table is exactly the 2 KiB that VBAR_EL1's alignment asks for.
        const _: () = assert!(EXCEPTION_VECTORS as u64 * VECTOR_STRIDE == 2048);
    }
}

/// Fatal exception frame the x86_64 ring-0 stub leaves on its stack, lowest
/// address first; its address is what the stub stores to `DOORBELL_FAULT`.
/// The interrupted code's rax (the stub's one scratch register) is the 8
/// bytes [`X86FaultFrame::SAVED_RAX_BELOW`] below it; every other register
/// is untouched, so a debugger can resume the code after a #DB or #BP.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct X86FaultFrame {
    /// The exception vector (0-31).
    pub vector: u64,
    /// The CPU's error code, or 0 for a vector that pushes none.
    pub error_code: u64,
    /// Where the exception happened.
    pub rip: u64,
    /// Code segment at the exception (its low bits are the privilege level).
    pub cs: u64,
    /// RFLAGS at the exception.
    pub rflags: u64,
    /// Stack pointer at the exception.
    pub rsp: u64,
    /// Stack segment at the exception.
    pub ss: u64,
}

impl X86FaultFrame {
    /// How far below the frame the interrupted rax is saved.
    pub const SAVED_RAX_BELOW: u64 = 8;
}

/// Fatal exception record the arm64 vector stub stores before reporting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
pub struct Arm64FaultFrame {
    /// Which of the 16 vector table entries was taken.
    pub kind: u64,
    /// ESR_EL1: the exception syndrome.
    pub esr: u64,
    /// FAR_EL1: the faulting address (defined only for aborts, PC alignment faults and watchpoints).
    pub far: u64,
    /// ELR_EL1: where the exception happened.
    pub elr: u64,
    /// SPSR_EL1: the saved processor state.
    pub spsr: u64,
    /// SP at the exception.
    pub sp: u64,
}

/// Compile-time layout checks: size, then each field's offset.
macro_rules! assert_layout {
    ($ty:ty, $size:expr, { $($field:ident : $off:expr),* $(,)? }) => {
        const _: () = {
            assert!(core::mem::size_of::<$ty>() == $size);
            $( assert!(core::mem::offset_of!($ty, $field) == $off); )*
        };
    };
}

assert_layout!(GuestSlice, 16, { addr: 0, len: 8 });
assert_layout!(ConsoleBuffer, 8 + console::BUFFER, { len: 0, data: 8 });
assert_layout!(VcpuInfo, 32, { id: 0, frame: 8, stack_top: 16, stack_size: 24 });
assert_layout!(LazyRegion, 32, { name: 0, addr: 16, len: 24 });
assert_layout!(BootInfo, 184, {
    magic: 0, abi_version: 8, vcpu_count: 12, features: 16, mem_size: 24,
    heap_start: 32, heap_size: 40, argv: 48, argc: 56, envp: 64, envc: 72,
    vcpus: 80, lazy: 88, lazy_count: 96, vector_bits: 104, counter_khz: 112,
    console_flags: 120, stdout_buffer: 128, reserved: 136,
});
assert_layout!(GuestHeader, 72, {
    magic: 0, abi_version: 8, vector_count: 12, vector_table: 16,
    vector_stride: 24, sve_bits: 32, irq_entry: 40, vcpus: 48, reserved: 56,
});
assert_layout!(X86FaultFrame, 56, {
    vector: 0, error_code: 8, rip: 16, cs: 24, rflags: 32, rsp: 40, ss: 48,
});
assert_layout!(Arm64FaultFrame, 48, { kind: 0, esr: 8, far: 16, elr: 24, spsr: 32, sp: 40 });
assert_layout!(ring::RingHeader, 64, {
    sq_head: 0, sq_tail: 4, cq_head: 8, cq_tail: 12, in_flight: 16, reserved: 20,
});
assert_layout!(ring::Sqe, 64, {
    op: 0, flags: 4, user_data: 8, handle: 16, offset: 24, a: 32, b: 48,
});
assert_layout!(ring::Cqe, 16, { user_data: 0, result: 8 });
assert_layout!(fs::Stat, 32, {
    size: 0, kind: 8, mode: 12, modified_ns: 16, readonly: 24, reserved: 28,
});
assert_layout!(fs::DirEnt, 8, { name_len: 0, kind: 4 });
assert_layout!(Frame, 72, { nr: 0, status: 4, args: 8, ret: 56, ret2: 64 });

// The memory maps, checked when the crate compiles.
const _: () = {
    use arch::x86_64 as x;
    assert!(x::IMAGE_BASE < x::MAX_RAM);
    assert!(x::DOORBELL >= x::MAX_RAM);
    assert!(x::DOORBELL.is_multiple_of(4096));
    assert!(x::STUB_STRIDE.is_power_of_two());
};
const _: () = {
    use arch::aarch64 as a;
    assert!(a::DOORBELL + 4096 <= a::RAM_BASE);
    assert!(a::IMAGE_BASE > a::RAM_BASE);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_spell_their_names() {
        assert_eq!(&BOOT_MAGIC.to_le_bytes(), b"VESSELBI");
        assert_eq!(&HEADER_MAGIC.to_le_bytes(), b"VESSELHD");
    }
}
