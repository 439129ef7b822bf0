#!/usr/bin/env bash
# Builds the reference book (docs/) into target/book and checks its links and README's. mdbook is
# taken from PATH, else installed once under target/tools (no default features: the book is built,
# not served).
set -euo pipefail
cd "$(dirname "$0")/.."

mdbook=$(command -v mdbook || true)
if [ -z "$mdbook" ]; then
  mdbook=target/tools/bin/mdbook
  if [ ! -x "$mdbook" ]; then
    cargo install mdbook --version 0.5.4 --no-default-features --locked --root target/tools --quiet
  fi
fi
"$mdbook" build docs
python3 scripts/check-links.py target/book README.md bench/README.md docs/src/*.md
