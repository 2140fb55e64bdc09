#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench.sh - the full benchmark set: micro benches (hashing, gather, agent step) and throughput_loss.
#
# Usage: scripts/bench.sh [BUILD_DIR] [--quick]
#   BUILD_DIR   configured meson build directory (default: build)
#   --quick     only throughput_loss --quick (about a minute): the README's main job
# Results go to bench-results/ (JSON, text) and docs/throughput_loss.png.
# The plot needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builddir=build
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) builddir=$a ;;
  esac
done
case "$builddir" in /*) ;; *) builddir=$here/$builddir ;; esac
out=$here/bench-results
mkdir -p "$out"
ninja -C "$builddir" >/dev/null
tl=$builddir/bench/throughput_loss/throughput_loss

if [ "$quick" = 1 ]; then
  exec "$tl" --quick --json "$out/throughput_loss_quick.json"
fi

# Micro benchmarks (Google Benchmark), each with its same-run baselines.
for b in hashing gather/gather agent_step/agent_step; do
  exe=$builddir/bench/$b
  [ -x "$exe" ] || { echo "bench.sh: $exe not built, skipped" >&2; continue; }
  name=$(basename "$b")
  echo "== micro: $name" >&2
  "$exe" --benchmark_min_time=0.2 --benchmark_out="$out/$name.json" --benchmark_out_format=json | tee "$out/$name.txt"
done
[ -f "$here/scripts/bench_hashing.py" ] && python3 "$here/scripts/bench_hashing.py" | tee "$out/hashing_numpy.txt" || true
[ -f "$here/scripts/bench_gather_numpy.py" ] && python3 "$here/scripts/bench_gather_numpy.py" | tee "$out/gather_numpy.txt" || true

# The headline: every variant on every profile, table + JSON + plot.
echo "== throughput_loss" >&2
"$tl" --json "$out/throughput_loss.json" --plot "$here/docs/throughput_loss.png" | tee "$out/throughput_loss.txt"
