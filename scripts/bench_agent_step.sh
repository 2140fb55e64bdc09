#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench_agent_step.sh - run bench/agent_step and print one table: step latency p50/p99/p99.9
# per configuration, emulated latency and batch, next to the same-run memcpy baseline.
# Usage: scripts/bench_agent_step.sh [BUILD_DIR=build] [extra Google Benchmark args...]
# Environment (see bench/agent_step/agent_step.cpp): EP_BENCH_TABLE_BYTES, EP_BENCH_CONFIGS,
# EP_BENCH_LATENCIES, EP_BENCH_GATHER_THREADS, EP_BENCH_CACHE_ROWS. Output JSON:
# $EP_BENCH_OUT (default agent_step.json in the current directory).
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exe=$build/bench/agent_step/agent_step
[ -x "$exe" ] || { echo "build $exe first (ninja -C $build)" >&2; exit 1; }
out=${EP_BENCH_OUT:-agent_step.json}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc), table bytes: ${EP_BENCH_TABLE_BYTES:-1G} per table" >&2
"$exe" --benchmark_min_time=1 --benchmark_out="$out" --benchmark_out_format=json "$@" >&2
python3 - "$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{'benchmark':44} {'p50 us':>9} {'p99 us':>9} {'p99.9 us':>9} {'memcpy us':>9} {'vs memcpy':>9} {'GB/s':>6} {'n':>6}")
for b in d["benchmarks"]:
    if "p50_us" not in b:
        print(f"{b['name']:44} skipped: {b.get('error_message', '')}")
        continue
    name = b["name"].replace("/real_time", "")
    print(f"{name:44} {b['p50_us']:9.1f} {b['p99_us']:9.1f} {b['p999_us']:9.1f} {b['memcpy_p50_us']:9.1f} "
          f"{b['vs_memcpy']:9.2f} {b['GBps']:6.2f} {int(b['samples']):6d} {b.get('label', '')}")
EOF
