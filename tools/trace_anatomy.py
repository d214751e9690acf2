#!/usr/bin/env python3
"""Splits a traced iteration (mmf-bench --trace FILE, Chrome trace JSON) into
kernel spans and the gaps between them, tower by tower.

    tools/trace_anatomy.py TRACE.json[.gz] [--top N] [--json OUT]

A launch's span runs from its first block's start (after the PDL wait) to
its last block's end; a gap is the time from one launch's end to the next
launch of the same tower starting. The block columns say how much of a
span the blocks themselves filled: 'block us' is the mean block duration,
'waves' the span over that."""
import argparse
import collections
import gzip
import json
import statistics
import sys


def load(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt") as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=15, help="longest launches to list [15]")
    ap.add_argument("--json", help="also write the per-launch rows and totals here")
    a = ap.parse_args()
    d = load(a.trace)
    ev = d["traceEvents"]
    title = d.get("otherData", {}).get("title", a.trace)
    launches = {}
    blocks = collections.defaultdict(list)
    for e in ev:
        if e.get("ph") != "X":
            continue
        if e.get("pid") == 1:
            launches[e["args"]["launch"]] = e
        elif e.get("pid") == 2:
            blocks[e["args"]["launch"]].append(e["dur"])
    if not launches:
        sys.exit(f"{a.trace}: no launch events (pid 1): not an mmf-bench trace?")
    print(title)
    rows, totals = [], {}
    for tower in ("image", "text", "image+text"):
        ls = sorted((e for e in launches.values() if e["cat"] == tower), key=lambda e: e["ts"])
        if not ls:
            continue
        gaps, spans = [], []
        for i, e in enumerate(ls):
            b = blocks.get(e["args"]["launch"], [])
            mb = statistics.mean(b) if b else 0.0
            gap = e["ts"] - (ls[i - 1]["ts"] + ls[i - 1]["dur"]) if i else 0.0
            if i:
                gaps.append(gap)
            spans.append(e["dur"])
            rows.append({"tower": tower, "launch": e["args"]["launch"], "name": e["name"], "start_us": round(e["ts"], 3),
                         "span_us": round(e["dur"], 3), "gap_before_us": round(gap, 3), "blocks": len(b),
                         "block_us": round(mb, 3)})
        wall = ls[-1]["ts"] + ls[-1]["dur"] - ls[0]["ts"]
        t = {"launches": len(ls), "wall_us": round(wall, 2), "spans_us": round(sum(spans), 2),
             "gaps_us": round(sum(gaps), 2), "median_span_us": round(statistics.median(spans), 2),
             "median_gap_us": round(statistics.median(gaps), 2) if gaps else 0.0}
        totals[tower] = t
        print(f"{tower:10s} {t['launches']:3d} launches over {wall:8.1f} us: kernel spans {t['spans_us']:8.1f} us "
              f"(median {t['median_span_us']:.2f}), gaps {t['gaps_us']:7.1f} us (median {t['median_gap_us']:.2f})")
    # Spans by op kind (the last dotted component without digits).
    kinds = collections.defaultdict(lambda: [0, 0.0])
    for r in rows:
        k = r["name"].split(" + ")[0].split(".")[-1].rstrip("0123456789_")
        kinds[(r["tower"], k)][0] += 1
        kinds[(r["tower"], k)][1] += r["span_us"]
    print("\nspans by op kind:")
    for (tw, k), (n, s) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print(f"  {tw:10s} {k:14s} {n:3d} launches {s:8.1f} us ({s / n:6.2f} each)")
    print(f"\nlongest {a.top} launches:")
    print(f"  {'tower':10s} {'op':34s} {'span us':>8s} {'gap us':>7s} {'blocks':>6s} {'block us':>8s} {'waves':>5s}")
    for r in sorted(rows, key=lambda r: -r["span_us"])[: a.top]:
        w = r["span_us"] / r["block_us"] if r["block_us"] else 0
        print(f"  {r['tower']:10s} {r['name'][:34]:34s} {r['span_us']:8.2f} {r['gap_before_us']:7.2f} {r['blocks']:6d} "
              f"{r['block_us']:8.2f} {w:5.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"title": title, "source": a.trace, "totals": totals, "launches": rows}, f, indent=1)


if __name__ == "__main__":
    main()
