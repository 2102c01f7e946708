#!/usr/bin/env bash
# Publishes the rounds of the parent's bundle store to S3, never overwriting an object.
# Installed as /opt/solvency/bin/solvency-publish and run by solvency-publish.timer.
#
# What is published, per round n: rounds/<n>/bundle.cbor (what GET /v1/rounds/{n} serves) and
# rounds/<n>/summary.json, under s3://$PUBLISH_BUCKET/$PUBLISH_PREFIX/; and each line of the
# store's append-only round log (log.jsonl, what GET /v1/log serves) as log/<seq, 20 digits>.json,
# so that anyone can rebuild the log from the bucket and compare its head. Never the inclusion
# proofs in rounds/<n>/inclusion/: each one reveals a user's balances, so they are handed to
# each user alone (GET /v1/rounds/{n}/inclusion/{account}, behind the admin token).
#
# Which rounds: those numbered up to the store's `latest` pointer. A directory above it is a
# round the parent has not published (a crash between writing and publishing it; see
# parent/src/store/mod.rs) and waits until a later round is committed.
#
# Never overwriting: every object is written with If-None-Match: *, so S3 refuses to replace an
# existing key. If the key exists, its SHA-256 (stored by S3 from our upload) is compared with the
# local file: the same is an upload from an earlier run whose bookkeeping was lost; a difference
# (say a new, empty store counting from round 1 again into the same prefix) stops publication
# with an error and leaves the object alone.
set -euo pipefail

store=${SOLVENCY_STORE:-/var/lib/solvency/store}
bucket=${PUBLISH_BUCKET:?PUBLISH_BUCKET (the bucket name) is not set; see /etc/solvency/publish.env}
prefix=${PUBLISH_PREFIX:?PUBLISH_PREFIX is not set; see /etc/solvency/publish.env}
prefix=${prefix%/}
# Rounds already published, one empty file per round (systemd's StateDirectory=).
done_dir=${STATE_DIRECTORY:-/var/lib/solvency-publish}/published
mkdir -p "$done_dir"

if [[ ! -f $store/latest ]]; then
  echo "no round published in $store yet"
  exit 0
fi
read -r latest <"$store/latest"
if [[ ! $latest =~ ^[0-9]{1,20}$ ]]; then
  echo "$store/latest does not hold a round number" >&2
  exit 1
fi
# Round directories have 20-digit zero-padded names, so comparing names as strings compares the
# numbers (and never overflows, unlike shell arithmetic on 64-bit unsigned round numbers).
latest_name=$(printf '%20s' "$latest" | tr ' ' 0)

# put_once FILE KEY CONTENT-TYPE: uploads FILE to KEY unless KEY exists.
put_once() {
  local file=$1 key=$2 type=$3 sha out remote
  sha=$(openssl dgst -sha256 -binary "$file" | base64)
  if out=$(aws s3api put-object --bucket "$bucket" --key "$key" --body "$file" \
    --content-type "$type" --checksum-sha256 "$sha" --if-none-match '*' 2>&1); then
    echo "published s3://$bucket/$key"
    return 0
  fi
  if [[ $out != *"(PreconditionFailed)"* ]]; then
    echo "uploading s3://$bucket/$key failed: $out" >&2
    return 1
  fi
  remote=$(aws s3api head-object --bucket "$bucket" --key "$key" --checksum-mode ENABLED \
    --query ChecksumSHA256 --output text)
  if [[ $remote == "$sha" ]]; then
    echo "already published: s3://$bucket/$key (same SHA-256)"
    return 0
  fi
  echo "s3://$bucket/$key exists with other content (SHA-256 $remote, ours $sha): not overwriting it;" \
    "a new store must publish under a new PUBLISH_PREFIX" >&2
  return 1
}

shopt -s nullglob
published=0
for dir in "$store"/rounds/*/; do
  name=$(basename "$dir")
  [[ $name =~ ^[0-9]{20}$ ]] || continue
  [[ $name > $latest_name ]] && continue
  [[ -e $done_dir/$name ]] && continue
  # The bundle first: whoever sees a summary can fetch its bundle.
  put_once "$dir/bundle.cbor" "$prefix/rounds/$name/bundle.cbor" application/cbor
  if [[ -f $dir/summary.json ]]; then
    put_once "$dir/summary.json" "$prefix/rounds/$name/summary.json" application/json
  fi
  touch "$done_dir/$name"
  published=$((published + 1))
done
echo "$published new round(s) published; latest round $latest"

# The log, one object per line. A line is never changed once written (the parent refuses to open
# a store whose log was edited), so If-None-Match refusing a different object under a used key is
# exactly the rewrite this is meant to expose.
logged=0
if [[ -f $store/log.jsonl ]]; then
  line_file=$(mktemp)
  trap 'rm -f "$line_file"' EXIT
  seq=0
  while IFS= read -r line; do
    name=$(printf '%020d' "$seq")
    seq=$((seq + 1))
    [[ -e $done_dir/log-$name ]] && continue
    printf '%s\n' "$line" >"$line_file"
    put_once "$line_file" "$prefix/log/$name.json" application/json
    touch "$done_dir/log-$name"
    logged=$((logged + 1))
  done <"$store/log.jsonl"
fi
echo "$logged new log line(s) published"
