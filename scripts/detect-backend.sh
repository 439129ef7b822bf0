#!/usr/bin/env bash
# The backend `make report` trains on when BACKEND is not given: `tch` (libtorch, device auto)
# where an NVIDIA GPU is usable — nvidia-smi runs and lists at least one GPU, so the driver is
# loaded — and `flex` (pure-Rust CPU) otherwise. With --explain, says on stderr what the choice
# means for this machine. NVIDIA_SMI names another nvidia-smi (tests).
set -uo pipefail
smi="${NVIDIA_SMI:-nvidia-smi}"
gpu=""
if command -v "$smi" >/dev/null 2>&1 && listing="$("$smi" -L 2>/dev/null)"; then
  gpu="$(grep -m1 '^GPU [0-9]' <<<"$listing" | sed 's/ (UUID.*//')"
fi
if [ -z "$gpu" ]; then
  echo flex
  exit 0
fi
echo tch
if [ "${1:-}" = --explain ]; then
  cat >&2 <<MSG
$gpu is usable: training on libtorch (burn-tch, device auto: each stage on the GPU where its work
pays, small ones on the CPU). libtorch comes from a PyTorch found here (LIBTORCH, .venv, a python3
with torch); without one, the first build downloads PyPI torch==2.9.0 with its CUDA libraries
(about 4 GB, once, into .venv). BACKEND=flex trains on the CPU instead and downloads nothing.
MSG
fi
