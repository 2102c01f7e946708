#!/usr/bin/env bash
# Builds the production enclave binary (no emulated NSM) the one way that Dockerfile.enclave and
# scripts/check-reproducible.sh both use, so that the same commit gives the same bytes wherever it
# is checked out: paths are remapped (the checkout, the cargo registry), the lock file is honoured,
# and C code built by crates gets the same prefix maps.
#
# usage: scripts/build-enclave.sh OUT_FILE
set -euo pipefail
if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
  echo "usage: $0 OUT_FILE   (builds solvency-enclave --release --no-default-features --locked)" >&2
  exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/.." && pwd -P)
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
cd "$root"

# The compiler Dockerfile.enclave installs (RUST_TOOLCHAIN there): another one gives other bytes,
# so a check of reproducibility with another compiler would prove nothing about the image.
rustc_pinned=1.95.0
rustc_found=$(rustc --version | cut -d' ' -f2)
if [[ $rustc_found != "$rustc_pinned" && -z ${SOLVENCY_ANY_RUSTC:-} ]]; then
  echo "rustc $rustc_found here, but the enclave image is built with $rustc_pinned;" \
    "set SOLVENCY_ANY_RUSTC=1 to build anyway" >&2
  exit 2
fi

# Timestamps: nothing in the binary should carry one, but crates that stamp builds honour this.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
# Where the checkout and the registry are must not reach the binary (panic locations, debug info).
remap="--remap-path-prefix=$root=/solvency --remap-path-prefix=$cargo_home=/cargo"
export RUSTFLAGS="$remap ${SOLVENCY_EXTRA_RUSTFLAGS:-}"
export CFLAGS="-ffile-prefix-map=$root=/solvency -ffile-prefix-map=$cargo_home=/cargo"
export CXXFLAGS=$CFLAGS
# The target directory lives in the checkout, so it is remapped with it.
export CARGO_TARGET_DIR=$root/target/reproducible
# Flags in the environment must not be mixed with a user's cargo configuration.
unset CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS

cargo build --locked --release -p solvency-enclave --no-default-features --bin solvency-enclave
install -m 0755 "$CARGO_TARGET_DIR/release/solvency-enclave" "$out"
sha256sum "$out"
