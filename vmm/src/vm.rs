//! Creating a VM for a guest image and running it to its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd};
use vessel_abi::exit;

use crate::arch;
use crate::boot::{self, BootParams};
use crate::elf::GuestImage;
use crate::error::{Error, KvmContext, Result};
use crate::hypercall::{self, HostIo, Served};
use crate::lazy::{LazyMemory, LazySpec};
use crate::memory::GuestRam;
use crate::softapf::SoftApf;
use crate::sve::SveRequest;

/// What the doorbell page's addresses mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doorbell {
    /// A hypercall: the stored value is the frame's guest address.
    Call,
    /// A fatal exception: the stored value is the fault frame's address.
    Fault,
}

impl Doorbell {
    /// What a store to `addr` means, if it is a doorbell.
    pub fn at(addr: u64) -> Option<Doorbell> {
        match addr {
            a if a == arch::DOORBELL => Some(Doorbell::Call),
            a if a == arch::DOORBELL_FAULT => Some(Doorbell::Fault),
            _ => None,
        }
    }
}

/// How to build and run a VM.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// End the guest after this long.
    pub timeout: Option<Duration>,
    /// Arguments; the first is the program name.
    pub args: Vec<String>,
    /// `KEY=VALUE` environment entries.
    pub env: Vec<String>,
    /// Size of each vCPU's stack.
    pub stack_size: u64,
    /// Lazy regions (`--lazy NAME=FILE[:SIZE]`).
    pub lazy: Vec<LazySpec>,
    /// Emulated storage latency per fetched page (`--lazy-latency MS`).
    pub lazy_latency: Duration,
    /// Offer async page faults when the host has them (`--no-async-pf` clears it).
    pub async_pf: bool,
    /// SVE for the guest (arm64): overrides the app's GuestHeader request.
    pub sve: Option<SveRequest>,
    /// Print each vCPU's vector registers (arm64: Z/P/FFR) when the guest ends.
    pub dump_regs: bool,
}

/// Fetch threads per VM with lazy regions: how many page fetches overlap.
const FETCH_WORKERS: usize = 64;

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            mem_size: 128 << 20,
            vcpus: 1,
            timeout: None,
            args: vec![],
            env: vec![],
            stack_size: 1 << 20,
            lazy: vec![],
            lazy_latency: Duration::ZERO,
            async_pf: true,
            sve: None,
            dump_regs: false,
        }
    }
}

/// How a guest ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The app exited with this code.
    Exited(i32),
    /// The app aborted with this message.
    Aborted(String),
    /// The guest crashed; the text says how, where and in which function.
    Fault(String),
    /// `--timeout` ran out.
    Timeout(Duration),
}

impl Outcome {
    /// The launcher's process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(c) if exit::is_reserved(*c & 0xff) => exit::APP_CODE_RESERVED,
            Outcome::Exited(c) => *c & 0xff,
            Outcome::Aborted(_) => exit::ABORT,
            Outcome::Fault(_) => exit::GUEST_FAULT,
            Outcome::Timeout(_) => exit::TIMEOUT,
        }
    }

    /// A line for stderr, if this outcome deserves one.
    pub fn message(&self) -> Option<String> {
        match self {
            Outcome::Exited(c) if exit::is_reserved(*c & 0xff) => Some(format!(
                "app exit code {} collides with a code Vessel reserves; exiting {}",
                c & 0xff,
                exit::APP_CODE_RESERVED
            )),
            Outcome::Exited(_) => None,
            Outcome::Aborted(m) => Some(format!("guest aborted: {m}")),
            Outcome::Fault(m) => Some(m.clone()),
            Outcome::Timeout(d) => Some(format!("guest timed out after {:.3} s", d.as_secs_f64())),
        }
    }
}

/// Where things are in guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub ram_base: u64,
    pub ram_end: u64,
    pub vcpus: u32,
    /// `[start, end)` of the boot area (BootInfo, frames, strings).
    pub boot_area: (u64, u64),
    /// `[start, end)` of the heap.
    pub heap: (u64, u64),
    /// `(bottom, top)` of each vCPU's stack; a guard page lies below bottom.
    pub stacks: Vec<(u64, u64)>,
}

const PAGE: u64 = 0x1000;
const MIN_HEAP: u64 = 64 << 10;

impl Layout {
    /// Plan memory for `cfg` and an image ending at `image_end`.
    pub fn plan(cfg: &VmConfig, image_end: u64) -> Result<Layout> {
        let mib = |b: u64| b >> 20;
        if cfg.mem_size < arch::MIN_RAM || cfg.mem_size > arch::MAX_RAM {
            return Err(Error::Config(format!(
                "--mem {} MiB is outside {}..={} MiB",
                mib(cfg.mem_size),
                mib(arch::MIN_RAM),
                mib(arch::MAX_RAM)
            )));
        }
        if !cfg.mem_size.is_multiple_of(PAGE) {
            return Err(Error::Config(format!(
                "--mem {} is not a multiple of 4 KiB",
                cfg.mem_size
            )));
        }
        if cfg.vcpus == 0 || cfg.vcpus > arch::MAX_VCPUS {
            return Err(Error::Config(format!(
                "--cpus {} is outside 1..={}",
                cfg.vcpus,
                arch::MAX_VCPUS
            )));
        }
        if cfg.stack_size < 16 * PAGE || !cfg.stack_size.is_multiple_of(PAGE) {
            return Err(Error::Config(format!(
                "stack size {} must be a multiple of 4 KiB, at least 64 KiB",
                cfg.stack_size
            )));
        }
        let ram_base = arch::RAM_BASE;
        let ram_end = ram_base + cfg.mem_size;
        let mut stacks = Vec::new();
        let mut top = ram_end;
        for _ in 0..cfg.vcpus {
            let bottom = top
                .checked_sub(cfg.stack_size)
                .ok_or_else(|| Error::Config("stacks exceed RAM".into()))?;
            stacks.push((bottom, top));
            top = bottom.saturating_sub(PAGE); // guard page
        }
        let heap_start = image_end.next_multiple_of(PAGE);
        let heap_end = top;
        if heap_end < heap_start + MIN_HEAP {
            return Err(Error::Config(format!(
                "--mem {} MiB leaves no room for a heap after the image ({} KiB) and {} stack(s) of {} KiB",
                mib(cfg.mem_size),
                (image_end - ram_base) >> 10,
                cfg.vcpus,
                cfg.stack_size >> 10
            )));
        }
        Ok(Layout {
            ram_base,
            ram_end,
            vcpus: cfg.vcpus,
            boot_area: arch::boot_area(),
            heap: (heap_start, heap_end),
            stacks,
        })
    }
}

/// Open /dev/kvm with a message that names the fix when it fails.
///
/// The device is `/dev/kvm`, or the path in the `VESSEL_KVM` environment
/// variable (for hosts that put it elsewhere, and for tests).
pub fn open_kvm() -> Result<Kvm> {
    let path = std::env::var_os("VESSEL_KVM").unwrap_or_else(|| "/dev/kvm".into());
    let shown = path.to_string_lossy().into_owned();
    let cpath = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
        .map_err(|_| Error::Config(format!("VESSEL_KVM `{shown}` contains a NUL byte")))?;
    let kvm = Kvm::new_with_path(&cpath).map_err(|e| Error::KvmOpen {
        path: shown,
        source: std::io::Error::from_raw_os_error(e.errno()),
    })?;
    let v = kvm.get_api_version();
    if v != 12 {
        return Err(Error::KvmApiVersion(v));
    }
    Ok(kvm)
}

/// Kicks the vCPU out of KVM_RUN once the timeout passes.
struct Watchdog {
    fired: Arc<AtomicBool>,
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

impl Watchdog {
    fn start(timeout: Option<Duration>) -> Result<Watchdog> {
        let fired = Arc::new(AtomicBool::new(false));
        let Some(limit) = timeout else {
            return Ok(Watchdog {
                fired,
                done: None,
                thread: None,
            });
        };
        vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
            .map_err(|e| Error::Other(format!("cannot install the timeout signal handler: {e}")))?;
        // SAFETY: pthread_self has no preconditions.
        // Carried as an integer: pthread_t is a pointer on musl (not Send).
        let target = unsafe { libc::pthread_self() } as usize;
        let (tx, rx) = mpsc::channel::<()>();
        let f = fired.clone();
        let thread = std::thread::Builder::new()
            .name("vessel-watchdog".into())
            .spawn(move || {
                if rx.recv_timeout(limit) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return;
                }
                f.store(true, Ordering::SeqCst);
                // Re-send until the vCPU loop notices: a signal that lands
                // outside KVM_RUN is harmless but does not stop the guest.
                loop {
                    // SAFETY: `target` is the vCPU thread, alive until it
                    // drops the Watchdog, which ends this loop first.
                    unsafe { libc::pthread_kill(target as libc::pthread_t, kick_signal()) };
                    if rx.recv_timeout(Duration::from_millis(5))
                        != Err(mpsc::RecvTimeoutError::Timeout)
                    {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the watchdog thread: {e}")))?;
        Ok(Watchdog {
            fired,
            done: Some(tx),
            thread: Some(thread),
        })
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends the wake-up MSI when a timed Wait runs out. Its thread starts at
/// the first timed wait, so guests that never sleep don't pay for it.
struct WakeTimer {
    vm: Arc<kvm_ioctls::VmFd>,
    tx: Option<mpsc::Sender<Instant>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WakeTimer {
    fn new(vm: Arc<kvm_ioctls::VmFd>) -> WakeTimer {
        WakeTimer {
            vm,
            tx: None,
            thread: None,
        }
    }

    fn start(&mut self) -> Result<()> {
        let (tx, rx) = mpsc::channel::<Instant>();
        let vm = self.vm.clone();
        let thread = std::thread::Builder::new()
            .name("vessel-wake".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let mut deadline: Option<Instant> = None;
                loop {
                    let got = match deadline {
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                        Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                    };
                    match got {
                        Ok(d) => deadline = Some(deadline.map_or(d, |old| old.min(d))),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            deadline = None;
                            // A late MSI only makes the guest re-check its timers.
                            let _ = arch::wake(&vm);
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the wake-up thread: {e}")))?;
        self.tx = Some(tx);
        self.thread = Some(thread);
        Ok(())
    }

    fn arm(&mut self, after: Duration) -> Result<()> {
        if self.tx.is_none() {
            self.start()?;
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(Instant::now() + after);
        }
        Ok(())
    }
}

impl Drop for WakeTimer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A VM built for one guest image, ready to run.
pub struct Vm<'a> {
    // Field order is drop order: vCPU, wake-up thread, then VM, then the
    // RAM and lazy regions KVM maps.
    vcpu: VcpuFd,
    waker: WakeTimer,
    /// Launcher-served async page faults (aarch64), once the guest registers.
    soft: Option<SoftApf>,
    _vm: Arc<kvm_ioctls::VmFd>,
    ram: GuestRam,
    lazy: LazyMemory,
    image: &'a GuestImage,
    timeout: Option<Duration>,
    features: u64,
    vector_bits: u32,
    dump_regs: bool,
    /// Guest addresses of the BootInfo and the stdout buffer, as written
    /// (never read back: the guest can overwrite its BootInfo).
    boot: boot::BootAddrs,
}

impl<'a> Vm<'a> {
    /// Create the VM on `host`, load the image and prepare every vCPU.
    pub fn new(host: &mut Host, image: &'a GuestImage, cfg: &VmConfig) -> Result<Vm<'a>> {
        host.cpu()?;
        let Host { kvm, cpu } = host;
        let cpu = cpu.as_ref().expect("filled by host.cpu()");
        Self::build(kvm, cpu, image, cfg)
    }

    fn build(
        kvm: &Kvm,
        cpu: &arch::HostCpu,
        image: &'a GuestImage,
        cfg: &VmConfig,
    ) -> Result<Vm<'a>> {
        crate::caps::check_required(kvm)?;
        if cfg.vcpus != 1 {
            return Err(Error::Config(format!(
                "--cpus {}: this version runs guests on exactly 1 vCPU",
                cfg.vcpus
            )));
        }
        let layout = Layout::plan(cfg, image.end())?;
        let (lo, hi) = arch::image_window(layout.ram_end);
        for s in &image.segments {
            if s.vaddr < lo || s.vaddr + s.memsz > hi.min(layout.heap.1) {
                return Err(Error::Elf(format!(
                    "segment {:#x}+{:#x} does not fit in guest memory",
                    s.vaddr, s.memsz
                )));
            }
        }
        let ram = GuestRam::new(layout.ram_base, cfg.mem_size)?;
        // An explicit request wins; else the app's header asks (arm64 only).
        let sve = match (cfg.sve, image.header.sve_bits) {
            (Some(SveRequest::Off), _) => None,
            (Some(r), _) => Some(r),
            (None, 0) => None,
            (None, _) if !arch::HAS_SVE => None,
            (None, bits) => Some(SveRequest::from_header(bits)),
        };
        let planned = crate::lazy::plan(
            &cfg.lazy,
            arch::LAZY_BASE,
            arch::LAZY_ALIGN,
            arch::LAZY_LIMIT,
        )?;
        // The highest guest-physical address in use (arm64 sizes its IPA by it).
        let top = planned
            .iter()
            .map(|p| p.gpa + p.mapped)
            .fold(layout.ram_end, u64::max);
        let vm = arch::create_vm(kvm, top)?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: ram.base(),
            memory_size: ram.size(),
            userspace_addr: ram.host_addr(),
        };
        // SAFETY: the region is exactly ram's mapping; Vm drops the VM fd
        // before the RAM (field order), so KVM never sees it unmapped.
        unsafe { vm.set_user_memory_region(region) }.kvm("KVM_SET_USER_MEMORY_REGION")?;
        let lazy = LazyMemory::new(&planned, cfg.lazy_latency, FETCH_WORKERS)?;
        for (i, b) in lazy.regions().iter().enumerate() {
            let region = kvm_userspace_memory_region {
                slot: 1 + i as u32,
                flags: 0,
                guest_phys_addr: b.gpa,
                memory_size: b.mapped,
                userspace_addr: b.host,
            };
            // SAFETY: the region is exactly the lazy mapping; Vm drops the VM
            // fd before `lazy` (field order), so KVM never sees it unmapped.
            unsafe { vm.set_user_memory_region(region) }.kvm(format!(
                "KVM_SET_USER_MEMORY_REGION (lazy region {})",
                b.name
            ))?;
        }
        // After every memslot: see arch::create_devices.
        arch::create_devices(&vm)?;
        image.load(&ram)?;
        let lazy_map: Vec<(u64, u64)> = planned.iter().map(|p| (p.gpa, p.mapped)).collect();
        arch::setup_memory(&ram, &layout, image, &lazy_map)?;
        let vcpu = vm.create_vcpu(0).kvm("KVM_CREATE_VCPU")?;
        // Every vCPU must get the same SVE set (one vCPU for now; the check
        // is here for when there are more).
        let mut first_set = None;
        let granted = arch::init_vcpu(kvm, &vm, &vcpu, sve)?;
        if let Some((_, set)) = granted {
            if *first_set.get_or_insert(set) != set {
                return Err(Error::Other("vCPUs got different SVE length sets".into()));
            }
        }
        let vector_bits = granted.map(|g| g.0).unwrap_or(0);
        let mut features = if vector_bits > 0 {
            vessel_abi::features::SVE
        } else {
            0
        };
        if cfg.async_pf && !planned.is_empty() && arch::async_pf_supported(kvm, cpu) {
            features |= vessel_abi::features::ASYNC_PF;
        }
        let lazy_info: Vec<(String, u64, u64)> = planned
            .iter()
            .map(|p| (p.name.clone(), p.gpa, p.len))
            .collect();
        let params = BootParams {
            args: &cfg.args,
            env: &cfg.env,
            features,
            vector_bits: vector_bits as u64,
            counter_khz: arch::counter_khz(&vcpu),
            lazy: &lazy_info,
        };
        let addrs = boot::write(&ram, &layout, &params)?;
        arch::setup_vcpu(kvm, cpu, &vcpu, 0, &layout, image, addrs.info, vector_bits)?;
        let vm = Arc::new(vm);
        Ok(Vm {
            image,
            ram,
            lazy,
            waker: WakeTimer::new(vm.clone()),
            soft: None,
            _vm: vm,
            vcpu,
            timeout: cfg.timeout,
            features,
            vector_bits,
            dump_regs: cfg.dump_regs,
            boot: addrs,
        })
    }

    /// SVE vector length granted to the guest in bits (0: none).
    pub fn vector_bits(&self) -> u32 {
        self.vector_bits
    }

    /// Run the guest until it exits, crashes or times out.
    pub fn run(&mut self, io: &mut dyn HostIo) -> Result<Outcome> {
        // Known only now that the console is: a terminal gets stdout per line.
        let flags = if io.stdout_is_terminal() {
            vessel_abi::console::STDOUT_LINE_BUFFERED
        } else {
            0
        };
        let at = self.boot.info + std::mem::offset_of!(vessel_abi::BootInfo, console_flags) as u64;
        self.ram.write(at, &flags.to_le_bytes())?;
        let outcome = self.run_inner(io);
        if let Ok(Outcome::Fault(_) | Outcome::Timeout(_)) = &outcome {
            self.recover_stdout(io);
        }
        if self.dump_regs {
            eprint!("{}", arch::dump_regs(&self.vcpu, 0, self.vector_bits));
        }
        outcome
    }

    /// Print what the guest had buffered for stdout but could not flush
    /// (it crashed or ran out of time), from the buffer the launcher
    /// reserved for it. Best effort: a corrupt buffer loses that output.
    fn recover_stdout(&self, io: &mut dyn HostIo) {
        if let Ok(b) = self
            .ram
            .read_pod::<vessel_abi::ConsoleBuffer>(self.boot.stdout)
        {
            if b.len > 0 && b.len as usize <= vessel_abi::console::BUFFER {
                let _ = io.write(1, &b.data[..b.len as usize]);
            }
        }
    }

    fn run_inner(&mut self, io: &mut dyn HostIo) -> Result<Outcome> {
        let start = Instant::now();
        let watchdog = Watchdog::start(self.timeout)?;
        let mut ctx = hypercall::Ctx {
            ram: &self.ram,
            io,
            start,
            features: self.features,
        };
        loop {
            if let Some(e) = self.lazy.failed() {
                return Ok(Outcome::Fault(e));
            }
            let exit = match self.vcpu.run() {
                Ok(exit) => exit,
                // A lazy page in SIGBUS mode: a launcher-served async PF.
                Err(e) if e.errno() == libc::EFAULT && self.soft.is_some() => {
                    if let Err(msg) = self.soft_fault() {
                        return Ok(self.fault(msg));
                    }
                    continue;
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    if watchdog.fired() {
                        return Ok(Outcome::Timeout(start.elapsed()));
                    }
                    continue;
                }
                Err(e) => {
                    return Err(Error::Kvm {
                        what: "KVM_RUN".into(),
                        source: e,
                    })
                }
            };
            let outcome = match exit {
                VcpuExit::MmioWrite(addr, data) => match Doorbell::at(addr) {
                    Some(kind) => {
                        let Ok(bytes) = <[u8; 8]>::try_from(data) else {
                            let n = data.len();
                            return Ok(self.fault(format!(
                                "doorbell store of {n} bytes (want 8) at {addr:#x}"
                            )));
                        };
                        let value = u64::from_le_bytes(bytes);
                        match kind {
                            Doorbell::Call => match hypercall::serve(&mut ctx, value) {
                                Served::Resume => None,
                                Served::Wait(timeout_ns, watch, expect) => {
                                    if timeout_ns == 0 {
                                        None
                                    } else if let Some(soft) = &self.soft {
                                        let timeout = (timeout_ns != u64::MAX)
                                            .then(|| Duration::from_nanos(timeout_ns));
                                        let lazy = &self.lazy;
                                        let wd = &watchdog;
                                        soft.wait(watch, expect, timeout, &|| {
                                            wd.fired() || lazy.failed().is_some()
                                        });
                                        None
                                    } else {
                                        if timeout_ns != u64::MAX {
                                            self.waker.arm(Duration::from_nanos(timeout_ns))?;
                                        }
                                        arch::halt(&self.vcpu)?;
                                        None
                                    }
                                }
                                Served::EnableApf {
                                    area,
                                    vector,
                                    frame,
                                } => {
                                    let enabled = arch::apf_enable(&self.vcpu, area, vector)
                                        .and_then(|()| {
                                            enable_soft_apf(
                                                &mut self.soft,
                                                &self.ram,
                                                &self.lazy,
                                                area,
                                            )
                                        });
                                    if let Err(e) = enabled {
                                        eprintln!("vessel: enabling async page faults: {e}");
                                        let status = vessel_abi::Errno::Io as i32;
                                        // status is the u32 after nr in the frame.
                                        if self.ram.write(frame + 4, &status.to_le_bytes()).is_err()
                                        {
                                            return Ok(self.fault(format!(
                                                "hypercall frame {frame:#x} unwritable"
                                            )));
                                        }
                                    }
                                    None
                                }
                                Served::Done(o) => Some(o),
                            },
                            Doorbell::Fault => Some(Outcome::Fault(arch::fault_report(
                                &self.ram, &self.vcpu, self.image, value,
                            ))),
                        }
                    }
                    None => Some(self.fault(format!("store to unmapped guest address {addr:#x}"))),
                },
                VcpuExit::MmioRead(addr, _) => {
                    Some(self.fault(format!("load from unmapped guest address {addr:#x}")))
                }
                VcpuExit::Shutdown => Some(self.fault("triple fault (KVM_EXIT_SHUTDOWN)".into())),
                VcpuExit::InternalError => {
                    Some(self.fault("KVM internal error emulating the guest".into()))
                }
                VcpuExit::FailEntry(reason, _) => Some(self.fault(format!(
                    "KVM could not enter the guest (reason {reason:#x})"
                ))),
                VcpuExit::Hlt => Some(self.fault("vCPU halted with nothing to wake it".into())),
                VcpuExit::IoIn(port, _) | VcpuExit::IoOut(port, _) => Some(self.fault(format!(
                    "port I/O to {port:#x} (Vessel guests use hypercalls)"
                ))),
                VcpuExit::Intr => None,
                other => {
                    let what = format!("unexpected vCPU exit {other:?}");
                    Some(self.fault(what))
                }
            };
            if let Some(o) = outcome {
                return Ok(o);
            }
            if watchdog.fired() {
                return Ok(Outcome::Timeout(start.elapsed()));
            }
        }
    }

    /// KVM_RUN failed with EFAULT while lazy regions are in SIGBUS mode:
    /// deliver "page not present" for the faulting address. Err: a one-line
    /// reason the guest cannot go on.
    fn soft_fault(&self) -> std::result::Result<(), String> {
        let Some(soft) = &self.soft else {
            return Err("KVM_RUN: EFAULT".into());
        };
        let addr = arch::inject_lazy_fault(&self.vcpu)
            .map_err(|e| format!("KVM_RUN: EFAULT, and delivering it failed: {e}"))?;
        if !soft.is_lazy(addr) {
            return Err(format!(
                "KVM_RUN: EFAULT at guest address {addr:#x}, outside every lazy region"
            ));
        }
        soft.fault(addr)
            .map(|_| ())
            .map_err(|e| format!("async page fault at {addr:#x}: {e}"))
    }

    fn fault(&self, what: String) -> Outcome {
        Outcome::Fault(format!(
            "{what}: {}",
            arch::crash_report(&self.vcpu, self.image)
        ))
    }
}

/// aarch64 and the like: serve async page faults in the launcher once
/// the guest registered `area` (the lazy regions switch to SIGBUS mode).
fn enable_soft_apf(
    soft: &mut Option<SoftApf>,
    ram: &GuestRam,
    lazy: &LazyMemory,
    area: u64,
) -> Result<()> {
    if !arch::SOFT_APF {
        return Ok(());
    }
    let bytes = vessel_abi::apf::READY_AREA_BYTES;
    if !ram.contains(area, bytes) {
        return Err(Error::Other(format!(
            "async-PF area {area:#x}+{bytes:#x} (with its ready ring) is outside guest RAM"
        )));
    }
    match soft {
        Some(s) => s.set_area(area),
        None => {
            let filler = lazy.switch_to_sigbus()?;
            *soft = Some(SoftApf::new(ram.clone(), filler, area, FETCH_WORKERS)?);
        }
    }
    Ok(())
}

/// Build a VM for `image` on `host` and run it to its end.
pub fn run(
    host: &mut Host,
    image: &GuestImage,
    cfg: &VmConfig,
    io: &mut dyn HostIo,
) -> Result<Outcome> {
    Vm::new(host, image, cfg)?.run(io)
}

/// The host's KVM, opened once for any number of VMs.
///
/// The CPU model (`arch::host_cpu`) is asked for once, at the first VM, and
/// kept: where the host is itself virtualized every host CPUID traps and the
/// query takes about half a millisecond. (Running it on a second thread to
/// overlap with loading the image measured slower on this 2-core host.)
pub struct Host {
    kvm: Kvm,
    cpu: Option<arch::HostCpu>,
}

impl Host {
    /// Open /dev/kvm, with a one-line error naming the fix when it fails.
    pub fn open() -> Result<Host> {
        Ok(Host {
            kvm: open_kvm()?,
            cpu: None,
        })
    }

    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    fn cpu(&mut self) -> Result<&arch::HostCpu> {
        if self.cpu.is_none() {
            self.cpu = Some(arch::host_cpu(&self.kvm)?);
        }
        Ok(self.cpu.as_ref().expect("set above"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_puts_heap_between_image_and_stacks() {
        let cfg = VmConfig {
            mem_size: 64 << 20,
            ..Default::default()
        };
        let l = Layout::plan(&cfg, 0x21_0123).unwrap();
        assert_eq!(l.heap.0, 0x21_1000);
        assert_eq!(l.stacks, vec![((64 << 20) - (1 << 20), 64 << 20)]);
        assert_eq!(
            l.heap.1,
            (63 << 20) - 0x1000,
            "a guard page separates heap and stack"
        );
    }

    #[test]
    fn bad_sizes_are_config_errors() {
        for cfg in [
            VmConfig {
                mem_size: 1 << 20,
                ..Default::default()
            },
            VmConfig {
                mem_size: arch::MAX_RAM + 4096,
                ..Default::default()
            },
            VmConfig {
                mem_size: (64 << 20) + 1,
                ..Default::default()
            },
            VmConfig {
                vcpus: 0,
                ..Default::default()
            },
            VmConfig {
                vcpus: 1000,
                ..Default::default()
            },
            VmConfig {
                stack_size: 100,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(Layout::plan(&cfg, 0x21_0000), Err(Error::Config(_))),
                "{cfg:?}"
            );
        }
        let big_image = VmConfig {
            mem_size: 8 << 20,
            ..Default::default()
        };
        assert!(Layout::plan(&big_image, 0x70_0000).is_err());
    }

    #[test]
    fn reserved_app_codes_are_remapped() {
        assert_eq!(Outcome::Exited(3).exit_code(), 3);
        assert_eq!(Outcome::Exited(256 + 4).exit_code(), 4);
        assert_eq!(
            Outcome::Exited(exit::GUEST_FAULT).exit_code(),
            exit::APP_CODE_RESERVED
        );
        assert!(Outcome::Exited(exit::GUEST_FAULT).message().is_some());
        assert_eq!(Outcome::Fault("x".into()).exit_code(), exit::GUEST_FAULT);
        assert_eq!(Outcome::Timeout(Duration::ZERO).exit_code(), exit::TIMEOUT);
        assert_eq!(Outcome::Aborted("m".into()).exit_code(), exit::ABORT);
    }
}
