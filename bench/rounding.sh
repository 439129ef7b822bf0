#!/usr/bin/env bash
# Do the claims' verdicts hinge on rounding? The default study on our kernels (flex) and on
# libtorch's CPU kernels (tch, DEVICE=cpu: another summation order in every layer), each in a
# workspace of its own; prints the two verdict columns side by side, with each claim's margin
# and interval on both, and writes them to WORKSPACE/verdicts.md. A verdict that moves is named.
#
# Usage: bash bench/rounding.sh [WORKSPACE]   (default target/bench-rounding; kept, with its caches).
# FLEX_WORKSPACE=DIR runs the flex side in DIR instead (e.g. bench/seeds.sh's workspace, whose
# cache already holds the default study: the flex side is then a cache hit; it waits for a run
# holding that cache).
# The tch build (target/tch) and its PyTorch come from scripts/with-libtorch.sh, as `make report
# BACKEND=tch` makes them.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
ws="$(realpath -m "${1:-$root/target/bench-rounding}")"
export MNIST_MIRROR="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
flex_ws="$(realpath -m "${FLEX_WORKSPACE:-$ws/flex}")"
mkdir -p "$flex_ws" "$ws/tch"
cp "$root/pipeline.toml" "$flex_ws/" && cp "$root/pipeline.toml" "$ws/tch/"
jobs="$(nproc)"
TIMEFORMAT='%R s wall, %U s user'

# Copies of the binaries: a rebuild while this runs must not change the code keys under its feet.
[ -x "$root/target/tch/release/repro" ] || CARGO_TARGET_DIR=target/tch bash scripts/with-libtorch.sh cargo build --release --features tch
cp "$root/target/release/repro" "$ws/repro-flex" && cp "$root/target/tch/release/repro" "$ws/repro-tch"

echo "tch on the CPU ..." >&2
(cd "$ws/tch" && { time bash "$root/scripts/with-libtorch.sh" "$ws/repro-tch" run -j "$jobs" \
  -s pipeline.backend=tch -s pipeline.device=cpu > run.log 2>&1; } 2> time.log) || { tail -20 "$ws/tch/run.log"; exit 2; }

echo "flex ..." >&2
(cd "$flex_ws" && { time "$ws/repro-flex" run --wait -j "$jobs" > run.log 2>&1; } 2> time.log) \
  || { tail -20 "$flex_ws/run.log"; exit 2; }
python3 - "$ws" "$flex_ws" <<'PY'
import csv, sys
ws, flex_ws = sys.argv[1], sys.argv[2]
flex = {r["id"]: r for r in csv.DictReader(open(f"{flex_ws}/artifacts/claims.csv"))}
tch = {r["id"]: r for r in csv.DictReader(open(f"{ws}/tch/artifacts/claims.csv"))}
def margin(r):
    if not r["margin"]:
        return ""
    m = f"{float(r['margin']):.4g}"
    return f"{m} [{float(r['margin_low']):.4g}, {float(r['margin_high']):.4g}]" if r["margin_low"] else m
lines = ["| claim | experiment | flex | margin | tch (CPU) | margin | same |", "|---|---|---|---|---|---|---|"]
for i, f in flex.items():
    t = tch.get(i, {"verdict": "(absent)", "margin": ""})
    same = "yes" if f["verdict"] == t["verdict"] else "**no**"
    lines.append(f"| {i} | {f['experiment']} | {f['verdict']} | {margin(f)} | {t['verdict']} | {margin(t)} | {same} |")
agree = sum(f["verdict"] == tch.get(i, {}).get("verdict") for i, f in flex.items())
lines += ["", f"{agree} of {len(flex)} verdicts the same on flex and on libtorch's CPU kernels."]
for side, at in (("flex", flex_ws), ("tch", f"{ws}/tch")):
    lines.append(f"- {side}: {open(f'{at}/time.log').read().strip().splitlines()[-1]}")
text = "\n".join(lines)
open(f"{ws}/verdicts.md", "w").write(text + "\n")
print(text)
PY
