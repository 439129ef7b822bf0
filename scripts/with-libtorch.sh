#!/usr/bin/env bash
# Runs a command with libtorch set up for burn-tch (`--features tch`): for building
# (LIBTORCH_USE_PYTORCH=1 against a Python PyTorch, or LIBTORCH) and for running (torch's lib/ on
# LD_LIBRARY_PATH). Where libtorch comes from, first match wins:
#   1. $LIBTORCH (an unpacked libtorch; $LIBTORCH/lib is added to the library path);
#   2. a Python with torch: $REPRO_PYTHON, then .venv/bin/python, then python3;
#   3. otherwise a venv .venv is made with PyPI torch==$TORCH_VERSION (about 4 GB with its CUDA
#      wheels), the version burn-tch 0.22's tch expects.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
TORCH_VERSION="${TORCH_VERSION:-2.9.0}"

if [ -n "${LIBTORCH:-}" ]; then
  export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  exec "$@"
fi

has_torch() { [ -n "$1" ] && command -v "$1" >/dev/null && "$1" -c "import torch" 2>/dev/null; }
python=""
for candidate in "${REPRO_PYTHON:-}" "$root/.venv/bin/python" python3; do
  if has_torch "$candidate"; then python="$(command -v "$candidate")"; break; fi
done
if [ -z "$python" ]; then
  echo "libtorch: making $root/.venv with torch==$TORCH_VERSION from PyPI (about 4 GB) ..." >&2
  python3 -m venv "$root/.venv"
  "$root/.venv/bin/pip" install --quiet "torch==$TORCH_VERSION"
  python="$root/.venv/bin/python"
fi

# torch-sys asks `python` when VIRTUAL_ENV is set, `python3` otherwise: put ours first on PATH.
bindir="$(dirname "$python")"
export PATH="$bindir:$PATH"
[ -f "$bindir/activate" ] && export VIRTUAL_ENV="$(dirname "$bindir")"
export LIBTORCH_USE_PYTORCH=1
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$@"
