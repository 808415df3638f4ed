//! `vector --threads N`: every kernel split across the VM's vCPUs with
//! `guest_rt::thread::parallel_for`, over an ISA's own kernels; the main
//! loop checks the results against the same scalar references.
//!
//! dot and sum add per-piece partial results (exact for the dyadic data
//! and for wrapping integers, in any order); saxpy, gather and matmul write
//! disjoint pieces of their output (matmul: rows of c).

use core::ops::Range;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use vessel_kernels::table::{check_gather, check_matmul, Kernels};

/// The ISA the threaded kernels call, and how many pieces they split into.
static BASE: AtomicPtr<Kernels> = AtomicPtr::new(core::ptr::null_mut());
static PIECES: AtomicUsize = AtomicUsize::new(1);

fn base() -> &'static Kernels {
    // SAFETY: set once by `threaded` from a `&'static Kernels` before any
    // threaded kernel runs; never written again.
    unsafe { &*BASE.load(Ordering::Acquire) }
}

/// Call `f` on `pieces` pieces of `0..n` in parallel.
fn split(n: usize, f: impl Fn(Range<usize>) + Sync) {
    let pieces = PIECES.load(Ordering::Relaxed).clamp(1, n.max(1));
    let each = n.div_ceil(pieces);
    guest_rt::thread::parallel_for(0..pieces, |ps| {
        for p in ps {
            f((p * each).min(n)..((p + 1) * each).min(n));
        }
    });
}

/// A mutable slice handed to several threads, each writing its own range.
struct Shared<T>(*mut T, usize);
// SAFETY: every user writes a range no other thread touches (see `part`).
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(s: &mut [T]) -> Shared<T> {
        Shared(s.as_mut_ptr(), s.len())
    }
    /// The elements `r` of the slice.
    ///
    /// # Safety
    /// No two live results may overlap, and the slice must outlive them.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, r: Range<usize>) -> &mut [T] {
        assert!(r.start <= r.end && r.end <= self.1);
        // SAFETY: in bounds (checked above); disjointness and lifetime are
        // the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(self.0.add(r.start), r.end - r.start) }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let total = guest_rt::sync::Mutex::new(0f32);
    split(a.len(), |r| {
        let part = (base().dot)(&a[r.clone()], &b[r]);
        *total.lock() += part;
    });
    total.into_inner()
}

fn saxpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    let ys = Shared::new(y);
    split(x.len(), |r| {
        // SAFETY: the pieces of `split` are disjoint, and `y` outlives the call.
        let y = unsafe { ys.part(r.clone()) };
        (base().saxpy)(alpha, &x[r], y);
    });
}

fn sum(a: &[i32]) -> i32 {
    let total = core::sync::atomic::AtomicI32::new(0);
    split(a.len(), |r| {
        total.fetch_add((base().sum)(&a[r]), Ordering::Relaxed);
    });
    total.into_inner()
}

fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    check_matmul(a, b, c, m, k, n);
    let cs = Shared::new(c);
    split(m, |rows| {
        let rm = rows.end - rows.start;
        // SAFETY: row pieces are disjoint, and `c` outlives the call.
        let c = unsafe { cs.part(rows.start * n..rows.end * n) };
        (base().matmul)(&a[rows.start * k..rows.end * k], b, c, rm, k, n);
    });
}

fn gather(table: &[i32], idx: &[u32], out: &mut [i32]) {
    check_gather(table, idx, out);
    let os = Shared::new(out);
    split(idx.len(), |r| {
        // SAFETY: the pieces of `split` are disjoint, and `out` outlives the call.
        let out = unsafe { os.part(r.clone()) };
        (base().gather)(table, &idx[r], out);
    });
}

/// `k`'s kernels split into `threads` pieces on the VM's vCPUs (call once).
pub fn threaded(k: &'static Kernels, threads: usize) -> &'static Kernels {
    BASE.store(core::ptr::from_ref(k).cast_mut(), Ordering::Release);
    PIECES.store(threads.max(1), Ordering::Relaxed);
    alloc::boxed::Box::leak(alloc::boxed::Box::new(Kernels {
        name: k.name,
        imp: k.imp,
        isa: k.isa,
        vl_bits: k.vl_bits,
        dot,
        saxpy,
        sum,
        matmul,
        gather,
    }))
}
