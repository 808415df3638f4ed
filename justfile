# Short recipes over the build tool (`cargo xtask`).

# Install what the build needs (rustup targets; for aarch64 also QEMU and a kernel).
setup arch="x86_64":
    cargo xtask setup --arch {{arch}}

# Build the launcher and every app, packed into target/vessel/<app>.
build arch="x86_64":
    cargo xtask build --arch {{arch}}

# Build and run an app: `just run hello world`.
run app *args:
    cargo xtask run {{app}} -- {{args}}

# Lint (rustfmt, clippy -D warnings for the host and both guest targets), then
# every test (unit, x86_64 integration, arm64 suite under QEMU).
test arch="all":
    cargo xtask test --arch {{arch}}

# rustfmt --check and clippy -D warnings, host and both guest targets.
lint:
    cargo xtask lint

# Benchmarks: `just bench boot` (also `apf`, `clock`, `smp`).
bench what="boot":
    cargo xtask bench {{what}}
