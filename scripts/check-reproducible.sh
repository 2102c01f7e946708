#!/usr/bin/env bash
# Checks that the enclave binary is reproducible: clones the current commit into two different
# directories (different names and depths), builds each with scripts/build-enclave.sh, and
# compares the SHA-256 of the two binaries. Exit 0 when they are identical, 1 when they differ.
#
# usage: scripts/check-reproducible.sh [WORK_DIR]   (default: a new temporary directory)
# Each build is a full release build: about ten minutes apiece on two cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
commit=$(git -C "$root" rev-parse HEAD)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
if ! git -C "$root" diff --quiet HEAD; then
  echo "note: uncommitted changes are not part of the check; it builds commit $commit" >&2
fi

build() { # build DIR OUT
  git clone --quiet --no-hardlinks "$root" "$1"
  git -C "$1" checkout --quiet --detach "$commit"
  local start=$SECONDS
  (cd "$1" && scripts/build-enclave.sh "$2" >/dev/null)
  echo "built in $1 in $((SECONDS - start)) s"
}

build "$work/first/solvency-enclave" "$work/first.bin"
build "$work/second/a/deeper/checkout" "$work/second.bin"
first=$(sha256sum <"$work/first.bin" | cut -d' ' -f1)
second=$(sha256sum <"$work/second.bin" | cut -d' ' -f1)
echo "commit  $commit"
echo "first   $first  ($(stat -c %s "$work/first.bin") bytes)"
echo "second  $second"
if [[ $first == "$second" ]]; then
  echo "reproducible: the two builds are identical"
else
  echo "NOT reproducible: the two builds differ" >&2
  exit 1
fi
