//! Entry points for the fuzz targets (`vmm/fuzz`) into launcher code that
//! is not public otherwise. Not an API: hidden from the documentation.

use vessel_abi::BootInfo;

use crate::config::VmConfig;
use crate::error::Result;
use crate::layout::Layout;
use crate::memory::GuestRam;

/// Plan the layout for `cfg` and an image ending at `image_end`, write the
/// boot area into fresh guest RAM, and return the RAM and the BootInfo as
/// written (the fuzz target checks it against its inputs).
pub fn boot_info(
    cfg: &VmConfig,
    image_end: u64,
    lazy: &[(String, u64, u64)],
) -> Result<(GuestRam, BootInfo)> {
    let layout = Layout::plan(cfg, image_end)?;
    let ram = GuestRam::new(layout.ram_base, layout.ram_end - layout.ram_base)?;
    let params = crate::boot::BootParams {
        args: &cfg.args,
        env: &cfg.env,
        features: 0,
        vector_bits: 0,
        counter_khz: 1,
        lazy,
        console_flags: 0,
    };
    let addrs = crate::boot::write(&ram, &layout, &params)?;
    let info = ram.read_pod::<BootInfo>(addrs.info)?;
    Ok((ram, info))
}
