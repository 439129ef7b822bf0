#!/usr/bin/env bash
# Do the claims' verdicts hinge on the seeds? The default study as configured (seed set A), then
# every experiment that feeds a claim again with seeds disjoint from A's (set B), in one workspace;
# `repro diff` reads both sides' claims from the store and this prints the two verdict columns,
# with what the extra seeds of the default configuration cost.
#
# Usage: bash bench/seeds.sh [WORKSPACE]   (default target/bench-seeds; kept, with its cache).
# Raw output: WORKSPACE/verdicts.json (the diff), WORKSPACE/verdicts.md (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
ws="$(realpath -m "${1:-$root/target/bench-seeds}")"
# A copy of the binary: a rebuild while this runs must not change the code keys under its feet
# (`repro diff` at the end would then find neither side in the store).
mkdir -p "$ws" && cp "$root/target/release/repro" "$ws/repro"
repro="$ws/repro"
export MNIST_MIRROR="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
mkdir -p "$ws" && cp "$root/pipeline.toml" "$ws/"
cd "$ws"

# Set B: the same number of seeds as the defaults, none of theirs (experiments without a claim
# keep theirs: their stages are shared by both sides).
B=(
  -s 'sim_functions.seeds="40..80"'
  -s 'mnist_cnn.seeds=[4, 5, 6]'
  -s 'grad_norm.seeds="24..48"'
  -s 'random_labels.seeds=[3, 4, 5]'
  -s 'params_generalization.seeds=[3, 4, 5]'
  -s 'sensitivity.seeds=[3, 4, 5]'
)
echo "seed set A (pipeline.toml) ..." >&2
"$repro" run -j "$(nproc)" > run-a.log 2>&1
echo "seed set B (${B[*]}) ..." >&2
"$repro" run -j "$(nproc)" "${B[@]}" > run-b.log 2>&1
# Exit code 1 means a verdict flipped: that is the finding, not a failure of the script.
"$repro" diff --json "${B[@]}" > verdicts.json || [ $? -eq 1 ]

python3 - "$ws" <<'PY'
import glob, json, sys
ws = sys.argv[1]
d = json.load(open(f"{ws}/verdicts.json"))
lines = ["| claim | experiment | seeds A (pipeline.toml) | seeds B (disjoint) | same |", "|---|---|---|---|---|"]
missing = "not in the store"
def same(c):
    if missing in (c["old"], c["new"]):
        return "**not stored**"
    return "yes" if c["old"] == c["new"] else "**no**"
for c in d["claims"]:
    lines.append(f"| {c['id']} | {c['experiment']} | {c['old']} | {c['new']} | {same(c)} |")
agree = sum(same(c) == "yes" for c in d["claims"])
lines.append("")
lines.append(f"{agree} of {len(d['claims'])} verdicts the same on both seed sets.")
if any(same(c) == "**not stored**" for c in d["claims"]):
    lines.append("Some sides are not in the store (was the binary rebuilt during the run?): nothing is compared there.")
for c in d["claims"]:
    if c["old_measurement"] != c["new_measurement"]:
        lines.append(f"- {c['id']}: A: {c['old_measurement']}")
        lines.append(f"  {' ' * len(c['id'])}  B: {c['new_measurement']}")
# What the seeds cost: CPU seconds of each experiment's trainings, per seed, from the records.
cpu = {}
for path in glob.glob(f"{ws}/cache/records/*.json"):
    r = json.load(open(path))
    if r["backend"] == "-" or r["kind"].endswith(".analyze"):
        continue
    stage = r["stage"]
    experiment = stage.split(".")[0]
    seed = next((p.split("=")[1] for p in stage.rstrip("]").split("[")[-1].split(",") if p.startswith("seed=")), "-")
    cpu.setdefault(experiment, {}).setdefault(seed, 0.0)
    cpu[experiment][seed] += r.get("cpu_seconds") or 0.0
lines.append("")
lines.append("| experiment | CPU s per seed (trainings) |")
lines.append("|---|---|")
for e in sorted(cpu):
    runs = sorted(cpu[e].items(), key=lambda kv: kv[0])
    total = sum(v for _, v in runs)
    if len(runs) > 6:
        per = f"{len(runs)} seeds, {total:.1f} in all ({total / len(runs):.2f} per seed)"
    else:
        per = ", ".join(f"seed {s}: {v:.1f}" for s, v in runs) + f" ({total:.1f} in all)"
    lines.append(f"| {e} | {per} |")
text = "\n".join(lines)
open(f"{ws}/verdicts.md", "w").write(text + "\n")
print(text)
PY
