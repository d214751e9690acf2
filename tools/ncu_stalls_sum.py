#!/usr/bin/env python3
"""Summarises tools/ncu-stalls.sh output: per kernel (joined with its op by
launch order) the warp cycles per issued instruction split by stall reason,
and over all kernels the share of each reason, weighted by kernel time.

    tools/ncu_stalls_sum.py STALLS-RAW.csv OPS.csv OUT.json
"""
import csv
import io
import json
import sys

PREFIX, SUFFIX = "smsp__average_warps_issue_stalled_", "_per_issue_active.ratio"


def num(s):
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    raw = open(sys.argv[1]).read()
    start = raw.find('"ID"')
    if start < 0:
        sys.exit("ncu_stalls_sum: no CSV table in " + sys.argv[1])
    rows = list(csv.reader(io.StringIO(raw[start:])))
    head, units, data = rows[0], rows[1], rows[2:]
    ops = list(csv.DictReader(open(sys.argv[2])))
    kernels, total = [], {}
    for i, r in enumerate(data):
        k = {"launch": i, "op": ops[i]["name"] if i < len(ops) else None, "kernel": r[head.index("Kernel Name")][:80]}
        stalls = {}
        for h, v in zip(head, r):
            if h.startswith(PREFIX) and h.endswith(SUFFIX) and num(v) is not None:
                stalls[h[len(PREFIX):-len(SUFFIX)]] = num(v)
            elif h == "gpu__time_duration.sum":
                k["duration_ns"] = num(v) * (1000 if units[head.index(h)] == "usecond" else 1)
            elif h in ("smsp__inst_executed.sum", "launch__grid_size"):
                k[h] = num(v)
        k["stalls_cycles_per_issue"] = dict(sorted(stalls.items(), key=lambda kv: -kv[1]))
        kernels.append(k)
        w = k.get("duration_ns") or 0
        cpi = sum(stalls.values()) or 1
        for s, v in stalls.items():
            total[s] = total.get(s, 0) + w * v / cpi
    tw = sum(total.values()) or 1
    share = {s: round(v / tw, 4) for s, v in sorted(total.items(), key=lambda kv: -kv[1])}
    json.dump({"share_of_stall_cycles_time_weighted": share, "kernels": kernels}, open(sys.argv[3], "w"), indent=1)
    print("stall reasons, share of warp cycles (weighted by kernel time):")
    for s, v in list(share.items())[:10]:
        print(f"  {s:28s} {100 * v:5.1f}%")
    print("slowest kernels:")
    for k in sorted(kernels, key=lambda k: -(k.get("duration_ns") or 0))[:12]:
        top = ", ".join(f"{s} {v:.1f}" for s, v in list(k["stalls_cycles_per_issue"].items())[:4])
        print(f"  {str(k['op']):22s} {k.get('duration_ns', 0) / 1e3:7.1f} us  {top}")


if __name__ == "__main__":
    main()
