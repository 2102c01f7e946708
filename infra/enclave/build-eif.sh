#!/usr/bin/env bash
# Builds the enclave image file (EIF) from the files of one commit, and measures it twice:
# nitro-cli's own measurements, and `solvency-parent measure`, which writes the [pcrs] table of a
# verifier policy. The two must agree, or the script fails: the PCRs an auditor pins have to be
# the ones the enclave will report.
#
# Needs git, docker with buildx, nitro-cli (aws-nitro-enclaves-cli), python3, and a solvency-parent binary
# that has the `measure` command.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: infra/enclave/build-eif.sh [--commit REV] [--out DIR] [--policy FILE] [--parent BIN]
                                  [--signing-certificate PEM --private-key PEM]

Builds solvency-enclave.eif from the files of commit REV (default HEAD) of this repository:
  docker buildx build -f Dockerfile.enclave --build-arg SOURCE_DATE_EPOCH=<commit time> \
    --output type=docker,name=solvency-enclave:<sha>,rewrite-timestamp=true .
  nitro-cli build-enclave --docker-uri solvency-enclave:<sha> --output-file solvency-enclave.eif
prints nitro-cli's measurements (saved as DIR/measurements.json) and those of
  solvency-parent measure --eif solvency-enclave.eif --json
fails unless they agree, then moves the EIF to DIR and writes the [pcrs] table of the verifier
policy FILE (default DIR/policy.toml; an existing policy keeps its other tables).

  --commit REV                 commit, tag or branch to build (default HEAD)
  --out DIR                    output directory (default ./eif-out); an existing EIF there is refused
  --policy FILE                verifier policy to write the [pcrs] table into
  --parent BIN                 solvency-parent to measure with (default: target/release/solvency-parent
                               of this repository if built, else solvency-parent on PATH)
  --signing-certificate PEM    sign the EIF (adds PCR8); needs --private-key
  --private-key PEM            the signing key's file (a path: the key never appears on a command line)
  -h, --help                   this help
EOF
}

repo=$(cd "$(dirname "$0")/../.." && pwd)
commit=HEAD
out=eif-out
policy=
parent=
cert=
key=
while [[ $# -gt 0 ]]; do
  case $1 in
    --commit) commit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --policy) policy=$2; shift 2 ;;
    --parent) parent=$2; shift 2 ;;
    --signing-certificate) cert=$2; shift 2 ;;
    --private-key) key=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -n $cert && -z $key ]] || [[ -z $cert && -n $key ]]; then
  echo "--signing-certificate and --private-key go together" >&2
  exit 2
fi
for tool in git docker nitro-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
if [[ -z $parent ]]; then
  if [[ -x $repo/target/release/solvency-parent ]]; then
    parent=$repo/target/release/solvency-parent
  else
    parent=$(command -v solvency-parent) || { echo "no solvency-parent found; pass --parent" >&2; exit 2; }
  fi
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
eif=$out/solvency-enclave.eif
policy=${policy:-$out/policy.toml}
# Never replace an EIF silently: its PCRs may already be pinned somewhere.
if [[ -e $eif ]]; then
  echo "$eif exists; move it away or choose another --out" >&2
  exit 2
fi

# The commit's files exactly (git archive), not the working tree: untracked or modified files
# must not reach the image, or the PCRs would not follow from the commit alone. No .git either,
# since its contents differ from one clone to another.
sha=$(git -C "$repo" rev-parse --verify "$commit^{commit}")
work=$(mktemp -d -t solvency-eif.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git -C "$repo" archive --format=tar "$sha" | tar -x -C "$work/src"
[[ -f $work/src/Dockerfile.enclave ]] || { echo "commit $sha has no Dockerfile.enclave" >&2; exit 1; }

# Reproducible image: every timestamp is the commit's time (SOURCE_DATE_EPOCH for the build,
# rewrite-timestamp for the layers), so the same commit gives the same image and the same PCRs.
# That needs BuildKit's `docker buildx` (0.13 or later); plain `docker build` stamps build times.
docker buildx version >/dev/null 2>&1 || { echo "docker buildx is needed for a reproducible image" >&2; exit 2; }
image=solvency-enclave:$sha
epoch=$(git -C "$repo" log -1 --format=%ct "$sha")
echo "building $image from commit $sha (SOURCE_DATE_EPOCH=$epoch)"
docker buildx build -f "$work/src/Dockerfile.enclave" --build-arg SOURCE_DATE_EPOCH="$epoch" \
  --output "type=docker,name=$image,rewrite-timestamp=true" "$work/src"

sign=()
if [[ -n $cert ]]; then
  sign=(--signing-certificate "$cert" --private-key "$key")
fi
# Build into the scratch directory: the EIF reaches --out only once both measurements agree.
# nitro-cli prints its measurements as JSON on stdout (its progress goes to stderr).
# (${sign[@]+...} keeps `set -u` quiet about an empty array on older bash.)
nitro-cli build-enclave --docker-uri "$image" --output-file "$work/solvency-enclave.eif" \
  ${sign[@]+"${sign[@]}"} >"$work/nitro-cli.out"
"$parent" measure --eif "$work/solvency-enclave.eif" --json >"$work/measure.json"

# Compare with python3 rather than jq, which is not installed everywhere. Saves nitro-cli's
# measurements and prints both sets.
python3 - "$work/nitro-cli.out" "$work/measure.json" "$work/measurements.json" <<'PY'
import json, sys

nitro_out, measure_out, saved = sys.argv[1:4]
text = open(nitro_out).read()
# The JSON object starts at the first brace, whatever nitro-cli printed before it.
nitro, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
with open(saved, "w") as f:
    json.dump(nitro, f, indent=2)
    f.write("\n")
theirs = {k: v.lower() for k, v in nitro["Measurements"].items() if k.startswith("PCR")}
ours = {k: v.lower() for k, v in json.load(open(measure_out))["pcrs"].items()}
order = lambda k: int(k[3:])

for title, pcrs in (("nitro-cli build-enclave", theirs), ("solvency-parent measure", ours)):
    print(f"{title}:")
    for k in sorted(pcrs, key=order):
        print(f"  {k} {pcrs[k]}")
if not {"PCR0", "PCR1", "PCR2"} <= set(ours):
    sys.exit("solvency-parent measure did not report PCR0, PCR1 and PCR2")
differ = [k for k in sorted(set(theirs) | set(ours), key=order) if theirs.get(k) != ours.get(k)]
if differ:
    sys.exit(f"PCRs differ between nitro-cli and solvency-parent measure: {', '.join(differ)}")
print(f"PCRs agree: {', '.join(sorted(ours, key=order))}")
PY

mv "$work/solvency-enclave.eif" "$eif"
mv "$work/measurements.json" "$out/measurements.json"
# The [pcrs] table is written from the EIF at its final place, and only once the PCRs agree.
"$parent" measure --eif "$eif" --policy "$policy" >/dev/null

echo "EIF:          $eif"
echo "SHA-256:      $(sha256sum "$eif" | cut -d' ' -f1)"
echo "measurements: $out/measurements.json"
echo "policy:       $policy ([pcrs] written)"
echo "commit:       $sha"
