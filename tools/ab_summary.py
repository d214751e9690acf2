#!/usr/bin/env python3
"""Summarises an ab-bench.sh directory (NAME-ROUND.json files) as one JSON:
per build, partition, mode and tower, the median of each round and the mean
of those medians.  Usage: ab_summary.py DIR [NOTE] > summary.json"""
import glob, json, os, re, sys

d = sys.argv[1]
out = {"source": os.path.basename(os.path.normpath(d)), "builds": {}}
if len(sys.argv) > 2:
    out["note"] = sys.argv[2]
for f in sorted(glob.glob(os.path.join(d, "*.json"))):
    m = re.match(r"(.+)-(\d+)\.json$", os.path.basename(f))
    if not m:
        continue
    j = json.load(open(f))
    for k in ("gpu", "gpu_sms", "commit", "date"):
        out.setdefault(k, j.get(k))
    b = out["builds"].setdefault(m.group(1), {"pool_fold": j.get("pool_fold"), "gemv": j.get("gemv"), "runs": {}})
    for p in j["partitions"]:
        for r in p["modes"]:
            key = "%s sms %s %s" % (p["sms"], r["mode"], r["what"])
            b["runs"].setdefault(key, []).append(r["median_ms"])
for b in out["builds"].values():
    b["mean_of_medians_ms"] = {k: round(sum(v) / len(v), 4) for k, v in b["runs"].items()}
json.dump(out, sys.stdout, indent=1)
print()
