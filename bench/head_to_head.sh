#!/usr/bin/env bash
# `make bench` part: the study's training workloads in repro (flex, and tch when built) and in
# PyTorch, one after the other on this machine, one thread each. Prints a table of seconds per
# 100 steps and the ratio ours / PyTorch.
#
# PyTorch comes from .venv (made by scripts/with-libtorch.sh) or any python3 that imports torch; without
# one, the PyTorch column says so. MNIST: $MNIST_MIRROR (a directory) or ../shared/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
mnist="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
out="target/bench-head-to-head"
mkdir -p "$out"

cargo build --release --quiet --example head_to_head
./target/release/examples/head_to_head flex > "$out/flex.tsv"
# The tch side when the tch build exists (make build BACKEND=tch).
if [ -x target/tch/release/repro ]; then
  CARGO_TARGET_DIR=target/tch bash scripts/with-libtorch.sh cargo build --release --quiet --features tch --example head_to_head
  bash scripts/with-libtorch.sh target/tch/release/examples/head_to_head tch cpu > "$out/tch.tsv"
else
  : > "$out/tch.tsv"
fi
python="$(bash bench/torch-python.sh)"
if [ -n "$python" ]; then
  preload="$(bash bench/torch-preload.sh "$python")"
  env ${preload:+LD_PRELOAD="$preload"} "$python" bench/pytorch/workloads.py "$mnist" cpu 2>/dev/null > "$out/pytorch.tsv"
else
  : > "$out/pytorch.tsv"
fi

python3 - "$out" <<'PY'
import sys
out = sys.argv[1]
def load(name):
    rows = {}
    for line in open(f"{out}/{name}.tsv"):
        workload, steps, secs = line.split("\t")
        rows[workload] = 100 * float(secs) / int(steps)
    return rows
flex, tch, torch = load("flex"), load("tch"), load("pytorch")
print("Seconds per 100 training steps (per 100 run-steps for _xR: R runs per launch; per 100 batches of 1000 for _eval), one thread (ratio = ours / PyTorch):")
print("| workload | flex | tch | PyTorch | flex / PyTorch | tch / PyTorch |")
print("|---|---|---|---|---|---|")
fmt = lambda v: f"{v:.3f}" if v is not None else "-"
ratio = lambda a, b: f"{a / b:.2f}" if a is not None and b else "-"
for w, f in flex.items():
    # A batched workload (`name_xR`, R runs per launch, time per run-step) against PyTorch training
    # the same network one run at a time.
    base = w.rsplit("_x", 1)[0] if "_x" in w else w
    t, p = tch.get(w), torch.get(w, torch.get(base))
    print(f"| {w} | {fmt(f)} | {fmt(t)} | {fmt(p)} | {ratio(f, p)} | {ratio(t, p)} |")
PY
