#!/usr/bin/env bash
# The whole default study through burn-tch twice, each from an empty cache in a fresh workspace
# (run-gpu.sh, no head-to-head), for a GPU machine lent for a few minutes: two timings of one
# build on one machine say how much a run varies there. Keeps eight files at most: the second run
# keeps only its log and stage timeline.
#
# Usage, from the repository root: bash bench/gpu/run-gpu-twice.sh OUT
#   RUNS="a b" names the runs (OUT/a, OUT/b); PIPELINE_TIMEOUT bounds each (200 s).
set -u
out="${1:?out}"
bundle=target/gpu-bundle
for run in ${RUNS:-a b}; do
  SKIP_HEAD_TO_HEAD=1 PIPELINE_TIMEOUT="${PIPELINE_TIMEOUT:-200}" bash bench/gpu/run-gpu.sh "$bundle" "$out/$run"
  grep "== " "$out/$run/run.log"
done
rm -f "$out/b/artifacts.tar.gz" "$out/b/setup.txt"
