#!/usr/bin/env bash
# Offline demo: make a sample ledger, prove it outside any enclave, verify the bundle and one
# user's inclusion proof with the independent verifier. Usage: scripts/demo-offline.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d -t solvency-demo.XXXXXX)}"
mkdir -p "$out"
cargo build --release --quiet -p solvency-enclave -p solvency-attestation
bin=target/release

"$bin/solvency-enclave" sample-ledger --accounts 200 --assets BTC,ETH,USDT --out "$out/ledger.csv"
"$bin/solvency-enclave" prove-offline --accounts "$out/ledger.csv" --assets BTC,ETH,USDT \
  --batch-size 64 --out "$out/round"
echo
"$bin/solvency-verify" liabilities "$out/round/bundle.cbor"
echo
proof=$(ls "$out/round/inclusion" | head -n 1)
"$bin/solvency-verify" inclusion --bundle "$out/round/bundle.cbor" --proof "$out/round/inclusion/$proof" --unattested
echo
echo "demo output in $out"
