#!/usr/bin/env python3
"""Joins Nsight Compute's --csv output for one profiled iteration with the
launch list mmf-bench --profile wrote (launch order = ncu's kernel ID
order). Writes OUT.csv and OUT.json and prints a summary.

    tools/ncu_join.py NCU.csv OPS.csv OUT
"""
import csv
import datetime
import io
import json
import os
import sys

NAMES = {
    "gpu__time_duration.sum": "duration_us",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "achieved_occupancy_pct",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": "sm_throughput_pct",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": "dram_throughput_pct",
}


def number(s):
    return float(s.replace(",", "")) if s not in ("", "n/a") else None


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    raw = open(sys.argv[1]).read()
    start = raw.find('"ID"')  # ncu prints its own log lines first
    if start < 0:
        sys.exit(f"ncu_join: {sys.argv[1]}: no CSV table (did ncu profile anything?)")
    kernels = {}
    for row in csv.DictReader(io.StringIO(raw[start:])):
        k = kernels.setdefault(int(row["ID"]), {"kernel": row["Kernel Name"]})
        name = NAMES.get(row["Metric Name"])
        if name:
            v = number(row["Metric Value"])
            if name == "duration_us" and v is not None:
                unit = row["Metric Unit"]
                v = v / 1e3 if unit in ("ns", "nsecond") else v * 1e3 if unit in ("ms", "msecond") else v
            k[name] = v
    ops = list(csv.DictReader(open(sys.argv[2])))
    ids = sorted(kernels)
    if len(ids) != len(ops):
        sys.exit(f"ncu_join: {len(ids)} kernels profiled but {len(ops)} launches listed: cannot join by order")
    rows = []
    for kid, op in zip(ids, ops):
        r = {"launch": int(op["launch"]), "op": op["name"], "image_op": int(op["image_op"]),
             "text_op": int(op["text_op"]), "flops": float(op["flops"]), "bytes": float(op["bytes"])}
        r.update(kernels[kid])
        rows.append(r)
    cols = ["launch", "op", "kernel", "duration_us", "achieved_occupancy_pct", "sm_throughput_pct",
            "dram_throughput_pct", "flops", "bytes", "image_op", "text_op"]
    with open(sys.argv[3] + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    busy = sum(r.get("duration_us") or 0 for r in rows)
    meta = {k: os.environ.get(v, "unknown") for k, v in
            (("gpu", "MMF_GPU"), ("sms", "MMF_SMS"), ("commit", "MMF_COMMIT"), ("mode", "MMF_MODE"))}
    meta["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["note"] = ("ncu replays each kernel alone (caches flushed, --clock-control none): durations are "
                    "not the overlapped or graph-replayed times; read the percentages, not the sum")
    json.dump(dict(meta, kernels=len(rows), busy_us=busy, rows=rows), open(sys.argv[3] + ".json", "w"), indent=1)
    print(f"{len(rows)} kernels, {busy:.1f} us of kernel time (each alone); slowest:")
    for r in sorted(rows, key=lambda r: -(r.get("duration_us") or 0))[:8]:
        print(f"  {r['op']:<40} {r.get('duration_us') or 0:8.2f} us  occ {r.get('achieved_occupancy_pct') or 0:5.1f}%"
              f"  sm {r.get('sm_throughput_pct') or 0:5.1f}%  dram {r.get('dram_throughput_pct') or 0:5.1f}%")


if __name__ == "__main__":
    main()
