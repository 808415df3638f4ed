//! POSIX threads over guest-rt threads: `pthread_create` queues the start
//! routine for an idle vCPU (guest_rt::thread::spawn), with its own TLS
//! block whose thread pointer is set while it runs and restored after (a
//! joiner that runs a queued thread itself keeps its own thread-locals).
//! A thread keeps its vCPU until it returns (no preemption): see
//! guest-rt/README.md for what that means for programs whose threads wait
//! for each other.
//!
//! `pthread_t` is the address of a [`Thread`] record; keys
//! (`pthread_key_*`) are a fixed table of [`KEYS`] slots whose destructors
//! run when a thread's start routine returns.

use core::ffi::{c_int, c_uint, c_void};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use guest_rt::thread::JoinHandle;
use rust_alloc::boxed::Box;
use spin::Mutex;

use crate::tls::Block;

/// How many `pthread_key_t`s may exist at once (musl has 128 too).
pub const KEYS: usize = 128;

/// Thread state bits.
const DETACHED: u32 = 1;
const DONE: u32 = 2;

/// One thread: its TLS block, its result, its key values.
pub struct Thread {
    /// What `gettid` says: 1 for the main thread, then 2, 3, ...
    tid: c_int,
    block: Block,
    join: Mutex<Option<JoinHandle<usize>>>,
    state: AtomicU32,
    specific: [AtomicUsize; KEYS],
}

/// Destructor of each key (0: none), and which keys are in use.
static DTORS: [AtomicUsize; KEYS] = [const { AtomicUsize::new(0) }; KEYS];
static USED: [AtomicU32; KEYS] = [const { AtomicU32::new(0) }; KEYS];
/// The main thread's record (set by [`init_main`]).
static MAIN: AtomicUsize = AtomicUsize::new(0);
/// The next thread id.
static NEXT_TID: AtomicU32 = AtomicU32::new(1);

/// A new record with a fresh TLS block (None when the heap is full).
fn new_thread() -> Option<*mut Thread> {
    let block = Block::new(0)?;
    let tid = NEXT_TID.fetch_add(1, Ordering::SeqCst);
    let t = Box::into_raw(Box::new(Thread {
        tid: c_int::try_from(tid).unwrap_or(c_int::MAX),
        block,
        join: Mutex::new(None),
        state: AtomicU32::new(0),
        specific: [const { AtomicUsize::new(0) }; KEYS],
    }));
    // SAFETY: just made, live.
    unsafe { (*t).block.set_thread(t as usize) };
    Some(t)
}

/// Give the main thread its record and TLS block and set its thread
/// pointer (at start, before `.init_array` and `main`).
pub fn init_main() {
    let Some(t) = new_thread() else {
        guest_rt::process::abort("std program: no heap for the main thread's thread-locals");
    };
    MAIN.store(t as usize, Ordering::SeqCst);
    // SAFETY: `t` is live forever (the main record is never freed).
    crate::tls::set(unsafe { (*t).block.tp() });
}

/// The running thread's record.
fn me() -> *mut Thread {
    match crate::tls::current() {
        Some(tcb) => tcb.thread.load(Ordering::SeqCst) as *mut Thread,
        None => MAIN.load(Ordering::SeqCst) as *mut Thread,
    }
}

/// Run the key destructors of `t` (up to 4 rounds, as POSIX allows).
fn run_destructors(t: &Thread) {
    for _ in 0..4 {
        let mut ran = false;
        for (k, slot) in t.specific.iter().enumerate() {
            let d = DTORS[k].load(Ordering::SeqCst);
            let v = slot.swap(0, Ordering::SeqCst);
            if d != 0 && v != 0 {
                // SAFETY: `d` was registered by pthread_key_create as an
                // `extern "C" fn(*mut c_void)`.
                let f: extern "C" fn(*mut c_void) = unsafe { core::mem::transmute(d) };
                f(v as *mut c_void);
                ran = true;
            }
        }
        if !ran {
            break;
        }
    }
}

/// Free a finished thread's record and block.
///
/// # Safety
/// `t` came from `new_thread`, its thread has returned, and nothing uses
/// it any more.
unsafe fn free_thread(t: *mut Thread) {
    // SAFETY: the caller's contract.
    drop(unsafe { Box::from_raw(t) });
}

/// The body of a spawned thread, on whichever vCPU runs it.
fn run(t: usize, start: extern "C" fn(*mut c_void) -> *mut c_void, arg: usize) -> usize {
    let t = t as *mut Thread;
    let saved = crate::tls::get();
    // SAFETY: the record lives until joined or (detached) freed below.
    let th = unsafe { &*t };
    crate::tls::set(th.block.tp());
    crate::sched::started();
    let r = start(arg as *mut c_void) as usize;
    run_destructors(th);
    crate::sched::finished();
    crate::tls::set(saved);
    if th.state.fetch_or(DONE, Ordering::SeqCst) & DETACHED != 0 {
        // SAFETY: detached and done: nobody else holds it.
        unsafe { free_thread(t) };
    }
    r
}

/// Start `start(arg)` on another vCPU; `*out` names it. The attributes'
/// stack size is not used: a thread runs on its vCPU's stack (`--stack`).
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    out: *mut libc::pthread_t,
    _attr: *const libc::pthread_attr_t,
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> c_int {
    let Some(t) = new_thread() else {
        return libc::EAGAIN;
    };
    let (ta, argv) = (t as usize, arg as usize);
    crate::sched::created();
    let handle = guest_rt::thread::spawn(move || run(ta, start, argv));
    // SAFETY: `t` is live: its thread frees it only once detached.
    unsafe {
        *(*t).join.lock() = Some(handle);
        out.write(t as libc::pthread_t);
    }
    0
}

/// Wait for `thread` to return; its result into `*ret` when non-null.
#[no_mangle]
pub unsafe extern "C" fn pthread_join(thread: libc::pthread_t, ret: *mut *mut c_void) -> c_int {
    let t = thread.cast::<Thread>();
    if t.is_null() || t == MAIN.load(Ordering::SeqCst) as *mut Thread {
        return libc::EINVAL;
    }
    // SAFETY: C's contract: `thread` is a joinable thread of ours.
    let Some(h) = (unsafe { (*t).join.lock().take() }) else {
        return libc::EINVAL;
    };
    let r = h.join();
    if !ret.is_null() {
        // SAFETY: C's contract: `ret` is writable.
        unsafe { ret.write(r as *mut c_void) };
    }
    // SAFETY: joined: the thread has returned; the caller may not use it.
    unsafe { free_thread(t) };
    0
}

/// Let `thread` free itself when it returns.
#[no_mangle]
pub unsafe extern "C" fn pthread_detach(thread: libc::pthread_t) -> c_int {
    let t = thread.cast::<Thread>();
    if t.is_null() {
        return libc::EINVAL;
    }
    // SAFETY: C's contract: a live, joinable thread of ours.
    let th = unsafe { &*t };
    drop(th.join.lock().take());
    if th.state.fetch_or(DETACHED, Ordering::SeqCst) & DONE != 0 {
        // SAFETY: done and now detached: nobody else holds it.
        unsafe { free_thread(t) };
    }
    0
}

/// The running thread.
#[no_mangle]
pub extern "C" fn pthread_self() -> libc::pthread_t {
    me() as libc::pthread_t
}

/// The running thread's id (1: the main thread).
#[no_mangle]
pub extern "C" fn gettid() -> c_int {
    let t = me();
    if t.is_null() {
        return 1;
    }
    // SAFETY: the running thread's record is live while it runs.
    unsafe { (*t).tid }
}

/// Names are accepted and not kept.
#[no_mangle]
pub extern "C" fn pthread_setname_np(_t: libc::pthread_t, _name: *const i8) -> c_int {
    0
}

/// The words of a `pthread_attr_t` this library uses: stack size, stack
/// address, guard size.
fn attr_words(a: *mut libc::pthread_attr_t) -> *mut [usize; 3] {
    const _: () = assert!(size_of::<libc::pthread_attr_t>() >= size_of::<[usize; 3]>());
    a.cast()
}

use core::mem::size_of;

/// Default attributes (a 1 MiB stack, like a vCPU's by default).
#[no_mangle]
pub unsafe extern "C" fn pthread_attr_init(a: *mut libc::pthread_attr_t) -> c_int {
    // SAFETY: C's contract: `a` is writable (and 8-aligned, as the type).
    unsafe {
        a.write(core::mem::zeroed());
        attr_words(a).write([1 << 20, 0, 0]);
    }
    0
}

/// Nothing to free.
#[no_mangle]
pub extern "C" fn pthread_attr_destroy(_a: *mut libc::pthread_attr_t) -> c_int {
    0
}

/// Record a stack size (threads run on their vCPU's stack regardless).
#[no_mangle]
pub unsafe extern "C" fn pthread_attr_setstacksize(
    a: *mut libc::pthread_attr_t,
    size: usize,
) -> c_int {
    // SAFETY: C's contract: an initialised attribute object.
    unsafe { (*attr_words(a))[0] = size };
    0
}

/// The stack of an attribute object from [`pthread_getattr_np`].
#[no_mangle]
pub unsafe extern "C" fn pthread_attr_getstack(
    a: *const libc::pthread_attr_t,
    addr: *mut *mut c_void,
    size: *mut usize,
) -> c_int {
    // SAFETY: C's contract: an initialised attribute object, writable outs.
    unsafe {
        let w = attr_words(a.cast_mut()).read();
        addr.write(w[1] as *mut c_void);
        size.write(w[0]);
    }
    0
}

/// The guard size (0: a vCPU stack's guard page is the launcher's).
#[no_mangle]
pub unsafe extern "C" fn pthread_attr_getguardsize(
    a: *const libc::pthread_attr_t,
    size: *mut usize,
) -> c_int {
    // SAFETY: as above.
    unsafe { size.write(attr_words(a.cast_mut()).read()[2]) };
    0
}

/// The attributes of the calling thread: its vCPU's stack.
#[no_mangle]
pub unsafe extern "C" fn pthread_getattr_np(
    _t: libc::pthread_t,
    a: *mut libc::pthread_attr_t,
) -> c_int {
    let b = guest_rt::env::boot_info();
    let id = guest_rt::thread::current_vcpu() as usize;
    // SAFETY: the launcher wrote `vcpu_count` VcpuInfos at `vcpus`, and
    // guest-rt checked this vCPU's id is below that at boot.
    let v = unsafe { (b.vcpus as *const vessel_abi::VcpuInfo).add(id).read() };
    let lo = v.stack_top.saturating_sub(v.stack_size) as usize;
    // SAFETY: C's contract: `a` is writable.
    unsafe {
        a.write(core::mem::zeroed());
        attr_words(a).write([v.stack_size as usize, lo, 0]);
    }
    0
}

/// A new key with destructor `dtor` (null: none); EAGAIN when all
/// [`KEYS`] are taken.
#[no_mangle]
pub unsafe extern "C" fn pthread_key_create(
    key: *mut libc::pthread_key_t,
    dtor: Option<extern "C" fn(*mut c_void)>,
) -> c_int {
    for (k, used) in USED.iter().enumerate() {
        if used
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            DTORS[k].store(dtor.map_or(0, |f| f as usize), Ordering::SeqCst);
            // SAFETY: C's contract: `key` is writable.
            unsafe { key.write(k as c_uint) };
            return 0;
        }
    }
    libc::EAGAIN
}

/// Free a key (values other threads hold for it are forgotten).
#[no_mangle]
pub extern "C" fn pthread_key_delete(key: libc::pthread_key_t) -> c_int {
    match USED.get(key as usize) {
        Some(u) if u.swap(0, Ordering::SeqCst) == 1 => {
            DTORS[key as usize].store(0, Ordering::SeqCst);
            0
        }
        _ => libc::EINVAL,
    }
}

/// The running thread's slot for `key`.
fn slot(key: libc::pthread_key_t) -> Option<&'static AtomicUsize> {
    let t = me();
    if t.is_null() || USED.get(key as usize)?.load(Ordering::SeqCst) == 0 {
        return None;
    }
    // SAFETY: the running thread's record is live while it runs.
    unsafe { (*t).specific.get(key as usize) }
}

/// Set the running thread's value for `key`.
#[no_mangle]
pub extern "C" fn pthread_setspecific(key: libc::pthread_key_t, v: *const c_void) -> c_int {
    match slot(key) {
        Some(s) => {
            s.store(v as usize, Ordering::SeqCst);
            0
        }
        None => libc::EINVAL,
    }
}

/// The running thread's value for `key` (null if none).
#[no_mangle]
pub extern "C" fn pthread_getspecific(key: libc::pthread_key_t) -> *mut c_void {
    slot(key).map_or(0, |s| s.load(Ordering::SeqCst)) as *mut c_void
}

/// The vCPUs a spawned thread can run on: all but vCPU 0 (which runs
/// `main`), at least one.
fn worker_vcpus() -> usize {
    (guest_rt::env::vcpu_count() as usize)
        .saturating_sub(1)
        .max(1)
}

/// The vCPUs spawned threads run on (every one but vCPU 0, which runs
/// `main`; at least one), as a CPU set: what `available_parallelism`
/// counts, so a pool of that many workers (rayon's) has a vCPU each.
#[no_mangle]
pub unsafe extern "C" fn sched_getaffinity(
    _pid: c_int,
    size: usize,
    set: *mut libc::cpu_set_t,
) -> c_int {
    if size < size_of::<libc::cpu_set_t>() {
        return crate::errno::fail(libc::EINVAL);
    }
    // SAFETY: C's contract: `set` has `size` writable bytes; zero is the
    // empty set.
    unsafe {
        set.write(core::mem::zeroed());
        for cpu in 0..worker_vcpus() {
            libc::CPU_SET(cpu, &mut *set);
        }
    }
    0
}

/// Nothing else can run on this vCPU meanwhile (no preemption): a no-op.
#[no_mangle]
pub extern "C" fn sched_yield() -> c_int {
    core::hint::spin_loop();
    0
}
