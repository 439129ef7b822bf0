#!/usr/bin/env bash
# End to end, with a real rebuild: the keys baked into the binary follow the code. A no-op statement
# inserted into the shared MNIST training loop makes `mnist_cnn.train` stale, naming the file, and
# leaves stages that never run that loop (the MNIST fetch, sim_functions) current; taking the
# statement out makes everything current again. Run by CI; the source file is restored on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

loop=src/training/mnist.rs
ws=$(mktemp -d)
cp "$loop" "$ws/original.rs"
restore() {
  cp "$ws/original.rs" "$loop"
  rm -rf "$ws"
}
trap restore EXIT

repro() {
  ./target/release/repro --cache "$ws/cache" --artifacts "$ws/artifacts" --data "$ws/data" --profile quick "$@"
}
stale() {
  repro status --json mnist_cnn sim_functions.train | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["stale"]:
        print(s["stage"] + ": " + "; ".join(s["reasons"]))'
}

cargo build --release --locked -q
repro run mnist_cnn sim_functions.train >/dev/null 2>&1
[ -z "$(stale)" ] || { echo "not current after a run:"; stale; exit 1; }

python3 - "$loop" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
anchor = ") -> Result<(M, Vec<EpochMetrics>)> {\n"
assert anchor in text, "fit_on_mnist's signature moved: update scripts/check-code-keys.sh"
open(path, "w").write(text.replace(anchor, anchor + "    let _ = ();\n", 1))
PY
cargo build --release --locked -q
after_edit=$(stale)
echo "after a no-op statement in $loop:"
echo "$after_edit"
echo "$after_edit" | grep -q "^mnist_cnn.train\[.*code changed: $loop" || { echo "FAIL: mnist_cnn.train is not stale"; exit 1; }
if echo "$after_edit" | grep -q "^mnist.fetch\|^sim_functions.train"; then
  echo "FAIL: a stage that never runs the MNIST loop is stale"
  exit 1
fi

cp "$ws/original.rs" "$loop"
cargo build --release --locked -q
[ -z "$(stale)" ] || { echo "FAIL: not current once the edit is undone:"; stale; exit 1; }
echo "code keys follow a real rebuild: ok"
