#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# bench_python.py - what the Python binding adds, measured against the C++ calls in the
# same process (not a test):
#   1. one decode step at batch 64 (prefetch + wait + release): Python loop over
#      engrampool.Agent vs the same C ABI calls looped in C++ (_bench_prefetch_cpp);
#      goal: <= 5 us extra per step. Controls: a Python loop making one C++ call per
#      step (all three calls inside), and the C++ loop with 1 us / 3 us of busy time
#      between steps: the agent's step time grows when its caller pauses between steps
#      at all, so part of "Python minus C++" is that, not the binding;
#   2. lookup_into (ep_pool_read_rows_as into a caller's array) vs the C++ loop over the
#      same call, for a decode step's rows (64 tokens x 24 heads) and a prefill's.
# Usage: PYTHONPATH=build/python:python /usr/bin/python3 bench/python/bench_python.py [--rows-per-head N]
import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid

import numpy as np

import engrampool
from engrampool import _engrampool

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CLI = os.path.join(os.environ.get("EP_BUILD_ROOT", os.path.join(ROOT, "build")), "pool_manager", "engrampool")


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs visible, Python %s, numpy %s" % (cpu, os.cpu_count(), platform.python_version(),
                                                       np.__version__)


def best(fn, repeats):
    return min(fn() for _ in range(repeats))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=20011, help="engram_vocab_size (rows per head, about)")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp()
    path = "/dev/shm/ep-bench-py-%s" % uuid.uuid4().hex[:8]
    uri = "file:" + path
    model = {"name": "bench-v41", "engram_vocab_size": args.vocab, "max_ngram_size": 4, "n_embed_per_ngram": 2048,
             "n_head_per_ngram": 8, "layer_ids": [1, 14], "pad_id": 2, "seed": 0, "tokenizer_vocab_size": 129280,
             "compressed_vocab_size": 129280, "dtype": "fp8-e4m3", "scale": {"dtype": "e8m0", "block": 32}}
    mpath = os.path.join(tmp, "model.json")
    with open(mpath, "w") as f:
        json.dump(model, f)
    rows_mib = 24 * args.vocab * 264 / 2**20
    size = int(2 * rows_mib + 64) // 2 * 2
    subprocess.run([CLI, "create", uri, "--size", "%dM" % size], check=True, capture_output=True)
    try:
        for lid in model["layer_ids"]:
            subprocess.run([CLI, "import", uri, "--model", mpath, "--layer", str(lid), "--random"], check=True,
                           capture_output=True)
        run(uri, mpath, args)
    finally:
        os.unlink(path)


def run(uri, mpath, args):
    print("machine: " + machine())
    agent = engrampool.Agent(uri, mpath, register=False)
    rng = np.random.default_rng(0)
    cpp = _engrampool._bench_prefetch_cpp
    for B in (64, 1):
        tok = rng.integers(0, 129280, size=(B, 1))
        flat = tok.reshape(-1).copy()
        seqs = np.arange(B, dtype=np.uint64) + 10000 * B
        t = agent.prefetch(tok, seq_ids=seqs, flags=engrampool.SEQ_START)
        agent.release(t)

        def py_loop():
            prefetch, release = agent.prefetch, agent.release
            t0 = time.perf_counter()
            for _ in range(args.iters):
                tk = prefetch(tok, seq_ids=seqs)
                tk.wait()
                release(tk)
            return (time.perf_counter() - t0) / args.iters

        def py_cpp_step_loop():  # control: Python loop, one whole step per call into C++
            t0 = time.perf_counter()
            for _ in range(args.iters):
                cpp(agent, flat, 1, seqs)
            return (time.perf_counter() - t0) / args.iters

        # The same sequences on both sides; interleaved runs, median of the per-run differences
        # (the machine is shared: a difference is taken only between neighbouring runs).
        py_loop(), cpp(agent, flat, args.iters, seqs)  # warm up
        rows = {"py": [], "cpp": [], "py_step": [], "gap1": [], "gap3": []}
        for _ in range(args.repeats):
            c = cpp(agent, flat, args.iters, seqs)
            rows["cpp"].append(c)
            rows["py"].append(py_loop() - c)
            if B == 64:
                rows["py_step"].append(py_cpp_step_loop() - c)
                rows["gap1"].append(cpp(agent, flat, args.iters, seqs, False, 1000) - 1e-6 - c)
                rows["gap3"].append(cpp(agent, flat, args.iters, seqs, False, 3000) - 3e-6 - c)
        med = {k: statistics.median(v) * 1e6 for k, v in rows.items() if v}
        print("decode step, batch %d (prefetch + wait(all) + release), median of %d interleaved runs x %d steps:"
              % (B, args.repeats, args.iters))
        print("  C++ loop over the C ABI        : %8.2f us" % med["cpp"])
        print("  Python (engrampool)            : %8.2f us" % (med["cpp"] + med["py"]))
        print("  Python overhead                : %8.2f us per step (goal <= 5 us)" % med["py"])
        if B == 64:
            print("  controls, extra over the C++ loop in the same runs:")
            print("    Python loop, one C++ call per step (prefetch+wait+release inside): %8.2f us" % med["py_step"])
            print("    C++ loop, 1 us busy between steps (less the 1 us)                : %8.2f us" % med["gap1"])
            print("    C++ loop, 3 us busy between steps (less the 3 us)                : %8.2f us" % med["gap3"])

    pool = engrampool.Pool(uri)
    table = "bench-v41/layer1"
    t1 = pool.table(table)
    for n_tok, iters in ((64, 5000), (2048, 200)):
        ids = rng.integers(0, t1.rows, size=n_tok * 24).astype(np.uint64)
        for fmt, dt, width in (("packed", np.uint8, 264), ("f32", np.float32, 256)):
            out = np.empty((len(ids), width), dtype=dt)
            iters_fmt = iters if fmt == "packed" else max(2, iters // 100)  # f32 dequantizes: slower

            def py_gather():
                t0 = time.perf_counter()
                for _ in range(iters_fmt):
                    agent.lookup_into(0, ids, out, format=fmt)
                return (time.perf_counter() - t0) / iters_fmt

            def cpp_gather():
                return _engrampool._bench_read_rows_cpp(pool, table, ids, {"packed": 0, "f32": 3}[fmt], out.nbytes,
                                                        iters_fmt)
            py_gather(), cpp_gather()
            py_s = best(py_gather, args.repeats)
            cpp_s = best(cpp_gather, args.repeats)
            gb = len(ids) * 264 / 1e9
            print("lookup_into %-6s %5d rows (%4d tokens x 24): C++ %8.2f us (%5.2f GB/s of rows), Python %8.2f us "
                  "(%5.2f GB/s), +%.2f us" % (fmt, len(ids), n_tok, cpp_s * 1e6, gb / cpp_s, py_s * 1e6, gb / py_s,
                                             (py_s - cpp_s) * 1e6))
    agent.close()
    pool.close()


if __name__ == "__main__":
    main()
