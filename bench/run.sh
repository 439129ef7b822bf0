#!/usr/bin/env bash
# `make bench`: the machine, then wall times of the pipeline on it (the whole default study against
# PyTorch's, bench/compare.sh), in a scratch workspace of its own (so the user's cache/ is
# untouched). Prints tables; `make bench` keeps them under bench/results/ (bench/record.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "MNIST load and CNN training throughput (default backend):"
echo "| measurement | result |"
echo "|---|---|"
cargo run --release --quiet --example bench_mnist
echo
root="$PWD"
repro="$root/target/release/repro"
ws="$PWD/target/bench-workspace"
rm -rf "$ws" && mkdir -p "$ws" && cp pipeline.toml "$ws/"
cd "$ws"

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc -l | xargs printf '%.3f'; }

t=$(now); "$repro" run -j 1 --profile quick >/dev/null 2>&1; quick_j1=$(elapsed "$t")
rm -rf cache artifacts
t=$(now); "$repro" run --profile quick >/dev/null 2>&1; quick_jn=$(elapsed "$t")
# The whole default study from an empty cache, ours then PyTorch's (bench/compare.sh), in this
# workspace: the runs below time a second run on its cache.
rm -rf cache artifacts
bash "$root/bench/compare.sh" "$ws"
echo
# BENCH_FULL=1: the whole default pipeline per backend (flex, and tch when target/tch has a build)
# at -j 1 and -j N, each from an empty cache of its own (about an hour on 2 cores).
full_rows=""
if [ -n "${BENCH_FULL:-}" ]; then
  for backend in flex tch; do
    bin="$repro"; run=()
    if [ "$backend" = tch ]; then
      [ -x "$root/target/tch/release/repro" ] || continue
      bin="$root/target/tch/release/repro"; run=(bash "$root/scripts/with-libtorch.sh")
    fi
    for jobs in 1 "$(nproc)"; do
      rm -rf cache-full artifacts-full
      t=$(now)
      "${run[@]}" "$bin" --cache cache-full --artifacts artifacts-full run -j "$jobs" -s pipeline.backend="$backend" >/dev/null 2>&1
      full_rows+="| default pipeline, $backend, cold, -j $jobs | $(elapsed "$t") |"$'\n'
    done
  done
  rm -rf cache-full artifacts-full
fi
python3 - <<'PY'
import json, glob
rows = sorted((r["stage"], r["seconds"]) for r in map(lambda p: json.load(open(p)), glob.glob("cache/records/*.json")))
print("Per-stage wall time of the default pipeline (s):")
for stage, secs in rows:
    if secs >= 1.0:
        print(f"  {secs:8.1f}  {stage}")
PY

# Parallel efficiency on sweeps of small trainings: the same sweep from an empty cache at -j 1
# and at -j N (each in a cache of its own).
sweep() {  # pattern, jobs, extra args...
  local pattern=$1 jobs=$2; shift 2
  rm -rf cache-sweep
  local t; t=$(now); "$repro" --cache cache-sweep --artifacts artifacts-sweep run "$pattern" -j "$jobs" "$@" >/dev/null 2>&1
  elapsed "$t"
}
sim_j1=$(sweep sim_functions 1 -s sim_functions.max_epochs=3000)
sim_jn=$(sweep sim_functions "$(nproc)" -s sim_functions.max_epochs=3000)
mr_j1=$(sweep min_ratio 1)
mr_jn=$(sweep min_ratio "$(nproc)")
rm -rf cache-sweep artifacts-sweep

noop_best=999
for _ in 1 2 3 4 5; do
  t=$(now); "$repro" run >/dev/null 2>&1; e=$(elapsed "$t")
  noop_best=$(echo "if ($e < $noop_best) $e else $noop_best" | bc -l)
done
rm -rf artifacts
t=$(now); "$repro" run >/dev/null 2>&1; restore=$(elapsed "$t")
t=$(now); "$repro" status >/dev/null 2>&1; status=$(elapsed "$t")

echo "| measurement | seconds |"
echo "|---|---|"
echo "| quick profile, cold, -j 1 | $quick_j1 |"
echo "| quick profile, cold, -j $(nproc) | $quick_jn |"
printf '%s' "$full_rows"
echo "| default pipeline, second run (nothing to do), best of 5 | $(printf '%.3f' "$noop_best") |"
echo "| default pipeline, artifacts/ deleted, restore | $restore |"
echo "| repro status (default pipeline) | $status |"
echo "| sim_functions sweep (18 runs, 3000 epochs), -j 1 / -j $(nproc) | $sim_j1 / $sim_jn ($(echo "$sim_j1 / $sim_jn" | bc -l | xargs printf '%.2f')x) |"
echo "| min_ratio sweep (100 runs), -j 1 / -j $(nproc) | $mr_j1 / $mr_jn ($(echo "$mr_j1 / $mr_jn" | bc -l | xargs printf '%.2f')x) |"
echo
echo "Training cost per epoch (default pipeline, from the stage records):"
python3 - <<'PY'
import json, glob, collections
per = collections.defaultdict(list)
for path in glob.glob("cache/records/*.json"):
    r = json.load(open(path))
    if r["kind"] != "sim_functions.train":
        continue
    stage = r["stage"]
    model = stage.split("model=")[1].split(",")[0]
    per[model].append(r["seconds"])
for model, secs in sorted(per.items()):
    print(f"  {model}: {len(secs)} runs, {sum(secs):.1f} s in all, longest {max(secs):.1f} s")
PY

echo
echo "Sharing the study through a remote cache (push, pull, a fresh run; bench/remote.sh):"
bash "$root/bench/remote.sh" "$ws"

echo
echo "Kills and checkpoints (the work a SIGKILL loses, what a checkpoint costs; bench/checkpoint.py):"
python3 "$root/bench/checkpoint.py"
