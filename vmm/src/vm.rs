//! Building a VM for a guest image: memory, memslots, devices, the image,
//! the boot area and the vCPU, in the order KVM and boot time want.

use std::sync::Arc;
use std::time::Duration;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};

use crate::arch;
use crate::boot::{self, BootParams};
use crate::config::{ConfigError, VmConfig};
use crate::elf::{ElfError, GuestImage};
use crate::error::{KvmContext, Result};
use crate::host::Host;
use crate::layout::Layout;
use crate::lazy::{LazyMemory, LazySpecError, PlannedRegion};
use crate::memory::GuestRam;
use crate::softapf::SoftApf;
use crate::stats::{Recorder, Stats};
use crate::stop::StopHandle;
use crate::sve::SveRequest;
use crate::wake::WakeTimer;

/// A VM built for one guest image, ready to run.
pub struct Vm<'a> {
    // Field order is drop order: vCPU, wake-up thread, then VM, then the
    // RAM, page tables and lazy regions KVM maps.
    pub(crate) vcpu: VcpuFd,
    pub(crate) waker: WakeTimer,
    /// Launcher-served async page faults (aarch64), once the guest registers.
    pub(crate) soft: Option<SoftApf>,
    _vm: Arc<VmFd>,
    pub(crate) ram: GuestRam,
    /// The page tables' own memory (`arch::PAGE_TABLES`), unmapped in the guest.
    _tables: GuestRam,
    pub(crate) lazy: LazyMemory,
    pub(crate) image: &'a GuestImage,
    pub(crate) timeout: Option<Duration>,
    pub(crate) features: u64,
    pub(crate) vector_bits: u32,
    pub(crate) dump_regs: bool,
    /// Where the launcher put the guest's stdout buffer (never read back
    /// from guest-writable memory).
    pub(crate) stdout_buffer: u64,
    pub(crate) stop: StopHandle,
    /// What the run did (`--stats`).
    pub(crate) rec: Recorder,
}

impl<'a> Vm<'a> {
    /// Create the VM on `host`, load the image and prepare every vCPU.
    pub fn new(host: &mut Host, image: &'a GuestImage, cfg: &VmConfig) -> Result<Vm<'a>> {
        let (kvm, cpu) = host.parts()?;
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
            return Err(ConfigError::OneVcpuOnly(cfg.vcpus).into());
        }
        let layout = Layout::plan(cfg, image.end())?;
        check_segments(image, &layout)?;
        let ram = GuestRam::new(layout.ram_base, cfg.mem_size)?;
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
        let lazy = LazyMemory::new(&planned, cfg.lazy_latency)?;
        add_memslots(kvm, &vm, &[&ram, &tables], &lazy)?;
        // After every memslot: see arch::create_devices.
        arch::create_devices(&vm)?;
        image.load(&ram)?;
        let lazy_map: Vec<(u64, u64)> = planned.iter().map(|p| (p.gpa, p.mapped)).collect();
        arch::setup_memory(&ram, &tables, &layout, image, &lazy_map)?;
        let vcpu = vm.create_vcpu(0).kvm("KVM_CREATE_VCPU")?;
        let granted = arch::init_vcpu(kvm, &vm, &vcpu, sve_request(cfg, image))?;
        let vector_bits = granted.map(|g| g.0).unwrap_or(0);
        let features = features(kvm, cpu, cfg, &planned, vector_bits);
        let params = BootParams {
            args: &cfg.args,
            env: &cfg.env,
            features,
            vector_bits: u64::from(vector_bits),
            counter_khz: arch::counter_khz(&vcpu),
            lazy: &lazy_info(&planned),
            console_flags: console_flags(cfg),
        };
        let addrs = boot::write(&ram, &layout, &params)?;
        arch::setup_vcpu(kvm, cpu, &vcpu, 0, &layout, image, addrs.info, vector_bits)?;
        let vm = Arc::new(vm);
        Ok(Vm {
            image,
            ram,
            _tables: tables,
            lazy,
            waker: WakeTimer::new(vm.clone()),
            soft: None,
            _vm: vm,
            vcpu,
            timeout: cfg.timeout,
            features,
            vector_bits,
            dump_regs: cfg.dump_regs,
            stdout_buffer: addrs.stdout,
            stop: StopHandle::default(),
            rec: Recorder::new(cfg.launched.unwrap_or_else(std::time::Instant::now)),
        })
    }

    /// What the run did so far (after [`Vm::run`]: all of it).
    pub fn stats(&self) -> Stats {
        let soft = self.soft.as_ref().map(SoftApf::counts).unwrap_or_default();
        self.rec.finish(self.lazy.counts(), soft)
    }

    /// SVE vector length granted to the guest in bits (0: none).
    pub fn vector_bits(&self) -> u32 {
        self.vector_bits
    }

    /// A handle that ends this VM's run from any thread (see [`StopHandle`]).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }
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

/// `fixed` (RAM, the page tables) as slots 0.., each lazy region as its own
/// slot after them; refused before any slot exists if KVM has too few.
fn add_memslots(kvm: &Kvm, vm: &VmFd, fixed: &[&GuestRam], lazy: &LazyMemory) -> Result<()> {
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
        let region = kvm_userspace_memory_region {
            slot: i as u32,
            flags: 0,
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
    if cfg.async_pf && !planned.is_empty() && arch::async_pf_supported(kvm, cpu) {
        features |= vessel_abi::features::ASYNC_PF;
    }
    features
}

fn lazy_info(planned: &[PlannedRegion]) -> Vec<(String, u64, u64)> {
    planned
        .iter()
        .map(|p| (p.name.clone(), p.gpa, p.len))
        .collect()
}

fn console_flags(cfg: &VmConfig) -> u64 {
    if cfg.stdout_line_buffered {
        vessel_abi::console::STDOUT_LINE_BUFFERED
    } else {
        0
    }
}
