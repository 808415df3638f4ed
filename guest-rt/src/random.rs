//! Random bytes from the host (`getrandom(2)` on the launcher's side).

use vessel_abi::{Call, Errno, GuestSlice};

/// Fill `buf` with random bytes (one hypercall per MiB).
pub fn fill(buf: &mut [u8]) -> Result<(), Errno> {
    for chunk in buf.chunks_mut(1 << 20) {
        let s = GuestSlice {
            addr: chunk.as_mut_ptr() as u64,
            len: chunk.len() as u64,
        };
        crate::hypercall::call(Call::Random { buf: s })?;
    }
    Ok(())
}
