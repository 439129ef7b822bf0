#!/usr/bin/env bash
# Builds repro with burn-tch against a given PyPI torch (default 2.11.0, CUDA 13.0: what a GPU
# machine without internet has installed) and packs what a run there needs into one folder:
#   target/gpu-bundle/{repro.xz, head_to_head.xz, pipeline.toml, mnist/}
# (about 30 MB; the stripped repro alone is about 70 MB, polars included). Run it there with
# bench/gpu/run-gpu.sh.
# Only torch's headers and libraries are taken from the wheel (no CUDA wheels: about 0.5 GB instead
# of 4); the libraries torch's CUDA part needs are resolved on the GPU machine, at run time, from its
# own torch install, so the link allows undefined symbols in shared libraries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
MNIST_DIR="${MNIST_DIR:-../shared/mnist}"
wheels="target/torch-$TORCH_VERSION"
libtorch="$wheels/torch"

if [ ! -f "$libtorch/lib/libtorch_cpu.so" ]; then
  mkdir -p "$wheels"
  python3 -m pip download --quiet --no-deps --only-binary=:all: "torch==$TORCH_VERSION" -d "$wheels"
  (cd "$wheels" && unzip -q -o torch-"$TORCH_VERSION"-*.whl 'torch/include/*' 'torch/lib/*' 'torch/version.py')
fi
echo "libtorch from torch $(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$libtorch/version.py")" >&2

export LIBTORCH="$root/$libtorch" LIBTORCH_BYPASS_VERSION_CHECK=1 LIBTORCH_CXX11_ABI=1
export CARGO_TARGET_DIR="$root/target/gpu"
export RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined"
cargo build --release --features tch --bin repro --example head_to_head

bundle=target/gpu-bundle
rm -rf "$bundle" && mkdir -p "$bundle/mnist"
for binary in target/gpu/release/repro target/gpu/release/examples/head_to_head; do
  name="$(basename "$binary")"
  strip -o "$bundle/$name" "$binary"
  xz -6 -T0 "$bundle/$name"
done
cp pipeline.toml "$bundle/"
cp "$MNIST_DIR"/*.gz "$bundle/mnist/"
du -sh "$bundle" >&2
