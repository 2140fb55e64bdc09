#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# plot_throughput.py - PNG of throughput_loss results (loss vs emulated latency, loss vs hosts) with gnuplot.
#
# Usage: scripts/plot_throughput.py RESULT.json OUT.png
# Needs the Debian package gnuplot-nox (or gnuplot); python3 standard library only.
import json
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_throughput.py RESULT.json OUT.png")
    src, png = sys.argv[1], sys.argv[2]
    gp = shutil.which("gnuplot")
    if not gp:
        sys.exit("plot_throughput.py: gnuplot not found (apt-get install gnuplot-nox)")
    res = json.load(open(src))
    tmp = tempfile.mkdtemp(prefix="ep-plot-")
    lat_plots, host_plots = [], []
    for i, run in enumerate(res["runs"]):
        name = run["profile"]
        lat, hosts = [], []
        for v in run["variants"]:
            if v.get("error"):
                continue
            if v["hosts"] == 1 and not v["hot_tier"]:
                lat.append((v["latency_ns"], v["loss_pct"]))
            if not v["hot_tier"] and (v["hosts"] > 1 or v["latency_ns"] == max(
                    [x["latency_ns"] for x in run["variants"] if x["hosts"] > 1] or [-1])):
                hosts.append((v["hosts"], v["loss_pct"]))
        for pts, out in ((sorted(lat), lat_plots), (sorted(hosts), host_plots)):
            if len(pts) >= 1:
                f = os.path.join(tmp, "%s-%d.dat" % ("lat" if out is lat_plots else "hosts", i))
                with open(f, "w") as fh:
                    for x, y in pts:
                        fh.write("%g %g\n" % (x, y))
                out.append("'%s' using 1:2 with linespoints lw 2 pt 7 title '%s'" % (f, name))
    hot = [(run["profile"], v) for run in res["runs"] for v in run["variants"] if v["hot_tier"] and not v.get("error")]
    m = res.get("machine", {})
    script = [
        "set terminal pngcairo size 1400,560 font 'sans,11'" if "pngcairo" in terminals(gp) else
        "set terminal png size 1400,560",
        "set output '%s'" % png,
        "set multiplot layout 1,2 title 'Engram throughput loss vs resident baseline (%s, %s cores; GPU modeled)'" % (
            m.get("cpu", "?").replace("'", ""), m.get("cores", "?")),
        "set grid", "set key top left", "set ylabel 'throughput loss (%)'", "set yrange [0:*]",
        "set xlabel 'emulated CXL latency (ns), 0 = local memory; 1 host'",
        "plot " + (", ".join(lat_plots) if lat_plots else "0 notitle"),
        "set xlabel 'emulated hosts sharing one pool and one switch'",
        "set logscale x 2", "set xtics (1, 2, 4, 8, 16, 32, 64)", "set xrange [0.8:10]",
        "plot " + (", ".join(host_plots) if host_plots else "0 notitle"),
        "unset multiplot",
    ]
    for prof, v in hot:
        print("hot tier: %s %s loss %.2f%% hit rate %.1f%%" % (prof, v["variant"], v["loss_pct"],
                                                              100 * (v["hit_rate"] or 0)))
    subprocess.run([gp], input="\n".join(script), text=True, check=True)
    shutil.rmtree(tmp, ignore_errors=True)


def terminals(gp):
    try:
        return subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True).stderr
    except OSError:
        return ""


if __name__ == "__main__":
    main()
