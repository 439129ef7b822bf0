#!/usr/bin/env bash
# Prints a python that imports torch: the repository's .venv's (made by scripts/with-libtorch.sh),
# else python3 if it has torch; prints nothing when neither does.
cd "$(dirname "$0")/.."
for candidate in "$PWD/.venv/bin/python" python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import torch" 2>/dev/null; then
    echo "$candidate"
    exit 0
  fi
done
