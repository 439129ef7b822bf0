#!/usr/bin/env bash
# The machine a benchmark ran on, so results from two machines can be compared: the CPU model and
# the vector features the kernels dispatch on, cores, memory, and what was built.
cd "$(dirname "$0")/.."
cpu() { lscpu 2>/dev/null | sed -n "s/^$1:[[:space:]]*//p" | head -1; }
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
echo "cpu: $(cpu 'Model name') (family $(cpu 'CPU family'), model $(cpu 'Model'), stepping $(cpu 'Stepping'))"
echo "cores: $(nproc) online; $(cpu 'Thread(s) per core') thread(s) per core; hypervisor: $(cpu 'Hypervisor vendor' || true)"
echo "caches: L1d $(cpu 'L1d cache'), L2 $(cpu 'L2 cache'), L3 $(cpu 'L3 cache')"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2)
have=""
for f in sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_bf16; do
  case " $flags " in *" $f "*) have+="$f ";; esac
done
echo "vector features: ${have:-unknown}"
echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
echo "kernel: $(uname -r); rustc: $(rustc --version 2>/dev/null | cut -d' ' -f2)"
python="$(bash bench/torch-python.sh)"
if [ -n "$python" ]; then
  echo "torch: $("$python" -c 'import torch; print(torch.__version__, "(" + torch.backends.cpu.get_cpu_capability() + ")")' 2>/dev/null)"
  preload="$(bash bench/torch-preload.sh "$python")"
  [ -n "$preload" ] && echo "torch's MKL: told the CPU is Intel's (bench/torch-preload.sh), so it picks its kernels by the CPU's features"
fi
exit 0
