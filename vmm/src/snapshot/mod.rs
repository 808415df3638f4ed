//! Snapshots of a sandboxed VM between calls, and restoring them.
//!
//! A [`Snapshot`] holds guest RAM ([`memory::MemoryImage`]: the pages that
//! had memory behind them), every vCPU's state (`arch::VcpuState`), and
//! where the guest waits in the embedding protocol. Restoring into the
//! sandbox it was last restored or taken in copies only the pages written
//! since (KVM's dirty log plus the launcher's own writes); anywhere else
//! it replaces all of RAM.

mod dirty;
pub mod file;
pub mod memory;

pub(crate) use dirty::enable_manual as enable_manual_dirty_log;
pub use dirty::HOT_MAX;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::arch;
use crate::config::VmConfig;
use crate::elf::GuestImage;
use crate::error::Result;
use crate::sandbox::SandboxError;
use memory::MemoryImage;

/// How much of a vCPU's state a restore writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreScope {
    /// Everything saved.
    Full,
    /// After a call that ended cleanly (the guest returned through the
    /// protocol, no async page faults): what unprivileged guest code can
    /// change (arch-specific).
    AfterCall,
}

/// A sandbox's state between two calls.
pub struct Snapshot {
    /// Tells snapshots apart (a restore of the last one is incremental).
    pub(crate) id: u64,
    pub(crate) image: Arc<GuestImage>,
    pub(crate) cfg: VmConfig,
    pub(crate) memory: MemoryImage,
    pub(crate) vcpus: Vec<arch::VcpuState>,
    pub(crate) pending: crate::sandbox::Pending,
    pub(crate) exports: Vec<String>,
}

impl Snapshot {
    /// Pages of guest RAM the snapshot holds.
    pub fn saved_pages(&self) -> usize {
        self.memory.saved_pages()
    }

    /// The functions the guest exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Write the snapshot to a file ([`mod@file`] describes the format).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|source| crate::Error::HostIo {
            what: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Read a snapshot file (every field checked, see [`Snapshot::from_bytes`]).
    pub fn load(path: &std::path::Path) -> std::result::Result<Snapshot, SandboxError> {
        let io = |source| crate::Error::HostIo {
            what: "read",
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len > file::MAX_FILE {
            return Err(SandboxError::SnapshotFile(
                file::SnapshotFileError::Length {
                    said: file::MAX_FILE,
                    got: len as usize,
                },
            ));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Snapshot::from_bytes(&bytes).map_err(SandboxError::SnapshotFile)
    }

    /// Refuse to restore onto a vCPU whose CPU features or SVE length set
    /// differ from the snapshot's: the guest may have used them.
    pub(crate) fn check_cpu(
        &self,
        vcpu: &kvm_ioctls::VcpuFd,
    ) -> std::result::Result<(), SandboxError> {
        let Some(state) = self.vcpus.first() else {
            return Ok(());
        };
        let (features, sve) = arch::cpu_of(vcpu)?;
        if features != state.cpu_features() {
            return Err(SandboxError::SnapshotMismatch(format!(
                "the guest could use CPU (XSAVE) features {:#x}; this host gives {features:#x}",
                state.cpu_features()
            )));
        }
        if sve != state.sve_set() {
            let name = |s: &[u8; 64]| {
                if *s == [0; 64] {
                    "none (SVE off)".to_string()
                } else {
                    format!("{} bits", crate::sve::VlSet::from_bytes(s).describe())
                }
            };
            return Err(SandboxError::SnapshotMismatch(format!(
                "the snapshot has SVE lengths {}; this host gives {}",
                name(&state.sve_set()),
                name(&sve)
            )));
        }
        Ok(())
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Clear both dirty logs: RAM equals what was just saved or restored.
fn clear_dirty(core: &crate::sandbox::Core) -> Result<()> {
    let vm = &core.vm;
    let size = vm.ram.size();
    if vm.manual_dirty {
        dirty::clear(&vm.vm, crate::vm::RAM_SLOT, size)?;
    } else {
        dirty::get(&vm.vm, crate::vm::RAM_SLOT, size)?;
    }
    let _ = vm.ram.take_host_dirty();
    Ok(())
}

/// Snapshot `core` (between calls).
pub(crate) fn capture(
    core: &mut crate::sandbox::Core,
    image: Arc<GuestImage>,
    cfg: &VmConfig,
    exports: &[String],
) -> std::result::Result<Snapshot, SandboxError> {
    let pending = core
        .pending
        .ok_or_else(|| SandboxError::Protocol("no call can be snapshotted mid-way".into()))?;
    core.vm.settle()?;
    let vcpus = vec![arch::save_vcpu(core.vm.vcpu0())?];
    let memory = MemoryImage::capture(&core.vm.ram)?;
    clear_dirty(core)?;
    Ok(Snapshot {
        id: next_id(),
        image,
        cfg: cfg.clone(),
        memory,
        vcpus,
        pending,
        exports: exports.to_vec(),
    })
}

/// Put `snap` into `core`: only the dirty pages when `incremental`.
pub(crate) fn apply(
    core: &mut crate::sandbox::Core,
    snap: &Snapshot,
    incremental: bool,
    scope: RestoreScope,
) -> Result<()> {
    if arch::SETTLE_BEFORE_RESTORE || scope == RestoreScope::Full {
        core.vm.settle()?;
    }
    let ram = &core.vm.ram;
    if incremental {
        let mut dirty = dirty::get(&core.vm.vm, crate::vm::RAM_SLOT, ram.size())?;
        memory::merge(&mut dirty, &ram.take_host_dirty());
        let copied = snap.memory.restore_dirty(ram, &dirty)?;
        if core.vm.manual_dirty && copied > HOT_MAX {
            dirty::clear(&core.vm.vm, crate::vm::RAM_SLOT, ram.size())?;
        }
    } else {
        snap.memory.restore_all(ram)?;
        clear_dirty(core)?;
    }
    for state in &snap.vcpus {
        arch::restore_vcpu(core.vm.vcpu0(), state, scope)?;
    }
    core.pending = Some(snap.pending);
    Ok(())
}
