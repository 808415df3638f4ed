//! aarch64 host support (not yet written: see issue 3).
compile_error!("the Vessel launcher does not support aarch64 yet");
