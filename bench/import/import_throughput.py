#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# import_throughput.py - `engrampool import --checkpoint` against the read rate of the same
# shard files on the same disk, in the same run (issue 11's goal: import >= 80 % of it).
#
#   bench/import/import_throughput.py [--vocab 100000] [--dir DIR] [--rounds 2]
#       [--layout packed|planar] [--cold|--warm] [--json OUT.json]
#
# It writes a DeepSeek-V4.1-shaped checkpoint (scripts/make_v41_checkpoint.py; --vocab
# 100000 gives two tables of ~2.4 M rows, ~1.3 GB of shards) under DIR (default: a folder
# under /var/tmp, i.e. the root disk, not tmpfs), then for each round:
#   1. the baseline: a plain loop reading every shard file in 4 MiB read() calls;
#   2. `engrampool import file:POOL --checkpoint DIR` into a fresh pool on /dev/shm.
# Cold (default when run as root): `sync; echo 3 > /proc/sys/vm/drop_caches` before each
# side, so both read the disk. Warm: both read the page cache (the import's CPU cost).
# The ratio is import rate / read rate, both over the bytes of the shard files that hold
# the Engram tensors (the import reads nothing else of substance).
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def read_files(paths):
    """The baseline: read every byte of every file with plain read() calls."""
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    total = 0
    t0 = time.perf_counter()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            while True:
                n = os.readv(fd, [view])
                if n <= 0:
                    break
                total += n
        finally:
            os.close(fd)
    return total, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "pool_manager", "engrampool"))
    ap.add_argument("--vocab", type=int, default=100000, help="engram_vocab_size of the generated checkpoint")
    ap.add_argument("--dir", help="checkpoint folder (kept; made when missing)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--layout", help="passed to import as --layout (when the CLI has it)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--cold", action="store_true", help="drop the page cache before each side (root)")
    g.add_argument("--warm", action="store_true", help="read from the page cache on both sides")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    cold = a.cold or (not a.warm and os.geteuid() == 0)
    if cold and os.geteuid() != 0:
        sys.exit("import_throughput: --cold needs root (it writes /proc/sys/vm/drop_caches)")
    if not os.access(a.cli, os.X_OK):
        sys.exit(f"import_throughput: {a.cli} is not built (meson compile -C build)")

    ckpt = a.dir or os.path.join("/var/tmp", f"engrampool-import-bench-v{a.vocab}")
    if not os.path.exists(os.path.join(ckpt, "model.safetensors.index.json")):
        print(f"== writing a V4.1-shaped checkpoint to {ckpt} (vocab {a.vocab})", file=sys.stderr)
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_v41_checkpoint.py"), ckpt,
                        "--cli", a.cli, "--vocab", str(a.vocab)], check=True, stdout=subprocess.DEVNULL)
    index = json.load(open(os.path.join(ckpt, "model.safetensors.index.json")))
    shards = sorted({os.path.join(ckpt, s) for k, s in index["weight_map"].items() if ".engram.embed." in k})
    shard_bytes = sum(os.path.getsize(p) for p in shards)

    pool_dir = tempfile.mkdtemp(prefix="engrampool-import-bench-", dir="/dev/shm")
    pool = os.path.join(pool_dir, "pool")
    size_mib = (shard_bytes * 3 // 2) // (1 << 20) + 256
    size_mib += (-size_mib) % 2
    results = []
    try:
        for r in range(a.rounds):
            if cold:
                drop_caches()
            elif r == 0:
                read_files(shards)  # bring the files into the page cache
            nread, t_read = read_files(shards)
            subprocess.run([a.cli, "create", "file:" + pool, "--size", f"{size_mib}M", "--force"], check=True,
                           stdout=subprocess.DEVNULL)
            if cold:
                drop_caches()
            cmd = [a.cli, "import", "file:" + pool, "--checkpoint", ckpt, "--json"]
            if a.layout:
                cmd += ["--layout", a.layout]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            t_imp = time.perf_counter() - t0
            if p.returncode != 0:
                sys.exit(f"import_throughput: import failed: {p.stderr.strip()}")
            read_gbs = nread / t_read / 1e9
            imp_gbs = shard_bytes / t_imp / 1e9
            row = {"round": r + 1, "read_s": round(t_read, 3), "read_gbs": round(read_gbs, 3),
                   "import_s": round(t_imp, 3), "import_gbs": round(imp_gbs, 3),
                   "ratio": round(imp_gbs / read_gbs, 3)}
            results.append(row)
            print(f"round {r + 1}: read {nread / 1e9:.2f} GB in {t_read:.2f} s = {read_gbs:.2f} GB/s; "
                  f"import {t_imp:.2f} s = {imp_gbs:.2f} GB/s; import/read = {100 * row['ratio']:.0f} %")
            os.unlink(pool)
    finally:
        shutil.rmtree(pool_dir, ignore_errors=True)

    best = max(results, key=lambda x: x["ratio"])
    summary = {"machine": cpu_model(), "cpus": os.cpu_count(), "cache": "cold" if cold else "warm",
               "checkpoint": ckpt, "shard_bytes": shard_bytes, "layout": a.layout or "default",
               "rounds": results, "median_ratio": sorted(x["ratio"] for x in results)[len(results) // 2],
               "goal_ratio": 0.8}
    print(f"machine: {summary['machine']}, {summary['cpus']} CPUs; {summary['cache']} cache; "
          f"{shard_bytes / 1e9:.2f} GB of shards; median import/read {100 * summary['median_ratio']:.0f} % "
          f"(goal >= 80 %; best round {100 * best['ratio']:.0f} %)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
