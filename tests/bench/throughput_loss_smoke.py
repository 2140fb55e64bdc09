#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# throughput_loss_smoke.py - run throughput_loss on a tiny pool for a few steps (1 and 2 hosts) and check its JSON.
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
    print("ok")


if __name__ == "__main__":
    main()
