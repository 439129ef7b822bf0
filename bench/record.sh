#!/usr/bin/env bash
# `make bench`: every benchmark in turn, each one's output kept as a file in a new folder
# bench/results/<date>-<machine>/ (machine.txt says which CPU, cores, memory and commit), so that a
# figure always comes with its date and host. A part that fails is named at the end and fails the
# whole (a verdict that flipped must not go unnoticed); the parts after it still run.
#
# Usage: bash bench/record.sh [PART...]   (parts: verdicts head_to_head run seeds; default all)
set -uo pipefail
cd "$(dirname "$0")/.."
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(verdicts head_to_head run seeds)
for part in "${parts[@]}"; do
  [ -f "bench/$part.sh" ] || { echo "no benchmark bench/$part.sh" >&2; exit 2; }
done
# The machine, in a name a folder can carry: the CPU's vendor, family and model, and its cores.
cpu() { lscpu 2>/dev/null | sed -n "s/^$1:[[:space:]]*//p" | head -1; }
vendor=$(cpu 'Vendor ID' | sed 's/GenuineIntel/intel/; s/AuthenticAMD/amd/' | tr -cd '[:alnum:]')
machine="${vendor:-cpu}-f$(cpu 'CPU family')m$(cpu 'Model')-$(nproc)c"
dir="bench/results/$(date -u +%Y-%m-%dT%H%MZ)-$machine"
mkdir -p "$dir"
bash bench/machine.sh > "$dir/machine.txt"
echo "recording into $dir"
failed=()
for part in "${parts[@]}"; do
  echo "== $part"
  if ! bash "bench/$part.sh" 2>&1 | tee "$dir/$part.txt"; then
    failed+=("$part")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (output in $dir)" >&2
  exit 1
fi
echo "recorded: $dir (state the figures that changed in bench/README.md)"
