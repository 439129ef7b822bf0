#!/usr/bin/env bash
# Did a code change flip a verdict of the default study? Runs the default study (or reads the
# claims of a workspace that already ran it) and compares artifacts/claims.csv with
# bench/expected-verdicts.csv, the verdicts this repository stands by. A flip fails loudly, naming
# the commits since the expected verdicts were last set, and how to see what moved
# (`repro diff --against git:REV`). After a deliberate change, copy the new verdicts in and say why
# in the commit: `bash bench/verdicts.sh --accept`.
#
# Usage: bash bench/verdicts.sh [--accept] [WORKSPACE]   (default target/bench-verdicts; kept)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
accept=false
if [ "${1:-}" = "--accept" ]; then accept=true; shift; fi
ws="$(realpath -m "${1:-$root/target/bench-verdicts}")"
expected="$root/bench/expected-verdicts.csv"
export MNIST_MIRROR="${MNIST_MIRROR:-$(cd .. && pwd)/shared/mnist}"
mkdir -p "$ws" && cp "$root/pipeline.toml" "$ws/"
(cd "$ws" && "$root/target/release/repro" run -j "$(nproc)" > run.log 2>&1) || { tail -20 "$ws/run.log"; exit 2; }

if $accept; then
  python3 - "$ws/artifacts/claims.csv" "$expected" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w") as out:
    out.write("id,experiment,verdict\n")
    for r in rows:
        out.write(f"{r['id']},{r['experiment']},{r['verdict']}\n")
print(f"{sys.argv[2]}: {len(rows)} verdicts accepted")
PY
  exit 0
fi

since="$(git log -1 --format=%h -- bench/expected-verdicts.csv 2>/dev/null || true)"
python3 - "$ws/artifacts/claims.csv" "$expected" "${since:-}" <<'PY'
import csv, sys
now = {r["id"]: r for r in csv.DictReader(open(sys.argv[1]))}
expected = {r["id"]: r for r in csv.DictReader(open(sys.argv[2]))}
since = sys.argv[3]
flips = [(i, e["verdict"], now[i]["verdict"] if i in now else "(absent)") for i, e in expected.items()
         if i not in now or now[i]["verdict"] != e["verdict"]]
new = [i for i in now if i not in expected]
for i, r in now.items():
    print(f"{i:4} {r['verdict']:24} {r['measurement'][:100]}")
if not flips and not new:
    print(f"all {len(expected)} verdicts as expected (bench/expected-verdicts.csv)")
    sys.exit(0)
print()
for i, was, is_ in flips:
    print(f"VERDICT FLIPPED: {i} was `{was}`, is now `{is_}`: {now.get(i, {}).get('measurement', '')}")
for i in new:
    print(f"NEW CLAIM: {i} ({now[i]['verdict']}) has no expected verdict")
if since:
    print(f"\nThe flip came with a commit in {since}..HEAD (`git log {since}..HEAD`); "
          f"`repro diff --against git:{since}` shows every measurement that moved.")
print("If the change is meant, `bash bench/verdicts.sh --accept` and say why in the commit.")
sys.exit(1)
PY
