#!/usr/bin/env bash
# `make bench` part: sharing the default study through each kind of remote, on loopback.
#
# Needs a workspace whose cache holds the whole default study (bench/compare.sh leaves one in
# target/bench-compare; without it this script computes it first). Starts the servers of
# scripts/remote-local.sh (moto's S3, nginx's WebDAV) and, per backend (file://, s3://, http://):
#   push      the whole study into an empty remote: objects, bytes, seconds, objects/s, MB/s;
#   pull      into an empty workspace (`repro pull`): the same, the other way;
#   run       a fresh workspace with the remote configured: `repro run` (the built binary), which
#             must compute nothing; its wall time is what a newcomer waits for the report.
# Usage: bash bench/remote.sh [WORKSPACE]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
source_ws="$(realpath -m "${1:-$root/target/bench-compare}")"
out="$root/target/bench-remote"
repro="$root/target/release/repro"
export MNIST_MIRROR="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
export CI=1  # one line per stage, no bars

mkdir -p "$source_ws"
[ -f "$source_ws/pipeline.toml" ] || cp pipeline.toml "$source_ws/"
if ! (cd "$source_ws" && "$repro" status | tail -1 | grep -q "^0 stale"); then
  echo "computing the default study in $source_ws first ..." >&2
  (cd "$source_ws" && "$repro" run > /dev/null)
fi
# What the current configuration's records name (the store may also hold older results).
read -r stages objects bytes < <(cd "$source_ws" && "$repro" status --json | python3 -c '
import json, sys
current = [s["key"] for s in json.load(sys.stdin) if not s["stale"]]
objects = {}
for key in current:
    record = json.load(open(f"cache/records/{key}.json"))
    objects.update((o["hash"], o["size"]) for o in record["outputs"].values())
print(len(current), len(objects), sum(objects.values()))
')

bash scripts/remote-local.sh start >&2
trap 'bash scripts/remote-local.sh stop >&2' EXIT
eval "$(bash scripts/remote-local.sh env)"

seconds() {  # COMMAND...: runs it, prints its wall seconds
  python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{time.perf_counter() - t:.2f}")
PY
}

rate() {  # COUNT SECONDS DIVISOR
  python3 -c "import sys; n, s, d = map(float, sys.argv[1:]); print(f'{n / d / s:.1f}')" "$@"
}

rm -rf "$out" && mkdir -p "$out"
stamp="$(date +%s)"
printf "%s stages, %s objects, %.1f MB in the store\n\n" "$stages" "$objects" "$(rate "$bytes" 1 1000000)"
printf "%-8s %-6s %9s %10s %9s\n" backend step seconds objects/s MB/s
for backend in file s3 webdav; do
  case $backend in
    file) url="file://$out/file-remote" ;;
    s3) url="s3://$REPRO_TEST_S3_BUCKET/bench-$stamp" ;;
    webdav) url="$REPRO_TEST_WEBDAV_URL/bench-$stamp" ;;
  esac
  export REPRO_REMOTE="$url" AWS_ENDPOINT_URL="$REPRO_TEST_S3_ENDPOINT"
  push=$(cd "$source_ws" && seconds "$repro" push)
  printf "%-8s %-6s %9s %10s %9s\n" "$backend" push "$push" "$(rate "$objects" "$push" 1)" "$(rate "$bytes" "$push" 1000000)"
  mkdir -p "$out/$backend-pull" "$out/$backend-run"
  cp pipeline.toml "$out/$backend-pull/" && cp pipeline.toml "$out/$backend-run/"
  pull=$(cd "$out/$backend-pull" && seconds "$repro" pull)
  printf "%-8s %-6s %9s %10s %9s\n" "$backend" pull "$pull" "$(rate "$objects" "$pull" 1)" "$(rate "$bytes" "$pull" 1000000)"
  run_start=$(date +%s.%N)
  (cd "$out/$backend-run" && "$repro" run > run.txt 2>&1)
  run=$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$run_start")
  printf "%-8s %-6s %9s   (%s)\n" "$backend" run "$run" "$(grep '^stages:' "$out/$backend-run/run.txt")"
  grep -q "^stages: 0 run" "$out/$backend-run/run.txt" || { echo "the fresh run computed something" >&2; exit 1; }
  cmp -s "$source_ws/artifacts/report.html" "$out/$backend-run/artifacts/report.html" \
    || { echo "the fetched report differs from the source's" >&2; exit 1; }
done
echo
echo "(loopback on this machine: bench/machine.sh; every fetched object re-hashed before use)"
