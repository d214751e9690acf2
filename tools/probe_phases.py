#!/usr/bin/env python3
"""Per-launch phase medians from a probe build's trace (configure with
CPPFLAGS=-DMMF_PROBE and make NVCCFLAGS+=-DMMF_PROBE; mmf-bench --trace).

    tools/probe_phases.py TRACE.json[.gz] [--match SUBSTRING]...

For every launch: blocks, the median wait before t0 (PDL wait: block start
to the predecessor's completion), the median time from t0 to each of the
kernel's MMF_PROBE_MARK points (a GEMM: 0 first slice landed, 1 main loop
done, 2 split-K partials summed, 3 epilogue stored; attention: 0 K landed,
1 softmax, 2 PV; the folded pool: 0 scores, 1 xbar) and to the block's end
(the span a block took after its wait)."""
import argparse
import collections
import gzip
import json
import statistics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--match", action="append", default=[], help="only launches whose name has this")
    a = ap.parse_args()
    op = gzip.open if a.trace.endswith(".gz") else open
    with op(a.trace, "rt") as f:
        ev = json.load(f)["traceEvents"]
    names, towers, dur, probe = {}, {}, collections.defaultdict(list), collections.defaultdict(list)
    for e in ev:
        args = e.get("args", {})
        if e.get("pid") == 1 and e.get("ph") == "X":
            names[args["launch"]] = e["name"]
        elif e.get("pid") == 2 and e.get("ph") == "X":
            dur[args["launch"]].append(e["dur"])
            towers[args["launch"]] = args.get("tower", "")
        elif e.get("name") == "probe" and "wait" in args:
            probe[args["launch"]].append((args["wait"], args["ph"]))
    if not probe:
        raise SystemExit(f"{a.trace}: no probe events (pid 3): not a probe build's trace")
    print(f"{'tower':6} {'launch':>6} {'op':34} {'blocks':>6} {'wait':>6} {'m0':>6} {'m1':>6} {'m2':>6} {'m3':>6} {'end':>6}   (us, medians)")
    for l in sorted(names):
        n = names[l]
        if a.match and not any(m in n for m in a.match):
            continue
        p = probe.get(l, [])
        if not p:
            continue
        med = lambda xs: statistics.median(xs) if xs else 0.0
        w = med([x[0] for x in p])
        ph = [med([x[1][k] for x in p if x[1][k] > 0]) for k in range(4)]
        cols = " ".join(f"{v:6.2f}" if v else f"{'-':>6}" for v in ph)
        print(f"{towers.get(l, ''):6} {l:6d} {n:34} {len(p):6d} {w:6.2f} {cols} {med(dur[l]):6.2f}")


if __name__ == "__main__":
    main()
