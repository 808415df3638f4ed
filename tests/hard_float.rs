//! x86_64 guests are built for a hard-float target: Rust float code in an
//! app compiles to SSE instructions, never to compiler-builtins' software
//! float routines (what `x86_64-unknown-none` would link for every f32/f64
//! operation). Checked on the built guest ELFs.

use object::{Object, ObjectSymbol};

/// compiler-builtins' soft-float routines for the basic f32/f64 operations.
const SOFT_FLOAT: &[&str] = &[
    "__addsf3",
    "__subsf3",
    "__mulsf3",
    "__divsf3",
    "__adddf3",
    "__subdf3",
    "__muldf3",
    "__divdf3",
    "__floatsisf",
    "__floatunsisf",
    "__floatsidf",
    "__fixsfsi",
    "__fixdfsi",
];

fn symbols(app: &str) -> Vec<String> {
    let path = vessel_tests::guest_elf(app);
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask build`)", path.display()));
    let elf = object::File::parse(&*data).expect("a guest ELF");
    elf.symbols()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect()
}

#[test]
fn float_apps_link_no_soft_float_routines() {
    // lazyscan (the fingerprint) and vector (its plain-Rust kernels) both do
    // f32 and f64 arithmetic in Rust.
    for app in ["lazyscan", "vector"] {
        let syms = symbols(app);
        assert!(
            syms.iter()
                .any(|s| s.contains("fingerprint") || s.contains("vector")),
            "{app}: no symbols to check (stripped?)"
        );
        let soft: Vec<&String> = syms
            .iter()
            .filter(|s| SOFT_FLOAT.contains(&s.as_str()))
            .collect();
        assert!(soft.is_empty(), "{app} links soft-float routines: {soft:?}");
    }
}
