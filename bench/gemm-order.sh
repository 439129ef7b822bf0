#!/usr/bin/env bash
# What the fixed order of summation (vendor/README.md) costs: the default study's gemm-heavy
# trainings (one seed of each CNN, and params_generalization's widest MLP) timed with two
# binaries on this machine, alternating, each from an empty cache of its own.
#
#   bash bench/gemm-order.sh BEFORE_BIN AFTER_BIN [ROUNDS]
#
# Prints each stage's wall time per binary and round (the run log's `[ran Ns]`) and the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$(realpath "$1"); after=$(realpath "$2"); rounds=${3:-2}
ws=target/bench-gemm-order
export MNIST_MIRROR="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
mkdir -p "$ws"
cp "$before" "$ws/before"; cp "$after" "$ws/after"
echo "machine: $(bash bench/machine.sh 2>/dev/null | head -1 || uname -m)"
for round in $(seq "$rounds"); do
  for side in before after; do
    dir="$ws/$side-$round"; rm -rf "$dir"; mkdir -p "$dir"; cp pipeline.toml "$dir/"
    (cd "$dir" && "../$side" run -j 1 --data ../data 'mnist_cnn.train*seed=1]' 'params_generalization.train[hidden=800x400,seed=0]' > run.log 2>&1)
    total=$(grep -E '^\[ran .*\] (mnist_cnn|params_generalization)\.train' "$dir/run.log" \
      | sed -E 's/^\[ran +([0-9.]+)s\].*/\1/' | paste -sd+ | bc)
    echo "round $round $side: $total s"
    grep -E '^\[ran .*\] (mnist_cnn|params_generalization)\.train' "$dir/run.log" | sed "s/^/  /"
  done
done
