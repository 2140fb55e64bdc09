#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# bench_gather_numpy.py - numpy (and torch) row gathers on the workload of bench/gather; with --compare, the ratios.
#
#   scripts/bench_gather_numpy.py                    # numpy table[idx] / np.take (+ torch) GB/s
#   scripts/bench_gather_numpy.py --compare [--build build]
#                                                   # also runs bench/gather and prints
#                                                   # gather vs numpy and gather vs memcpy
#
# Workload (identical to bench/gather): a uint8 table of EP_BENCH_TABLE_BYTES (default
# 2 GiB, far past the LLC) viewed as [rows, row_bytes]; each call gathers
# EP_BENCH_BATCH_BYTES (default 4 MiB) worth of random rows; the row ids walk through
# a long random list so no batch hits rows the previous ones left in the cache.
# numpy variants: `table[idx]` (what a user writes; allocates the result) and
# `np.take(table, idx, axis=0, out=buf)` (into a preallocated staging buffer). torch,
# when importable: `torch.index_select(t, 0, idx, out=buf)` into a pinned buffer plus
# the copy to the GPU when CUDA is available. All are single-threaded, as numpy is, and
# timed in the thread's CPU time (best of --repeats) so a busy machine does not skew
# them; the comparison uses bench/gather's 1-thread CPU-time figure (cpu_GBps) for the
# same reason, and its all-threads wall-clock figure for the all-cores ratio.
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = [64, 128, 256, 264, 320, 512, 1024, 2048, 4096]
ID_LIMIT = 16 << 20


def env_bytes(name, default):
    v = os.environ.get(name, "")
    if not v:
        return default
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(v[-1].lower(), 1)
    return int(float(v[:-1] if mult > 1 else v) * mult)


def time_best(fn, min_time, repeats, nbytes):
    """Best GB/s over `repeats` rounds of at least `min_time` seconds each."""
    best = 0.0
    for _ in range(repeats):
        n, start = 0, time.thread_time()
        while True:
            fn()
            n += 1
            el = time.thread_time() - start
            if el >= min_time:
                break
        best = max(best, n * nbytes / el / 1e9)
    return best


class Walker:
    """Consecutive windows of a long random id list (wrapping), like the C++ bench."""

    def __init__(self, ids, count):
        self.ids, self.count, self.pos = ids, count, 0

    def next(self):
        if self.pos + self.count > len(self.ids):
            self.pos = 0
        w = self.ids[self.pos:self.pos + self.count]
        self.pos += self.count
        return w


def load_torch():
    try:
        import torch  # noqa: F401
        return torch
    except Exception:
        return None


def numpy_figures(buf, table_bytes, batch_bytes, sizes, min_time, repeats, torch):
    out = {}
    for rb in sizes:
        rows = table_bytes // rb
        table = buf[:rows * rb].reshape(rows, rb)
        count = max(64, batch_bytes // rb)
        rng = np.random.default_rng(rb)
        ids = rng.integers(0, rows, size=min(rows, ID_LIMIT), dtype=np.int64)
        nbytes = count * rb
        w = Walker(ids, count)
        r = {"fancy": time_best(lambda: table[w.next()], min_time, repeats, nbytes)}
        staging = np.empty((count, rb), dtype=np.uint8)
        r["take"] = time_best(lambda: np.take(table, w.next(), axis=0, out=staging), min_time, repeats, nbytes)
        if torch is not None:
            tt = torch.from_numpy(table)
            tids = torch.from_numpy(ids)
            cuda = torch.cuda.is_available()
            pinned = torch.empty((count, rb), dtype=torch.uint8, pin_memory=cuda)
            dev = torch.empty((count, rb), dtype=torch.uint8, device="cuda") if cuda else None
            tw = Walker(tids, count)

            def torch_step():
                torch.index_select(tt, 0, tw.next(), out=pinned)
                if cuda:
                    dev.copy_(pinned, non_blocking=True)
                    torch.cuda.synchronize()

            r["torch"] = time_best(torch_step, min_time, repeats, nbytes)
            r["torch_what"] = "index_select+pinned H2D" if cuda else "index_select (no CUDA)"
        out[rb] = r
    return out


def run_gather(exe, sizes, min_time):
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} not found: build it first (ninja -C build bench/gather/gather)")
    nproc = os.cpu_count() or 1
    pattern = "gather/(%s)/threads:(1|%d)/nt:0" % ("|".join(map(str, sizes)), nproc)
    cmd = [exe, f"--benchmark_filter={pattern}", "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    figs = {}
    for b in json.loads(res.stdout)["benchmarks"]:
        parts = b["name"].split("/")
        rb, threads = int(parts[1]), int(parts[2].split(":")[1])
        figs[(rb, threads)] = b
    return figs, nproc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    ap.add_argument("--compare", action="store_true", help="also run bench/gather and print the ratios")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    ap.add_argument("--exe", help="the gather benchmark (default BUILD/bench/gather/gather)")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="row sizes in bytes, comma-separated")
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per numpy round")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args()

    sizes = [int(s) for s in args.sizes.split(",")]
    table_bytes = env_bytes("EP_BENCH_TABLE_BYTES", 2 << 30) & ~4095
    batch_bytes = env_bytes("EP_BENCH_BATCH_BYTES", 4 << 20)
    torch = load_torch()

    gather = None
    if args.compare:
        # First, while numpy's table is not yet allocated: the two never share memory.
        exe = args.exe or os.path.join(args.build, "bench", "gather", "gather")
        gather, nproc = run_gather(exe, sizes, 0.2)

    print(f"table {table_bytes / 2**30:.2f} GiB, batch {batch_bytes / 2**20:.1f} MiB per call, "
          f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else ", torch not importable"))
    buf = np.empty(table_bytes, dtype=np.uint8)
    buf[:] = 7   # touch every page before timing
    figs = numpy_figures(buf, table_bytes, batch_bytes, sizes, args.min_time, args.repeats, torch)
    del buf

    head = f"{'row B':>6} {'numpy[idx]':>11} {'np.take':>9}" + (f" {'torch':>9}" if torch else "")
    if gather:
        head += f" {'gather 1T':>10} {'memcpy 1T':>10} {'1T/numpy':>9} {'1T/memcpy':>10}" \
                f" {'gather %dT' % nproc:>10} {'memcpy %dT' % nproc:>10} {'%dT/numpy' % nproc:>9} {'%dT/memcpy' % nproc:>10}"
    print(head + "   (GB/s)")
    result = []
    for rb in sizes:
        r = figs[rb]
        line = f"{rb:>6} {r['fancy']:>11.2f} {r['take']:>9.2f}" + (f" {r['torch']:>9.2f}" if torch else "")
        row = {"row_bytes": rb, "numpy_fancy_GBps": r["fancy"], "numpy_take_GBps": r["take"]}
        if torch:
            row["torch_GBps"] = r["torch"]
            row["torch_variant"] = r["torch_what"]
        if gather:
            g1 = gather[(rb, 1)]["cpu_GBps"]
            m1 = gather[(rb, 1)]["cpu_memcpy_GBps"]
            gn = gather[(rb, nproc)]["GBps"]
            mn = gather[(rb, nproc)]["memcpy_GBps"]
            line += f" {g1:>10.2f} {m1:>10.2f} {g1 / r['fancy']:>8.2f}x {g1 / m1:>10.0%}" \
                    f" {gn:>10.2f} {mn:>10.2f} {gn / r['fancy']:>8.2f}x {gn / mn:>10.0%}"
            row.update({"gather_1t_cpu_GBps": g1, "memcpy_1t_cpu_GBps": m1, f"gather_{nproc}t_GBps": gn,
                        f"memcpy_{nproc}t_GBps": mn, "gather_1t_vs_numpy": g1 / r["fancy"],
                        "gather_1t_vs_memcpy": g1 / m1, f"gather_{nproc}t_vs_numpy": gn / r["fancy"],
                        f"gather_{nproc}t_vs_memcpy": gn / mn})
        print(line)
        result.append(row)
    if gather:
        print("goals: gather >= 3x numpy table[idx]; gather >= 70% of memcpy for rows >= 256 B "
              "(memcpy measured in the same bench run, same threads). 1T columns: CPU time; "
              f"{nproc}T columns: wall clock")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table_bytes": table_bytes, "batch_bytes": batch_bytes, "rows": result}, f, indent=1)


if __name__ == "__main__":
    main()
