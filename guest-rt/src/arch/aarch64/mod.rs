//! aarch64 guest support (not yet written: see issue 3).
compile_error!("guest-rt does not support aarch64 yet");
