#!/usr/bin/env bash
# End to end, with real rebuilds: the keys baked into the binary follow the code, item by item.
# 1. A no-op statement inside a statistics function (`analysis::stats::spearman`) makes stale the
#    analysis that calls it, naming the item, and no training.
# 2. The same inside the shared MNIST training loop (`training::mnist::fit_on_mnist`) makes
#    `mnist_cnn.train` stale, naming the item, and leaves stages that never run that loop (the
#    MNIST fetch, sim_functions) current.
# 3. Undone, everything is current again. Run by CI; the source files are restored on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

stats=src/analysis/stats.rs
loop=src/training/mnist.rs
ws=$(mktemp -d)
cp "$stats" "$ws/stats.rs"
cp "$loop" "$ws/mnist.rs"
restore() {
  cp "$ws/stats.rs" "$stats"
  cp "$ws/mnist.rs" "$loop"
  rm -rf "$ws"
}
trap restore EXIT

repro() {
  ./target/release/repro --cache "$ws/cache" --artifacts "$ws/artifacts" --data "$ws/data" --profile quick "$@"
}
stages="mnist_cnn sim_functions.train min_ratio"
stale() {
  # shellcheck disable=SC2086
  repro status --json $stages | python3 -c '
import json, sys
def said(r):
    if r["kind"] == "code_changed":
        return "code changed: " + ", ".join(r["items"] or [r["file"]])
    return r["kind"] + " " + " ".join(str(v) for k, v in r.items() if k != "kind")
for s in json.load(sys.stdin):
    if s["stale"]:
        print(s["stage"] + ": " + "; ".join(said(r) for r in s["reasons"]))'
}
# Inserts a no-op statement after the line `anchor` of file `path`.
insert_after() {
  python3 - "$1" "$2" <<'PY'
import sys
path, anchor = sys.argv[1], sys.argv[2] + "\n"
text = open(path).read()
assert anchor in text, f"{anchor!r} moved in {path}: update scripts/check-code-keys.sh"
open(path, "w").write(text.replace(anchor, anchor + "    let _ = ();\n", 1))
PY
}
fail() {
  echo "FAIL: $1"
  exit 1
}

cargo build --release --locked -q
# shellcheck disable=SC2086
repro run $stages >/dev/null 2>&1
[ -z "$(stale)" ] || { echo "not current after a run:"; stale; exit 1; }

# Edits `path` after `anchor`, rebuilds, and checks what is stale: `expected` must match (the
# stage and the item named), `forbidden` must not; then `path` is restored from `saved`.
phase() {  # what path saved anchor expected forbidden why_expected why_forbidden
  insert_after "$2" "$4"
  cargo build --release --locked -q
  local after
  after=$(stale)
  echo "after a no-op statement in $1:"
  echo "$after"
  echo "$after" | grep -q "$5" || fail "$7"
  if echo "$after" | grep -q "$6"; then
    fail "$8"
  fi
  cp "$3" "$2"
}
phase analysis::stats::spearman "$stats" "$ws/stats.rs" \
  "pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {" \
  "^min_ratio.analyze.*code changed: analysis::stats::spearman" "\.train\|\.run\[\|^mnist.fetch" \
  "min_ratio.analyze is not stale, or the item is not named" "an edit of a statistics function reruns a training"
phase training::mnist::fit_on_mnist "$loop" "$ws/mnist.rs" \
  ") -> Result<(M, Vec<EpochMetrics>)> {" \
  "^mnist_cnn.train\[.*code changed: training::mnist::fit_on_mnist" "^mnist.fetch\|^sim_functions.train\|^min_ratio" \
  "mnist_cnn.train is not stale, or the item is not named" "a stage that never runs the MNIST loop is stale"
cargo build --release --locked -q
[ -z "$(stale)" ] || { echo "FAIL: not current once the edits are undone:"; stale; exit 1; }
echo "code keys follow real rebuilds, item by item: ok"
