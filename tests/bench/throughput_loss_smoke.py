#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# throughput_loss_smoke.py - run throughput_loss on a tiny pool for a few steps (1 and 2 hosts) and check its JSON,
# its limit probe and page size; replay a token trace (scripts/make_trace.py) and build a hot set from it.
import json
import os
import subprocess
import sys
import tempfile


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "tl.json")
        cmd = [exe, "--quick", "--profile", "8b-dense", "--variants", "local,cxl-750-hot,hosts-2",
               "--sequences", "16", "--length-scale", "0.05", "--max-steps", "30", "--pool-size", "64MiB",
               "--no-progress", "--no-rt", "--json", out]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=50)
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        if p.returncode != 0:
            sys.exit("throughput_loss exited with %d" % p.returncode)
        res = json.load(open(out))
        run = res["runs"][0]
        assert run["profile"] == "8b-dense", run["profile"]
        assert run["baseline"]["tokens_per_s"] > 0
        names = [v["variant"] for v in run["variants"]]
        assert names == ["local", "cxl-750-hot", "hosts-2"], names
        for v in run["variants"]:
            assert not v["error"], v["error"]
            assert v["tokens_per_s"] > 0, v
            assert v["tokens_per_s"] <= v["baseline_tokens_per_s"] * 1.0001, v  # never faster than resident
            assert -0.01 <= v["loss_pct"] < 100, v
            assert v["rows_per_s"] > 0, v
        hot = run["variants"][1]
        assert hot["hit_rate"] is not None and 0 <= hot["hit_rate"] <= 1, hot
        assert len(run["variants"][2]["per_host"]) == 2
        slots = sorted(h["host_slot"] for h in run["variants"][2]["per_host"])
        assert slots == [0, 1], slots
        assert "variant" in p.stdout and "resident" in p.stdout, "no table on stdout"
        # The limit probe: same rows, same threads, same mapping; a ratio next to the agent's figure.
        assert run["page_size"] in (4096, 2 << 20), run["page_size"]
        for v in run["variants"]:
            assert v["probe_p50_us"] > 0 and v["probe_p99_us"] >= v["probe_p50_us"], v
            assert v["ticket_p50_us"] > 0, v
            assert abs(v["vs_probe_p50"] - v["ticket_p50_us"] / v["probe_p50_us"]) < 1e-6, v
        assert "limit probe" in p.stdout and "x_p50" in p.stdout, "no probe table on stdout"
        assert ("%s pages" % ("2 MiB" if run["page_size"] == 2 << 20 else "4 KiB")) in p.stdout, "no page size"

        # A token trace: the same schedule with real token ids.
        src = os.path.join(d, "text.txt")
        with open(src, "w") as f:
            f.write(("the quick brown fox jumps over the lazy dog. " * 40 + "\n\n") * 20)
        trace = os.path.join(d, "trace.jsonl")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        mk = subprocess.run([sys.executable, os.path.join(root, "scripts", "make_trace.py"), "--byte-level",
                             "--out", trace, src], capture_output=True, text=True, timeout=30)
        assert mk.returncode == 0, mk.stderr
        lines = open(trace).read().splitlines()
        assert len(lines) == 20 and all(json.loads(l)["tokens"] for l in lines), lines[:2]
        out2 = os.path.join(d, "tl2.json")
        cmd2 = [exe, "--profile", "8b-dense", "--variants", "local", "--sequences", "8", "--length-scale", "0.05",
                "--max-steps", "20", "--pool-size", "64MiB", "--no-progress", "--no-rt", "--json", out2,
                "--trace", trace]
        p = subprocess.run(cmd2, capture_output=True, text=True, timeout=40)
        assert p.returncode == 0, p.stdout + p.stderr
        run = json.load(open(out2))["runs"][0]
        assert run["workload"]["tokens"] == "trace", run["workload"]
        assert run["workload"]["trace"]["sequences"] == 20, run["workload"]["trace"]
        assert run["variants"][0]["tokens_per_s"] > 0 and not run["variants"][0]["error"]
        assert "trace " + trace in p.stdout
        # A bad trace is refused with one line naming the file and line.
        bad = os.path.join(d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"tokens": [1, 2]}\n{"tokens": [3, 99999999]}\n')
        p = subprocess.run(cmd2[:-1] + [bad], capture_output=True, text=True, timeout=40)
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert "line 2" in p.stderr and "99999999" in p.stderr and p.stderr.count("\n") == 1, p.stderr

        # A static hot set from the trace: the most looked-up rows first, counts non-increasing.
        cli = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(exe))), "pool_manager", "engrampool")
        model = os.path.join(root, "examples", "models", "engram_demo_v1.json")
        hot = os.path.join(d, "hot.txt")
        h = subprocess.run([cli, "hotset", "--trace", trace, "--model", model, "--rows", "50", "--out", hot,
                            "--json"], capture_output=True, text=True, timeout=30)
        assert h.returncode == 0, h.stderr
        hj = json.loads(h.stdout)
        rows = [l.split() for l in open(hot) if not l.startswith("#")]
        assert len(rows) == 50 == hj["rows"], (len(rows), hj)
        counts = [int(r[2]) for r in rows]
        assert counts == sorted(counts, reverse=True) and counts[0] > 1, counts[:5]
        assert {int(r[0]) for r in rows} <= {1, 15}, rows[:3]
        assert 0 < hj["lookups_covered"] <= 1 and sum(counts) == round(hj["lookups_covered"] * hj["lookups"])

        # emulate --trace: hosts serve the trace's ids and every row still verifies.
        small = os.path.join(d, "small.json")
        m = json.load(open(model))
        m["engram_vocab_size"] = [5000, 5000]
        m["name"] = "trace-smoke"
        json.dump(m, open(small, "w"))
        uri = "emul:tl-smoke-%d?pages=4k" % os.getpid()
        try:
            c = subprocess.run([cli, "create", uri, "--size", "64M"], capture_output=True, text=True, timeout=30)
            assert c.returncode == 0, c.stderr
            e = subprocess.run([cli, "emulate", uri, "--model", small, "--hosts", "2", "--steps", "20", "--prepare",
                                "--trace", trace, "--json"], capture_output=True, text=True, timeout=60)
            assert e.returncode == 0, e.stdout + e.stderr
            ej = json.loads(e.stdout)
            assert ej["total"]["wrong_rows"] == 0 and ej["total"]["rows_checked"] > 0, ej["total"]
            e = subprocess.run([cli, "emulate", uri, "--model", small, "--hosts", "1", "--steps", "5",
                                "--trace", bad], capture_output=True, text=True, timeout=60)
            assert e.returncode != 0 and "line 2" in e.stderr, e.stderr
        finally:
            subprocess.run([cli, "destroy", uri], capture_output=True, timeout=30)
    print("ok")


if __name__ == "__main__":
    main()
