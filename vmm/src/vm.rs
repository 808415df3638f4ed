//! Building a VM for a guest image: memory, memslots, devices, the image,
//! the boot area and the vCPUs, in the order KVM and boot time want.

use std::sync::Arc;
use std::time::Duration;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};

use crate::arch;
use crate::boot::{self, BootParams};
use crate::config::VmConfig;
use crate::elf::{ElfError, GuestImage};
use crate::error::{KvmContext, Result};
use crate::fs::{Fs, OutputBudget};
use crate::host::Host;
use crate::layout::Layout;
use crate::lazy::{LazyMemory, LazySpecError, PlannedRegion};
use crate::memory::GuestRam;
use crate::park::Parker;
use crate::ring::IoServer;
use crate::stats::{Recorder, SoftCounts, Stats};
use crate::stop::StopHandle;
use crate::sve::{SveRequest, VlSet};
use crate::vcpu::Vcpu;

/// A VM built for one guest image, ready to run.
pub struct Vm<'a> {
    // Field order is drop order: vCPUs (and their wake-up threads), then
    // the VM, then the RAM, page tables and lazy regions KVM maps.
    pub(crate) vcpus: Vec<Vcpu>,
    pub(crate) vm: Arc<VmFd>,
    /// Where vCPU threads block in a launcher-served Wait (aarch64).
    pub(crate) parker: Arc<Parker>,
    /// The I/O rings and file server (`--dir`), with its threads.
    pub(crate) io: IoServer,
    pub(crate) ram: GuestRam,
    /// The page tables' own memory (`arch::PAGE_TABLES`), unmapped in the guest.
    pub(crate) tables: GuestRam,
    pub(crate) lazy: LazyMemory,
    pub(crate) image: ImageRef<'a>,
    pub(crate) timeout: Option<Duration>,
    /// A call's deadline (sandboxes): a kick after it ends the run as a timeout.
    pub(crate) deadline: Option<std::time::Instant>,
    /// RAM's dirty log is in manual-protect mode (`snapshot::dirty`).
    pub(crate) manual_dirty: bool,
    /// Zero of the guest's monotonic clock for sandboxes, whose VM runs
    /// in many pieces.
    pub(crate) epoch: std::time::Instant,
    pub(crate) features: u64,
    pub(crate) vector_bits: u32,
    pub(crate) dump_regs: bool,
    /// `--gdb`: where the debugger connects.
    pub(crate) gdb: Option<crate::debug::GdbAddr>,
    /// `--core-dump`: the directory, the app's name and arguments.
    pub(crate) core_dump: Option<(std::path::PathBuf, Vec<String>)>,
    /// Where the launcher put the guest's stdout buffer (never read back
    /// from guest-writable memory).
    pub(crate) stdout_buffer: u64,
    pub(crate) stop: StopHandle,
    /// What the run did (`--stats`), merged from every vCPU.
    pub(crate) rec: std::sync::Mutex<Recorder>,
}

/// The image a VM runs: borrowed, or shared (a sandbox owns its VM).
pub(crate) enum ImageRef<'a> {
    Borrowed(&'a GuestImage),
    Shared(Arc<GuestImage>),
}

impl std::ops::Deref for ImageRef<'_> {
    type Target = GuestImage;
    fn deref(&self) -> &GuestImage {
        match self {
            ImageRef::Borrowed(i) => i,
            ImageRef::Shared(i) => i,
        }
    }
}

impl<'a> Vm<'a> {
    /// Create the VM on `host`, load the image and prepare every vCPU.
    pub fn new(host: &mut Host, image: &'a GuestImage, cfg: &VmConfig) -> Result<Vm<'a>> {
        let (kvm, cpu) = host.parts()?;
        Self::build(kvm, cpu, ImageRef::Borrowed(image), cfg, false, true)
    }

    /// A VM owning its image; `dirty_log` tracks guest RAM writes in KVM's
    /// dirty log (for restoring only what changed). Without `load`, the
    /// image's segments are not copied into RAM: for a VM whose RAM a
    /// snapshot replaces whole right after (it saves about 0.3 ms of the
    /// 1.3 ms a sandbox from a snapshot takes here).
    pub(crate) fn new_shared(
        host: &mut Host,
        image: Arc<GuestImage>,
        cfg: &VmConfig,
        dirty_log: bool,
        load: bool,
    ) -> Result<Vm<'static>> {
        let (kvm, cpu) = host.parts()?;
        Vm::build(kvm, cpu, ImageRef::Shared(image), cfg, dirty_log, load)
    }

    fn build(
        kvm: &Kvm,
        cpu: &arch::HostCpu,
        image: ImageRef<'a>,
        cfg: &VmConfig,
        dirty_log: bool,
        load: bool,
    ) -> Result<Vm<'a>> {
        crate::caps::check_required(kvm)?;
        crate::debug::check_core_dir(cfg.core_dump.as_deref())?;
        let dirs = crate::fs::spec::open_all(&cfg.dirs)?;
        let layout = Layout::plan(cfg, image.end())?;
        check_segments(&image, &layout)?;
        let mut ram = GuestRam::new(layout.ram_base, cfg.mem_size)?;
        if dirty_log {
            ram.track_host_writes();
        }
        let tables = GuestRam::new(arch::PAGE_TABLES, arch::PAGE_TABLE_SIZE)?;
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
        let manual_dirty = dirty_log && crate::snapshot::enable_manual_dirty_log(&vm);
        cfg.limits.check()?;
        let lazy = LazyMemory::new(&planned, cfg.lazy_latency, cfg.limits.fetch_threads)?;
        add_memslots(kvm, &vm, &[&ram, &tables], &lazy, dirty_log)?;
        // After every memslot: see arch::create_devices.
        arch::create_devices(&vm)?;
        if load {
            image.load(&ram)?;
        }
        let lazy_map: Vec<(u64, u64)> = planned.iter().map(|p| (p.gpa, p.mapped)).collect();
        arch::setup_memory(&ram, &tables, &layout, &image, &lazy_map)?;
        let vm = Arc::new(vm);
        let (vcpus, vl) = create_vcpus(kvm, &vm, cfg.vcpus, sve_request(cfg, &image))?;
        let vector_bits = vl.map(|g| g.0).unwrap_or(0);
        let features = features(kvm, cpu, cfg, &planned, vector_bits);
        let params = BootParams {
            args: &cfg.args,
            env: &cfg.env,
            features,
            vector_bits: u64::from(vector_bits),
            counter_khz: arch::counter_khz(&vcpus[0].fd),
            lazy: &lazy_info(&planned),
            console_flags: console_flags(cfg),
        };
        let addrs = boot::write(&ram, &layout, &params)?;
        for v in &vcpus {
            arch::setup_vcpu(
                kvm,
                cpu,
                &v.fd,
                v.id,
                &layout,
                &image,
                addrs.info,
                vector_bits,
            )?;
        }
        let budget = Arc::new(OutputBudget::new(cfg.max_output));
        let io = IoServer::new(
            ram.clone(),
            Fs::new(dirs, budget.clone()).with_max_handles(cfg.limits.open_files),
            budget,
            protected(&layout, addrs.stdout),
            vcpus.len(),
            cfg.io_latency,
        )
        .with_max_pending(cfg.limits.pending_io);
        Ok(Vm {
            io,
            image,
            ram,
            tables,
            lazy,
            parker: Arc::new(Parker::default()),
            vm,
            vcpus,
            timeout: cfg.timeout,
            deadline: None,
            manual_dirty,
            epoch: std::time::Instant::now(),
            features,
            vector_bits,
            dump_regs: cfg.dump_regs,
            gdb: cfg.gdb.clone(),
            core_dump: cfg.core_dump.clone().map(|d| (d, cfg.args.clone())),
            stdout_buffer: addrs.stdout,
            stop: StopHandle::default(),
            rec: std::sync::Mutex::new(Recorder::new(
                cfg.launched.unwrap_or_else(std::time::Instant::now),
            )),
        })
    }

    /// SVE vector length granted to the guest in bits (0: none).
    pub fn vector_bits(&self) -> u32 {
        self.vector_bits
    }

    /// Finish the exit vCPU 0 is in (KVM completes an MMIO access only at
    /// the next KVM_RUN) without running guest code: KVM_RUN with
    /// `immediate_exit` set. Its state is then whole for saving or setting.
    pub(crate) fn settle(&mut self) -> Result<()> {
        let fd = &mut self.vcpus[0].fd;
        fd.set_kvm_immediate_exit(1);
        let r = fd.run().map(|_| ());
        fd.set_kvm_immediate_exit(0);
        match r {
            Err(e) if e.errno() == libc::EINTR => Ok(()),
            other => other.kvm("KVM_RUN (immediate exit)"),
        }
    }

    /// vCPU 0 (sandboxes run one vCPU).
    pub(crate) fn vcpu0(&self) -> &VcpuFd {
        &self.vcpus[0].fd
    }

    /// What the run did so far (after [`Vm::run`]: all of it), for `--stats`.
    pub fn stats(&self) -> Stats {
        let soft = self
            .vcpus
            .iter()
            .filter_map(|v| v.soft.as_ref().map(|s| s.counts()))
            .fold(SoftCounts::default(), |a, b| SoftCounts {
                not_present: a.not_present + b.not_present,
                ready: a.ready + b.ready,
            });
        match self.rec.lock() {
            Ok(r) => r.finish(self.lazy.counts(), soft),
            Err(_) => Stats::default(),
        }
    }

    /// A handle that ends this VM's run from any thread (see [`StopHandle`]).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The VM's vCPUs, vCPU 0 first.
    pub fn vcpus(&self) -> &[Vcpu] {
        &self.vcpus
    }

    /// The VM's vCPUs, mutably (to save or restore their state between runs).
    pub fn vcpus_mut(&mut self) -> &mut [Vcpu] {
        &mut self.vcpus
    }
}

/// The SVE maximum granted (bits) and the set of lengths, as `arch::init_vcpu` returns.
type Granted = (u32, VlSet);

/// Create and initialise `count` vCPUs (SVE included): every vCPU must
/// finalize the same set of SVE lengths as vCPU 0, or the VM is refused.
/// Returns them with vCPU 0's granted maximum and set.
fn create_vcpus(
    kvm: &Kvm,
    vm: &Arc<VmFd>,
    count: u32,
    sve: Option<SveRequest>,
) -> Result<(Vec<Vcpu>, Option<Granted>)> {
    let mut vcpus = Vec::new();
    let mut first: Option<Granted> = None;
    for id in 0..count {
        let fd = vm
            .create_vcpu(u64::from(id))
            .kvm(format!("KVM_CREATE_VCPU({id})"))?;
        let granted = arch::init_vcpu(kvm, vm, &fd, sve)?;
        if id == 0 {
            first = granted;
        } else {
            crate::sve::check_same_set(
                id,
                first.as_ref().map(|g| &g.1),
                granted.as_ref().map(|g| &g.1),
            )?;
        }
        vcpus.push(Vcpu::new(fd, id, vm.clone()));
    }
    Ok((vcpus, first))
}

impl Drop for Vm<'_> {
    /// Release lazy memory's faults before the VM goes: destroying a VM
    /// waits for KVM's async-PF workers, which may be waiting for a page
    /// (and fillers may be sleeping an emulated latency).
    fn drop(&mut self) {
        self.lazy.release();
    }
}

/// Every loadable segment lies in the image window and below the heap's end.
fn check_segments(image: &GuestImage, layout: &Layout) -> Result<()> {
    let (lo, hi) = arch::image_window(layout.ram_end);
    for s in &image.segments {
        if s.vaddr < lo || s.vaddr + s.memsz > hi.min(layout.heap.1) {
            return Err(ElfError::DoesNotFit {
                vaddr: s.vaddr,
                memsz: s.memsz,
            }
            .into());
        }
    }
    Ok(())
}

/// An explicit request wins; else the app's header asks (arm64 only).
fn sve_request(cfg: &VmConfig, image: &GuestImage) -> Option<SveRequest> {
    match (cfg.sve, image.header.sve_bits) {
        (Some(SveRequest::Off), _) => None,
        (Some(r), _) => Some(r),
        (None, 0) => None,
        (None, _) if !arch::HAS_SVE => None,
        (None, bits) => Some(SveRequest::from_header(bits)),
    }
}

/// The memslot of guest RAM.
pub(crate) const RAM_SLOT: u32 = 0;

/// `fixed` (RAM, the page tables) as slots 0.., each lazy region as its own
/// slot after them; refused before any slot exists if KVM has too few.
/// With `dirty_log`, slot 0 (RAM) logs the guest's writes.
fn add_memslots(
    kvm: &Kvm,
    vm: &VmFd,
    fixed: &[&GuestRam],
    lazy: &LazyMemory,
    dirty_log: bool,
) -> Result<()> {
    let n = lazy.regions().len();
    let slots = kvm.get_nr_memslots();
    if fixed.len() + n > slots {
        return Err(LazySpecError::TooManyForHost {
            given: n,
            slots,
            room: slots.saturating_sub(fixed.len()),
        }
        .into());
    }
    for (i, ram) in fixed.iter().enumerate() {
        let log = dirty_log && i == RAM_SLOT as usize;
        let region = kvm_userspace_memory_region {
            slot: i as u32,
            flags: if log {
                kvm_bindings::KVM_MEM_LOG_DIRTY_PAGES
            } else {
                0
            },
            guest_phys_addr: ram.base(),
            memory_size: ram.size(),
            userspace_addr: ram.host_addr(),
        };
        // SAFETY: the region is exactly this GuestRam's mapping; Vm drops
        // the VM fd before its RAM and tables (field order), so KVM never
        // sees it unmapped.
        unsafe { vm.set_user_memory_region(region) }.kvm("KVM_SET_USER_MEMORY_REGION")?;
    }
    for (i, b) in lazy.regions().iter().enumerate() {
        let region = kvm_userspace_memory_region {
            slot: (fixed.len() + i) as u32,
            flags: 0,
            guest_phys_addr: b.gpa,
            memory_size: b.mapped,
            userspace_addr: b.host_addr(),
        };
        // SAFETY: the region is exactly the lazy mapping; Vm drops the VM
        // fd before `lazy` (field order), so KVM never sees it unmapped.
        unsafe { vm.set_user_memory_region(region) }.kvm(format!(
            "KVM_SET_USER_MEMORY_REGION (lazy region {})",
            b.name
        ))?;
    }
    Ok(())
}

fn features(
    kvm: &Kvm,
    cpu: &arch::HostCpu,
    cfg: &VmConfig,
    planned: &[PlannedRegion],
    vector_bits: u32,
) -> u64 {
    let mut features = 0;
    if vector_bits > 0 {
        features |= vessel_abi::features::SVE;
    }
    // Launcher-served async page faults (aarch64) serve one vCPU; with
    // more, lazy faults are served synchronously (the vCPU waits).
    let one_area = !arch::SOFT_APF || cfg.vcpus == 1;
    if cfg.async_pf && one_area && !planned.is_empty() && arch::async_pf_supported(kvm, cpu) {
        features |= vessel_abi::features::ASYNC_PF;
    }
    if arch::thread_pointer_supported(cpu) {
        features |= vessel_abi::features::THREAD_POINTER;
    }
    features
}

fn lazy_info(planned: &[PlannedRegion]) -> Vec<(String, u64, u64)> {
    planned
        .iter()
        .map(|p| (p.name.clone(), p.gpa, p.len))
        .collect()
}

/// Guest memory no I/O request may name: the boot area up to the stdout
/// buffer (BootInfo, the vCPU table, the frames). Console writes read the
/// stdout buffer; apps pass their arguments (the strings after it) as paths.
fn protected(layout: &Layout, stdout: u64) -> Vec<(u64, u64)> {
    let start = layout.boot_area.0;
    vec![(start, stdout.saturating_sub(start))]
}

fn console_flags(cfg: &VmConfig) -> u64 {
    if cfg.stdout_line_buffered {
        vessel_abi::console::STDOUT_LINE_BUFFERED
    } else {
        0
    }
}
