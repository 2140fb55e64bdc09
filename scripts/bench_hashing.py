#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# bench_hashing.py - tokens/s of bench/hashing (C++) against the same workloads in numpy; prints the ratio.
#
#   scripts/bench_hashing.py [--build build] [--min-time 0.5] [--cpu 1] [--repeats 5]
#
# Workloads (identical to bench/hashing.cpp): configs "demo" (646400, 8 heads, orders
# 2..3, layers 1 and 15) and "27b" (2262400, same shape), V' = 129280, row ids out;
# batch = 8 sequences x 512 tokens per call; stream = 256 sequences x 1 new token per
# call. numpy runs scripts/engram_numpy.py (whole-array ops as the reference does);
# its streaming step hashes each sequence's last N ids as a [256, N] batch and keeps
# the last position. Both sides run single-threaded and are timed in CPU time
# (so a busy machine does not skew the ratio); --cpu pins both to one CPU.
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engram_numpy import EngramNumpy  # noqa: E402

VOCAB = 129280
CONFIGS = {
    "demo": dict(engram_vocab_size=[646400, 646400], max_ngram_size=3, n_head_per_ngram=8,
                 n_embed_per_ngram=512, layer_ids=[1, 15], pad_id=2, seed=0,
                 tokenizer_vocab_size=VOCAB),
    "27b": dict(engram_vocab_size=[2262400, 2262400], max_ngram_size=3, n_head_per_ngram=8,
                n_embed_per_ngram=1280, layer_ids=[1, 15], pad_id=2, seed=0,
                tokenizer_vocab_size=VOCAB),
}


def numpy_rows(e, x):
    """Row ids of every layer for a [B, T] batch (hash + head offsets)."""
    h = e.hash(x)
    return [h[lid] + np.asarray(e.offsets[lid], dtype=np.int64) for lid in e.layer_ids]


def time_best(fn, min_time, repeats):
    best = float("inf")
    for _ in range(repeats):
        # CPU time of this thread, as Google Benchmark reports items_per_second.
        n, start = 0, time.thread_time()
        while True:
            fn()
            n += 1
            el = time.thread_time() - start
            if el >= min_time:
                break
        best = min(best, el / n)
    return best


def numpy_tokens_per_s(cfg, mode, min_time, repeats):
    e = EngramNumpy(cfg)
    rng = np.random.default_rng(1)
    if mode == "batch":
        x = rng.integers(0, VOCAB, size=(8, 512), dtype=np.int64)
        sec = time_best(lambda: numpy_rows(e, x), min_time, repeats)
        return x.size / sec
    n = cfg["max_ngram_size"]
    hist = np.full((256, n - 1), e.pad, dtype=np.int64)
    new = rng.integers(0, VOCAB, size=(256, 1), dtype=np.int64)
    state = {"hist": hist}

    def step():
        window = np.concatenate([state["hist"], new], axis=1)
        rows = [r[:, -1, :] for r in numpy_rows(e, window)]
        state["hist"] = window[:, 1:]
        return rows

    sec = time_best(step, min_time, repeats)
    return 256 / sec


def main():
    ap = argparse.ArgumentParser(description="C++ Engram hashing vs numpy, tokens/s per core")
    ap.add_argument("--build", default="build")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=None, help="pin both sides to this CPU")
    args = ap.parse_args()

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    exe = os.path.join(args.build, "bench", "hashing")
    cmd = [exe, "--benchmark_format=json", f"--benchmark_min_time={args.min_time}",
           f"--benchmark_repetitions={args.repeats}", "--benchmark_report_aggregates_only=true"]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    cpp = {}
    for b in res["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        mode, cfg, kernel = b["run_name"].split("/")[:3]
        cpp[(mode, cfg, kernel)] = b["items_per_second"]

    print(f"{'workload':<14}{'numpy tok/s':>14}" +
          "".join(f"{k + ' tok/s':>16}{'x':>8}" for k in ("scalar", "avx2", "avx512")))
    worst = None
    for cfg_name, cfg in CONFIGS.items():
        for mode in ("batch", "stream"):
            npv = numpy_tokens_per_s(cfg, mode, args.min_time, args.repeats)
            line = f"{mode + '/' + cfg_name:<14}{npv:>14.3e}"
            for k in ("scalar", "avx2", "avx512"):
                v = cpp.get((mode, cfg_name, k))
                line += f"{v:>16.3e}{v / npv:>7.1f}x" if v else f"{'-':>16}{'-':>8}"
            best = max(v for (m, c, _), v in cpp.items() if m == mode and c == cfg_name)
            worst = best / npv if worst is None else min(worst, best / npv)
            print(line)
    print(f"lowest ratio of the best kernel to numpy: {worst:.1f}x (goal >= 50x per core)")


if __name__ == "__main__":
    main()
