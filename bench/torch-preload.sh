#!/usr/bin/env bash
# Prints what the PyTorch side should have in LD_PRELOAD, or nothing: on a CPU that is not
# Intel's, MKL (PyTorch's float32 GEMM) would run its AVX2 kernels on a CPU with AVX-512, so a
# shim that answers MKL's vendor check (bench/pytorch/mkl_any_vendor.c, built here into target/)
# lets it use the CPU's widest kernels, as an expert running PyTorch there would.
# Usage: bash bench/torch-preload.sh PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
python="$1"
grep -q -m1 'vendor_id.*GenuineIntel' /proc/cpuinfo 2>/dev/null && exit 0
"$python" -c 'import sys, torch; sys.exit(0 if torch.backends.mkl.is_available() else 1)' 2>/dev/null || exit 0
shim="$PWD/target/bench-shim/libmkl_any_vendor.so"
if [ ! -f "$shim" ] || [ bench/pytorch/mkl_any_vendor.c -nt "$shim" ]; then
  mkdir -p "$(dirname "$shim")"
  ${CC:-cc} -shared -fPIC -O2 -o "$shim" bench/pytorch/mkl_any_vendor.c
fi
echo "$shim"
