//! The hypercall client: fill this vCPU's frame, ring the doorbell, read the answer.

use vessel_abi::{Call, Errno, Frame};

/// Make a hypercall. Returns `(ret, ret2)` or the host's error.
pub fn call(c: Call) -> Result<(u64, u64), Errno> {
    let f = call_frame(c.encode());
    if f.status == 0 {
        Ok((f.ret, f.ret2))
    } else {
        Err(Errno::from_status(f.status).unwrap_or(Errno::Io))
    }
}

/// Send a raw frame (any number, any arguments) and return the answered
/// frame. For tests and tools that probe the launcher with malformed calls;
/// apps use [`call`].
pub fn call_frame(request: Frame) -> Frame {
    // The frame of the vCPU this runs on (each has its own).
    let frame = crate::arch::vcpu_frame() as *mut Frame;
    // SAFETY: the frame is launcher-reserved, writable guest memory for this
    // vCPU only; volatile because the launcher writes it during the doorbell.
    unsafe {
        frame.write_volatile(request);
        crate::arch::doorbell(frame as u64);
        frame.read_volatile()
    }
}

/// Ring the doorbell with an arbitrary value as the frame address (for
/// tests of the launcher's checks: a bad address ends the VM).
pub fn ring_raw(frame_addr: u64) {
    crate::arch::doorbell(frame_addr);
}

/// A guest buffer as the ABI names it (identity-mapped: address = pointer).
pub fn slice(b: &[u8]) -> vessel_abi::GuestSlice {
    vessel_abi::GuestSlice {
        addr: b.as_ptr() as u64,
        len: b.len() as u64,
    }
}
