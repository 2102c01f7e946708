#!/usr/bin/env bash
# The demo round on an embedded default: a private PostgreSQL cluster started for the occasion
# (TLS only, SCRAM, certificates made at run time) with 10,000 synthetic accounts x 3 assets; the
# enclave program as a child process with the emulated NSM, reached over a Unix socket and reading
# the database through the parent's allowlisting proxy; an attested setup round and a challenged
# proving round; the bundle stored, a verifier policy written, and the bundle verified.
# Needs PostgreSQL's server binaries and OpenSSL's headers (Debian: apt-get install postgresql
# libssl-dev pkg-config).
# Usage: scripts/demo.sh [--out DIR] [--accounts N] [--batch-size B]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet -p solvency-parent -p solvency-enclave -p solvency-attestation
args=("$@")
if [[ " ${args[*]} " != *" --out "* ]]; then
  args+=(--out "$(mktemp -d -t solvency-demo.XXXXXX)")
fi
exec target/release/solvency-parent demo "${args[@]}"
