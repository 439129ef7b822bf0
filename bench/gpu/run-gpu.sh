#!/usr/bin/env bash
# On a GPU machine (PyTorch installed, no internet): the whole default study through burn-tch with
# `device = "auto"` (per-stage placement: big steps on cuda:0, small ones on flex on the CPU, side
# by side), a second run that must do nothing, then the head-to-head workloads on that machine:
# repro on tch/cuda:0 and on flex/cpu, PyTorch on cuda.
#
# Usage, from the repository root: bash bench/gpu/run-gpu.sh BUNDLE OUT
#   BUNDLE: made here by scripts/build-gpu-bundle.sh (repro and head_to_head built against the
#           machine's torch version, pipeline.toml, MNIST);
#   OUT:    receives setup.txt, run.log, stages.tsv, head_to_head.tsv, artifacts.tar.gz.
# SKIP_HEAD_TO_HEAD=1 stops after the pipeline; JOBS=N runs it with `-j N` (default: every core).
set -uo pipefail
repo="$(pwd)"
bundle="$(cd "${1:?bundle}" && pwd)"
mkdir -p "${2:?out}" && out="$(cd "$2" && pwd)"
python="${REPRO_PYTHON:-python3}"
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MNIST_MIRROR="$bundle/mnist"
# The binaries travel xz-compressed; Python's lzma unpacks them wherever xz is missing.
bin="$(mktemp -d)"
for name in repro head_to_head; do
  "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
    "$bundle/$name.xz" "$bin/$name"
  chmod +x "$bin/$name"
done
settings=(-s pipeline.backend=tch -s pipeline.device=auto ${REPRO_ARGS:-})
jobs=(${JOBS:+-j "$JOBS"})

ws="$(mktemp -d)"
cp "$bundle/pipeline.toml" "$ws/"
cd "$ws"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  echo "cpus: $(nproc), jobs: ${JOBS:-all}"
  lscpu | grep -E '^(Model name|Thread|Core|Socket)' || true
  echo "== placement (repro dag)"
  "$bin/repro" dag "${settings[@]}" | grep '  \['
} > "$out/setup.txt" 2>&1

ms() { echo $(($(date +%s%N) / 1000000)); }
start=$(ms)
timeout "${PIPELINE_TIMEOUT:-400}" "$bin/repro" run "${settings[@]}" "${jobs[@]}" > "$out/run.log" 2>&1
status=$?
echo "== first run: exit $status, wall $(($(ms) - start)) ms" >> "$out/run.log"
start=$(ms)
"$bin/repro" run "${settings[@]}" "${jobs[@]}" >> "$out/run.log" 2>&1
echo "== second run: exit $?, wall $(($(ms) - start)) ms" >> "$out/run.log"

# Per stage: name, kind, backend, device, start (s after the first), seconds (a batch member's
# share of its batch), and the batch's size and wall seconds (1 and seconds when not fused).
"$python" - cache/records > "$out/stages.tsv" <<'PY'
import glob, json, sys
records = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/*.json")]
t0 = min(r["started"] for r in records)
print("stage\tkind\tbackend\tdevice\tstart_s\tseconds\tbatch\tbatch_seconds")
for r in sorted(records, key=lambda r: r["started"]):
    batch = r.get("batch") or {"size": 1, "seconds": r["seconds"]}
    print(f'{r["stage"]}\t{r["kind"]}\t{r["backend"]}\t{r["device"]}\t{r["started"] - t0:.2f}\t{r["seconds"]:.3f}'
          f'\t{batch["size"]}\t{batch["seconds"]:.3f}')
PY
tar czf "$out/artifacts.tar.gz" artifacts

cd "$repo"
[ -n "${SKIP_HEAD_TO_HEAD:-}" ] && exit 0
{
  echo "# seconds for the timed steps: workload, steps, seconds (see examples/head_to_head.rs)"
  echo "== repro tch cuda:0"; "$bin/head_to_head" tch cuda:0
  echo "== repro flex cpu"; "$bin/head_to_head" flex cpu
  echo "== pytorch cuda"; "$python" bench/pytorch/workloads.py "$bundle/mnist" cuda
} > "$out/head_to_head.tsv" 2>&1
