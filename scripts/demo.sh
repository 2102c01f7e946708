#!/usr/bin/env bash
# The demo round on an embedded default: a private PostgreSQL cluster started for the occasion
# (TLS, SCRAM, certificates made at run time), the enclave program reading it over pinned TLS and
# proving it, and the independent verifier checking the bundle and one user's inclusion proof.
# Needs PostgreSQL's server binaries (Debian: apt-get install postgresql).
# Usage: scripts/demo.sh [--accounts N] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet -p solvency-enclave -p solvency-attestation -p solvency-testkit
exec target/release/solvency-demo "$@"
