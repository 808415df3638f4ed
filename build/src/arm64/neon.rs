//! Shows that plain Rust in an arm64 guest is auto-vectorized to NEON:
//! the aarch64 `lazyscan` ELF's copy of `vessel_kernels::fingerprint` (a
//! loop over 16 f32 lanes, no intrinsics) must contain vector FMUL and
//! FADD on f32 lanes. Counted as one test of the arm64 suite.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::testing::Counts;
use crate::{guests, Arch};

/// FMUL (vector), single precision, 2S or 4S: `0 Q 1 01110 0 0 1 Rm 110111 Rn Rd`.
const FMUL_VEC: (u32, u32) = (0xbfe0_fc00, 0x2e20_dc00);
/// FADD (vector), single precision, 2S or 4S: `0 Q 0 01110 0 0 1 Rm 110101 Rn Rd`.
const FADD_VEC: (u32, u32) = (0xbfe0_fc00, 0x0e20_d400);

/// The check, reported like a suite test (`ok`/`FAIL` and one line).
pub fn check() -> Counts {
    match vector_ops() {
        Ok((mul, add)) if mul > 0 && add > 0 => {
            println!("  ok    neon-autovec: fingerprint has {mul} vector fmul and {add} vector fadd (f32 lanes)");
            Counts {
                passed: 1,
                ..Counts::default()
            }
        }
        Ok((mul, add)) => {
            println!("  FAIL  neon-autovec: fingerprint has {mul} vector fmul, {add} vector fadd: not vectorized");
            Counts {
                failed: 1,
                ..Counts::default()
            }
        }
        Err(e) => {
            println!("  FAIL  neon-autovec: {e:#}");
            Counts {
                failed: 1,
                ..Counts::default()
            }
        }
    }
}

/// (vector FMUL, vector FADD) instructions in the guest's fingerprint.
fn vector_ops() -> Result<(usize, usize)> {
    let path = guests::guest_elf(Arch::Aarch64, "lazyscan");
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let elf = object::File::parse(&*data).context("parsing the lazyscan ELF")?;
    let Some(sym) = elf.symbols().find(|s| {
        s.name()
            .is_ok_and(|n| n.contains("vessel_kernels") && n.contains("fingerprint"))
    }) else {
        bail!(
            "no vessel_kernels::fingerprint symbol in {}",
            path.display()
        );
    };
    let text = elf.section_by_name(".text").context("no .text")?;
    let start = sym
        .address()
        .checked_sub(text.address())
        .context("symbol below .text")?;
    let bytes = text.data()?;
    let code = usize::try_from(start)
        .ok()
        .and_then(|s| bytes.get(s..s.checked_add(usize::try_from(sym.size()).ok()?)?))
        .context("symbol outside .text")?;
    let words = code
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    let count = |(mask, want): (u32, u32)| words.clone().filter(|w| w & mask == want).count();
    Ok((count(FMUL_VEC), count(FADD_VEC)))
}
