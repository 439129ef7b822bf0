#!/usr/bin/env bash
# `make bench` part: the whole default study from an empty cache, ours (`repro run -j N`) and
# PyTorch's (bench/pytorch/study.py: the same work, written for speed, N worker processes), on this
# machine; wall and CPU time of each side, per experiment and in all.
#
# ROUNDS=R (default 1) alternates the sides R times (ours, PyTorch, ours, PyTorch, ...) and reports
# each side's median: a shared or throttled host drifts by ~15 % over the half hour of one round
# (seen here: the same stage 216 then 250 CPU s), enough to flip a verdict when one side always
# runs first.
#
# Usage: [ROUNDS=R] bash bench/compare.sh [WORKSPACE]   (default target/bench-compare; left in place
# with the last round's cache, so bench/run.sh can time a second run on it). N = the machine's
# cores (JOBS to change). Raw outputs: WORKSPACE/ours.R.tsv, WORKSPACE/pytorch.R.tsv per round,
# WORKSPACE/machine.txt. `TABLE_ONLY=1 bash bench/compare.sh [WORKSPACE]` prints the tables again
# from those files without running anything.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# Absolute: the PyTorch side runs from bench/pytorch.
ws="$(realpath -m "${1:-$root/target/bench-compare}")"
jobs="${JOBS:-$(nproc)}"
rounds="${ROUNDS:-1}"
repro="$root/target/release/repro"
export MNIST_MIRROR="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
if [ -z "${TABLE_ONLY:-}" ]; then
  mkdir -p "$ws" && cp "$root/pipeline.toml" "$ws/"
  rm -f "$ws"/ours*.tsv "$ws"/pytorch*.tsv
  bash bench/machine.sh > "$ws/machine.txt"
fi
cat "$ws/machine.txt"
echo

# Wall and CPU time (user + system, every thread) of a command, as `wall<TAB>cpu`.
timed() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.2f}\t{r.ru_utime + r.ru_stime:.2f}")
sys.exit(code)
PY
}

# Ours, per experiment from the stage records (a batch's time shared evenly): the training stages'
# wall and CPU time (what PyTorch's side does), and every stage's (analyses and figures too).
ours_table() {
  python3 - "$ws" "$1" <<'PY'
import collections, glob, json, sys
ws, total = sys.argv[1], sys.argv[2]
per = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
for path in glob.glob(f"{ws}/cache/records/*.json"):
    r = json.load(open(path))
    experiment = r["stage"].split(".")[0]
    if experiment in ("report", "mnist"):
        experiment = "(shared: MNIST fetch, report)"
    sums = per[experiment]
    cpu = r.get("cpu_seconds") or 0.0
    # A numeric stage other than an analysis (weights_pca's PCA runs on the backend too, and the
    # PyTorch side does no PCA): a training, or evaluations the rival does as well.
    if r["backend"] != "-" and not r["kind"].endswith(".analyze"):
        sums[0] += r["seconds"]
        sums[1] += cpu
    sums[2] += r["seconds"]
    sums[3] += cpu
for e, sums in sorted(per.items()):
    print("experiment\t" + e + "\t" + "\t".join(f"{v:.2f}" for v in sums))
print(f"total\t{total}")
PY
}

python="$(bash bench/torch-python.sh)"
preload="$([ -n "$python" ] && bash bench/torch-preload.sh "$python" || true)"
if [ -z "${TABLE_ONLY:-}" ]; then
  for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds: ours, repro run -j $jobs, empty cache ..." >&2
    rm -rf "$ws/cache" "$ws/artifacts"
    total=$(cd "$ws" && timed "$repro" run -j "$jobs")
    ours_table "$total" > "$ws/ours.$round.tsv"
    if [ -z "$python" ]; then
      echo "no python with torch (bench/torch-python.sh): the PyTorch side is skipped" >&2
      : > "$ws/pytorch.$round.tsv"
    else
      echo "round $round of $rounds: PyTorch, bench/pytorch/study.py, $jobs workers ..." >&2
      (cd bench/pytorch && env ${preload:+LD_PRELOAD="$preload"} "$python" -W ignore study.py "$MNIST_MIRROR" "$ws/artifacts" --workers "$jobs") > "$ws/pytorch.$round.tsv"
    fi
  done
fi

python3 - "$ws" "$jobs" <<'PY'
import glob, statistics, sys
ws, jobs = sys.argv[1], sys.argv[2]
def load(path):
    per, total = {}, None
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "experiment":
            per[f[1]] = [float(v) for v in f[2:]]
        elif f[0] == "total":
            total = (float(f[1]), float(f[2]))
    return per, total
def rounds(side):
    # ours.1.tsv, ours.2.tsv, ... (ours.tsv: a workspace from before rounds, one round)
    paths = sorted(glob.glob(f"{ws}/{side}.[0-9]*.tsv")) or glob.glob(f"{ws}/{side}.tsv")
    return [load(p) for p in paths]
def median(runs):
    """Per experiment and in total, the median over rounds of each column."""
    runs = [r for r in runs if r[1]]
    if not runs:
        return {}, None
    names = sorted({e for per, _ in runs for e in per})
    per = {e: [statistics.median(v) for v in zip(*[r[0][e] for r in runs if e in r[0]])] for e in names}
    return per, tuple(statistics.median(t) for t in zip(*[r[1] for r in runs]))
ours_rounds, torch_rounds = rounds("ours"), rounds("pytorch")
ours, ours_total = median(ours_rounds)
torch, torch_total = median(torch_rounds)
n = len(ours_rounds)
ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
fmt = lambda v: f"{v:.1f}" if v is not None else "-"
print(f"The whole default study, cold, {jobs} at once on each side" + (f", medians of {n} alternating rounds" if n > 1 else "") + ". Per experiment, CPU seconds of its")
print("trainings (ours: the numeric stages; PyTorch: its tasks) and the ratio PyTorch / ours (above 1: ours")
print("is faster); ours also with its data, analyses and figures.")
print("| experiment | ours: trainings, CPU s | ours: every stage, CPU s | PyTorch: CPU s | PyTorch / ours |")
print("|---|---|---|---|---|")
for e, (tw, tc, aw, ac) in ours.items():
    pw, pc = torch.get(e, (None, None))
    print(f"| {e} | {tc:.1f} | {ac:.1f} | {fmt(pc)} | {ratio(pc, tc)} |")
if torch_total:
    print(f"| **whole study, wall (s)** | | **{ours_total[0]:.1f}** | **{torch_total[0]:.1f}** | **{ratio(torch_total[0], ours_total[0])}** |")
    print(f"| **whole study, CPU (s)** | | **{ours_total[1]:.1f}** | **{torch_total[1]:.1f}** | **{ratio(torch_total[1], ours_total[1])}** |")
else:
    print(f"| whole study, wall / CPU (s) | | {ours_total[0]:.1f} / {ours_total[1]:.1f} | - | - |")
if n > 1 and torch_total:
    print()
    print("| round | ours: wall / CPU (s) | PyTorch: wall / CPU (s) | PyTorch / ours, wall | per core |")
    print("|---|---|---|---|---|")
    for i, ((_, o), (_, t)) in enumerate(zip(ours_rounds, torch_rounds), 1):
        if o and t:
            print(f"| {i} | {o[0]:.1f} / {o[1]:.1f} | {t[0]:.1f} / {t[1]:.1f} | {ratio(t[0], o[0])} | {ratio(t[1], o[1])} |")
print()
print("Whole study: ours is `repro run` from start to end (fetch, trainings, analyses, figures, report);")
print("PyTorch's is its worker pool from start to end (start-up, MNIST loading, trainings).")
PY
