//! The C memory functions (`memcpy`, `memmove`, `memset`, `memcmp`,
//! `bcmp`): on `aarch64-unknown-none` the toolchain's `compiler_builtins`
//! provides them, so there is nothing to define here. (x86_64 guests use a
//! Linux target whose builtins leave them to libc; see `x86_64/mem.rs`.)
