#!/usr/bin/env bash
# The quick profile natively and as other x86-64 CPUs (qemu user-mode emulation), every artifact
# compared byte for byte with the native run: what docs/src/same-bits.md promises.
#
#   bash scripts/cross-cpu.sh [CPU ...]      (default: Haswell Nehalem)
#
# Haswell: AVX2 and FMA, no AVX-512. Nehalem: SSE4.2, no AVX, no FMA (the baseline kernels, with
# libm's software fma). Needs `qemu-x86_64` (Debian's qemu-user; installed here when missing and
# root or sudo is at hand). REPRO_BIN (default target/release/repro) is the binary all runs share;
# CROSS_CPU_DIR (default target/cross-cpu) holds one workspace per CPU; CROSS_CPU_STAGES, when set,
# limits the runs to the stages matching those patterns (and what they need); CROSS_CPU_FULL=1
# runs the quick profile as it is (about an hour per emulated CPU here, against minutes). Exits 1
# when an artifact differs.
set -euo pipefail
# The PDF Chromium prints is not compared (it carries its own timestamps): not printed here.
export REPRO_REPORT_PDF=off
cd "$(dirname "$0")/.."

out=${CROSS_CPU_DIR:-target/cross-cpu}
mkdir -p "$out"
# A copy: a rebuild while the emulated runs go on must not change the binary under them.
cp "${REPRO_BIN:-target/release/repro}" "$out/repro"
bin=$(realpath "$out/repro")
cpus=("$@")
[ ${#cpus[@]} -gt 0 ] || cpus=(Haswell Nehalem)
read -r -a stages <<<"${CROSS_CPU_STAGES:-}"
# The quick profile made smaller still: emulation runs vector code a few hundred times slower, and
# the bits of a kernel do not depend on how many steps run it. Every stage kind stays, and
# min_ratio's retraining on L (off in the quick profile) runs too.
small=(
  -s sim_functions.max_epochs=60 -s grad_norm.epochs=30
  -s min_ratio.seeds=0..2 -s min_ratio.epochs=5 -s min_ratio.norm_adam_steps=10 -s min_ratio.norm_retrain_steps=20
  -s weights_pca.epochs=4
  -s mnist_cnn.epochs=1 -s mnist_cnn.train_subset=256 -s mnist_cnn.test_subset=100 -s "mnist_cnn.seeds=[1]"
  -s random_labels.train_subset=200 -s random_labels.test_subset=100 -s random_labels.max_epochs=2
  -s params_generalization.train_subset=300 -s params_generalization.test_subset=100 -s params_generalization.epochs=1
  -s interpolation.train_subset=300 -s interpolation.test_subset=100 -s interpolation.alpha_points=3
  -s sensitivity.train_subset=300 -s sensitivity.test_subset=100
)
[ -z "${CROSS_CPU_FULL:-}" ] || small=()
# MNIST from a local copy beside the checkout where there is one, else from the public mirrors.
if [ -z "${MNIST_MIRROR:-}" ] && [ -d ../shared/mnist ]; then export MNIST_MIRROR="$(cd ../shared/mnist && pwd)"; fi

if ! command -v qemu-x86_64 >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user >/dev/null
fi

mkdir -p "$out/data"
data=$(realpath "$out/data")
# One workspace per CPU, each with its own cache: nothing computed on one machine reaches another.
run() { # name, then the command prefix (empty natively)
  local name=$1; shift
  local dir="$out/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  cp pipeline.toml "$dir/"
  local start=$SECONDS
  (cd "$dir" && "$@" "$bin" run --profile quick "${small[@]}" --data "$data" "${stages[@]}" >run.log 2>&1) \
    || { echo "$name: the run failed (tail of $dir/run.log):"; tail -20 "$dir/run.log"; exit 1; }
  echo "$name: $((SECONDS - start)) s"
}

run native
for cpu in "${cpus[@]}"; do run "$cpu" qemu-x86_64 -cpu "$cpu"; done

# Every file the emulated run made, against the native one, then every stage's outputs. The report
# is left out: it states the machine and the times of its own run, which differ by design; what it
# reports is in the tables.
status=0
for cpu in "${cpus[@]}"; do
  same=0; differ=0
  while IFS= read -r -d '' file; do
    rel=${file#"$out/$cpu/artifacts/"}
    case "$rel" in report.html|report.md|report.pdf|report-top.png|manifest.json) continue ;; esac
    if cmp -s "$file" "$out/native/artifacts/$rel"; then
      same=$((same + 1))
    else
      differ=$((differ + 1)); echo "$cpu: $rel differs from the native run"
    fi
  done < <(find "$out/$cpu/artifacts" -type f -print0 | sort -z)
  echo "$cpu: $same artifacts byte-identical to the native run, $differ differ"
  [ "$differ" -eq 0 ] && [ "$same" -gt 0 ] || status=1
  # Every stage's outputs, record by record under the same key: also the trainings whose outputs
  # reach no artifact but through an analysis.
  python3 - "$out/native/cache" "$out/$cpu/cache" "$cpu" <<'PY' || status=1
import glob, json, os, sys

def records(cache):
    out = {}
    for f in glob.glob(os.path.join(cache, "records", "**", "*.json"), recursive=True):
        r = json.load(open(f))
        out[r["key"]] = r
    return out

def hashes(record):
    return {name: o["hash"] for name, o in record["outputs"].items()}

native, other, cpu = records(sys.argv[1]), records(sys.argv[2]), sys.argv[3]
# The report keys on its upstream records, wall times included: it has no counterpart by key.
keyed = {k: r for k, r in native.items() if r["stage"] != "report"}
differ = sorted(r["stage"] for k, r in keyed.items() if k in other and hashes(r) != hashes(other[k]))
missing = sorted(r["stage"] for k, r in keyed.items() if k not in other)
for stage in differ:
    print(f"{cpu}: {stage}: outputs differ from the native run's")
for stage in missing:
    print(f"{cpu}: {stage}: no record under the native run's key")
print(f"{cpu}: {len(keyed) - len(differ) - len(missing)} of {len(keyed)} stages' outputs byte-identical to the native run's")
sys.exit(1 if differ or missing else 0)
PY
done
exit $status
