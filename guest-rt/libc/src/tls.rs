//! Thread-local storage: each thread (the main one and every
//! `pthread_create`d one) gets a block holding its copy of the program's
//! TLS image (`.tdata` copied, `.tbss` zeroed) and a control block
//! ([`Tcb`]), and its vCPU's thread pointer is set to the block while the
//! thread runs (FS base on x86_64, TPIDR_EL0 on arm64; where exactly is
//! [`crate::arch::block_layout`]). std's `thread_local!` then compiles to
//! plain thread-pointer-relative loads: no call, no exit.

use core::alloc::Layout;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use guest_rt::heap::{raw_alloc, raw_dealloc};

/// Bytes reserved for the control block.
pub const TCB_SIZE: usize = 64;

/// Where the parts of a thread's block go (offsets from its start).
pub struct BlockLayout {
    /// Total bytes.
    pub size: usize,
    /// The TLS image.
    pub image: usize,
    /// What the thread pointer points at.
    pub tp: usize,
    /// The [`Tcb`].
    pub tcb: usize,
}

/// The per-thread control block.
#[repr(C)]
pub struct Tcb {
    /// x86_64 code reads the thread pointer from `%fs:0`: the block's own
    /// thread pointer value (kept on arm64 too).
    self_tp: usize,
    /// This thread's errno.
    pub errno: AtomicI32,
    /// The `pthread_t` of this thread (a [`crate::pthread`] record).
    pub thread: AtomicUsize,
}
const _: () = assert!(core::mem::size_of::<Tcb>() <= TCB_SIZE);

extern "C" {
    // Defined by guest-rt's linker script (guest-rt/build.rs).
    static __vessel_tls_start: u8;
    static __vessel_tdata_size: u8;
    static __vessel_tls_memsz: u8;
    static __vessel_tls_align: u8;
}

/// The program's TLS image: (initialised bytes, total size, alignment).
fn image() -> (&'static [u8], usize, usize) {
    // SAFETY: the linker script defines these symbols; only the addresses
    // of the last three are used (they are absolute values), and the
    // first `tdata` bytes at __vessel_tls_start are the loaded .tdata.
    unsafe {
        let tdata = &raw const __vessel_tdata_size as usize;
        let memsz = &raw const __vessel_tls_memsz as usize;
        let align = &raw const __vessel_tls_align as usize;
        let start = &raw const __vessel_tls_start;
        let data = core::slice::from_raw_parts(start, tdata.min(memsz));
        // The segment's own alignment: the linker's thread-pointer offsets
        // round the image to it (not to the block's 16).
        (data, memsz, align.max(1).next_power_of_two())
    }
}

/// One thread's block.
pub struct Block {
    base: *mut u8,
    layout: Layout,
    tp: usize,
}

// SAFETY: a Block is plain memory owned by one thread record; whoever
// holds it may free it from any vCPU.
unsafe impl Send for Block {}

impl Block {
    /// A fresh block (image copied, the rest zeroed) for a thread whose
    /// `pthread_t` is `thread`; None when the heap is full.
    pub fn new(thread: usize) -> Option<Block> {
        let (data, memsz, align) = image();
        let at = crate::arch::block_layout(memsz, align);
        // The block is at least 16-aligned: the Tcb within it is.
        let layout = Layout::from_size_align(at.size, align.max(16)).ok()?;
        // SAFETY: the size is at least TCB_SIZE, non-zero.
        let base = unsafe { raw_alloc(layout) };
        if base.is_null() {
            return None;
        }
        // SAFETY: `base` has `at.size` writable bytes; the image fits at
        // `at.image` (memsz >= data.len()) and the Tcb at `at.tcb`, which
        // block_layout keeps 16-aligned and TCB_SIZE long.
        unsafe {
            base.write_bytes(0, at.size);
            core::ptr::copy_nonoverlapping(data.as_ptr(), base.add(at.image), data.len());
            let tcb = base.add(at.tcb).cast::<Tcb>();
            tcb.write(Tcb {
                self_tp: base as usize + at.tp,
                errno: AtomicI32::new(0),
                thread: AtomicUsize::new(thread),
            });
        }
        Some(Block {
            base,
            layout,
            tp: base as usize + at.tp,
        })
    }

    /// The thread pointer value of this block.
    pub fn tp(&self) -> usize {
        self.tp
    }

    /// Record the thread's `pthread_t` (known after the block exists).
    pub fn set_thread(&self, thread: usize) {
        if let Some(t) = tcb_of(self.tp) {
            t.thread.store(thread, Ordering::SeqCst);
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; no thread runs on it
        // any more (its owner drops it after the thread ended).
        unsafe { raw_dealloc(self.base, self.layout) }
    }
}

/// The Tcb of the block whose thread pointer is `tp`.
fn tcb_of(tp: usize) -> Option<&'static Tcb> {
    if tp == 0 {
        return None;
    }
    let (_, memsz, align) = image();
    let at = crate::arch::block_layout(memsz, align);
    let tcb = (tp - at.tp + at.tcb) as *const Tcb;
    // SAFETY: every non-zero thread pointer this library sets is a Block's,
    // whose Tcb lies at that offset and outlives the thread running on it.
    Some(unsafe { &*tcb })
}

/// Whether this VM lets the guest set its thread pointer (checked once,
/// at start: without it no thread pointer is ever set).
fn supported() -> bool {
    guest_rt::env::features() & vessel_abi::features::THREAD_POINTER != 0
}

/// The running thread's control block (None before the main thread's
/// block is set, or on a vCPU running only runtime code).
pub fn current() -> Option<&'static Tcb> {
    if !supported() {
        return None;
    }
    // SAFETY: the launcher offered THREAD_POINTER.
    tcb_of(unsafe { guest_rt::arch::thread_pointer() } as usize)
}

/// This vCPU's thread pointer (0 if none).
pub fn get() -> usize {
    if !supported() {
        return 0;
    }
    // SAFETY: the launcher offered THREAD_POINTER.
    unsafe { guest_rt::arch::thread_pointer() as usize }
}

/// Set this vCPU's thread pointer to `tp` (a live Block's, or 0 / a value
/// [`get`] returned, to restore it).
pub fn set(tp: usize) {
    if supported() {
        // SAFETY: THREAD_POINTER is offered; `tp` is a live block's or the
        // one this vCPU had before, as the callers keep it.
        unsafe { guest_rt::arch::set_thread_pointer(tp as u64) }
    }
}

/// Check at start that thread-locals can work: the launcher must offer
/// THREAD_POINTER, or the program stops with a message naming why.
pub fn require() {
    if !supported() {
        guest_rt::process::abort(
            "std program: this VM does not let the guest set its thread pointer \
             (x86_64 needs a CPU with FSGSBASE), so thread-locals cannot work",
        );
    }
}
