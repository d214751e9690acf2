#!/usr/bin/env python3
"""Render the analysis report from a ``mmf-bench --report DIR`` run.

Reads DIR/runs/*.json (one per scenario: ``fp16-b1-auto``, ``int8-b4-inter``,
``fp32-b8-intra-block``, ``torch-b1``, ...) and DIR/traces/*.json, and writes DIR/REPORT.md with
tables, and PNG plots next to it (matplotlib):

* latency by mode and SM count (one plot per precision and batch), with the
  PyTorch peer's best method;
* fusion speed-up (best fused-graph over the best of graph and
  graph-streams) against SM count, per strategy;
* a roofline scatter of every op (fp16, batch 1, each partition's measured
  ceilings), fused pairs drawn as connected points;
* one timeline picture of a fused iteration at the first partition (per-SM
  rows of block records, coloured by tower).

Every number in REPORT.md is read from those files; nothing is typed in.

Usage::

    tools/report.py DIR

Exit status 0 when REPORT.md and every plot were written; 1 when the plots
could not be drawn (no matplotlib: the tables are still written).
"""
import glob
import json
import os
import re
import sys

MODES = ["seq", "streams", "graph", "graph-streams", "fused", "fused-graph"]
STRATEGIES = ["auto", "inter", "intra-block", "intra-thread"]
PRECISIONS = ["fp16", "int8", "fp32"]
PRECISION_NOTE = {"fp16": "fp16 weights and activations, tensor cores",
                  "int8": "int8 convolution and linear weights (per output channel), fp16 activations, tensor cores",
                  "fp32": "fp32 weights and activations, SIMT kernels on the CUDA cores (no tensor cores)"}


def load_runs(d):
    runs = {}
    for p in sorted(glob.glob(os.path.join(d, "runs", "*.json"))):
        name = os.path.basename(p)[:-5]
        try:
            runs[name] = json.load(open(p))
        except (OSError, ValueError) as e:
            print(f"report: {p}: unreadable ({e}); skipped", file=sys.stderr)
    return runs


def median(run, sms, mode, what="both"):
    for p in run.get("partitions", []):
        if p["sms"] == sms:
            for m in p.get("modes", []):
                if m["mode"] == mode and m["what"] == what:
                    return m["median_ms"]
    return None


def torch_best(run, sms, total, what="both"):
    """(method, median ms) of the peer's fastest method at this partition."""
    if not run:
        return None, None
    best = (None, None)
    for p in run.get("partitions", []):
        if p.get("skipped"):
            continue
        psms = total if p.get("label") == "all" else p.get("sms")
        if psms != sms:
            continue
        for meth, r in p.get("results", {}).items():
            v = r.get(what, {}).get("median_ms")
            if v is not None and (best[1] is None or v < best[1]):
                best = (meth, v)
    return best


def fmt(v, nd=3):
    return "—" if v is None else f"{v:.{nd}f}"


def scenario_key(name):
    m = re.match(r"(fp16|int8|fp32)-b(\d+)-(.*)", name)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__.split("\n\n")[0] + "\nusage: report.py DIR")
    d = argv[1]
    runs = load_runs(d)
    scen = {scenario_key(n): r for n, r in runs.items() if scenario_key(n)}
    if not scen:
        sys.exit(f"report: no mmf scenario results under {d}/runs")
    any_run = next(iter(scen.values()))
    gpu, total = any_run.get("gpu"), any_run.get("gpu_sms")
    parts = sorted({p["sms"] for r in scen.values() for p in r.get("partitions", [])})
    precisions = [p for p in PRECISIONS if any(k[0] == p for k in scen)]
    batches = sorted({k[1] for k in scen})
    commits = sorted({r.get("commit", "?") for r in scen.values()})
    dates = sorted(r.get("date", "") for r in scen.values())
    L = []
    w = L.append
    w("# mmf analysis report\n")
    w(f"GPU: **{gpu}** ({total} SMs). Partitions: {', '.join(str(s) for s in parts)} SMs (green contexts restrict "
      "SMs only: L2 and DRAM bandwidth are shared with the whole GPU). Model: "
      f"{any_run.get('model')} ({any_run.get('config')}). Median of {any_run.get('iters')} iterations after "
      f"{any_run.get('warmup')} warm-up. Commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}; "
      f"runs from {dates[0]} to {dates[-1]}. Written by `tools/report.py` from `runs/*.json`.\n")
    have = ", ".join(sorted(runs))
    w(f"Scenarios present: {have}.\n")
    missing = [f"{p}-b{b}-{s}" for p in PRECISIONS for b in (1, 4, 8) for s in STRATEGIES
               if (p, b, s) not in scen]
    missing += [f"torch-b{b}" for b in (1, 4, 8) if f"torch-b{b}" not in runs]
    w("Precisions: " + "; ".join(f"**{p}**: {PRECISION_NOTE[p]}" for p in precisions) + ".\n")
    w(f"Scenarios not (yet) run: {', '.join(missing)}.\n" if missing else "Every scenario of the matrix ran.\n")

    # --- latency by mode
    w("## Latency by mode and SM count (both towers, median ms)\n")
    for prec in precisions:
        for b in batches:
            r = scen.get((prec, b, "auto"))
            if not r:
                continue
            tr = runs.get(f"torch-b{b}")
            w(f"### {prec} weights, batch {b}+{b}\n")
            w("| SMs | " + " | ".join(MODES) + " | best | PyTorch best | mmf / PyTorch |")
            w("|---|" + "---|" * (len(MODES) + 3))
            for s in parts:
                vals = [median(r, s, m) for m in MODES]
                ok = [(v, m) for v, m in zip(vals, MODES) if v is not None]
                bv, bm = min(ok) if ok else (None, None)
                tm, tv = torch_best(tr, s, total)
                ratio = f"{bv / tv:.2f}" if bv and tv else "—"
                w(f"| {s} | " + " | ".join(fmt(v) for v in vals) + f" | {bm or ''} {fmt(bv)} | "
                  f"{tm or '—'} {fmt(tv)} | {ratio} |")
            w("")
            w("Single towers (graph mode, ms): " + "; ".join(
                f"{s} SMs image {fmt(median(r, s, 'graph', 'image'))}, text {fmt(median(r, s, 'graph', 'text'))}"
                for s in parts) + ".\n")

    # --- fusion by strategy
    w("## Fusion: fused-graph against the best unfused graph mode\n")
    w("Speed-up = min(graph, graph-streams) / fused-graph (> 1: fusion wins). Strategy runs reuse the unfused "
      "times of the same precision and batch from the `auto` run.\n")
    w("| precision | batch | strategy | " + " | ".join(f"{s} SMs" for s in parts) + " |")
    w("|---|---|---|" + "---|" * len(parts))
    speedups = {}
    for prec in precisions:
        for b in batches:
            base = scen.get((prec, b, "auto"))
            if not base:
                continue
            for st in STRATEGIES:
                r = scen.get((prec, b, st))
                if not r:
                    continue
                cells = []
                for s in parts:
                    u = [v for v in (median(base, s, "graph"), median(base, s, "graph-streams")) if v]
                    f = median(r, s, "fused-graph")
                    sp = min(u) / f if u and f else None
                    speedups[(prec, b, st, s)] = sp
                    cells.append("—" if sp is None else f"{sp:.2f}x ({fmt(f)} ms)")
                w(f"| {prec} | {b} | {st} | " + " | ".join(cells) + " |")
    w("")

    # --- SM utilisation
    w("## SM utilisation (per-block records, one traced iteration)\n")
    w("Fraction of SM-time covered by blocks over the iteration, total (image / text).\n")
    w("| precision | batch | SMs | seq | streams | fused | tracing cost (fused) |")
    w("|---|---|---|---|---|---|---|")
    for prec in precisions:
        for b in batches:
            r = scen.get((prec, b, "auto"))
            for p in (r or {}).get("partitions", []):
                t = p.get("trace")
                if not t:
                    continue
                cell = lambda k: (f"{100 * t[k]['sm_utilisation']:.1f}% ({100 * t[k]['sm_utilisation_image']:.0f} / "  # noqa: E731
                                  f"{100 * t[k]['sm_utilisation_text']:.0f})") if k in t else "—"
                cost = t.get("fused", {}).get("tracing_cost_pct")
                w(f"| {prec} | {b} | {p['sms']} | {cell('seq')} | {cell('streams')} | {cell('fused')} | "
                  f"{fmt(cost, 1)}% |")
    w("")

    # --- pairs
    r1 = scen.get(("fp16", 1, "auto"))
    pairs_by_part = {p["sms"]: p.get("pairs", []) for p in (r1 or {}).get("partitions", [])}
    if any(pairs_by_part.values()):
        w("## Pair microbenchmark (fp16, batch 1)\n")
        w("| SMs | pair | classes | seq us | streams us | inter | intra-block | intra-thread | best | vs seq | vs streams |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for s, prs in pairs_by_part.items():
            for q in prs:
                w(f"| {s} | {q['a']} × {q['b']} | {q['class_a']} / {q['class_b']} | {fmt(q['seq_us'], 1)} | "
                  f"{fmt(q['streams_us'], 1)} | {fmt(q.get('inter_us'), 1)} | {fmt(q.get('intra_block_us'), 1)} | "
                  f"{fmt(q.get('intra_thread_us'), 1)} | {q['best']} | {q['speedup_vs_seq']:.2f}x | "
                  f"{q['speedup_vs_streams']:.2f}x |")
        w("")

    # --- precisions against each other
    if len(precisions) > 1:
        w("## Precisions against each other (graph mode, median ms)\n")
        w("Image and text: each tower alone in `graph` mode; both: `graph-streams`. The speed-up columns divide "
          "fp32 by fp16 (what fp16 on the tensor cores buys) and fp16 by int8 (what int8 weights buy).\n")
        cols = [(t, p) for t in ("image", "text", "both") for p in precisions]
        w("| batch | SMs | " + " | ".join(f"{t} {p}" for t, p in cols) + " | fp32 / fp16 (both) | fp16 / int8 (both) |")
        w("|---|---|" + "---|" * (len(cols) + 2))
        for b in batches:
            rs = {p: scen.get((p, b, "auto")) for p in precisions}
            for s in parts:
                def get(t, p):
                    return median(rs[p], s, "graph-streams" if t == "both" else "graph",
                                  "both" if t == "both" else t) if rs[p] else None
                both = {p: get("both", p) for p in precisions}

                def ratio(a, c):
                    return f"{both[a] / both[c]:.2f}x" if both.get(a) and both.get(c) else "—"
                w(f"| {b} | {s} | " + " | ".join(fmt(get(t, p)) for t, p in cols) +
                  f" | {ratio('fp32', 'fp16')} | {ratio('fp16', 'int8')} |")
        w("")
        w("Weights resident: " + ", ".join(
            f"{p} {scen[(p, batches[0], 'auto')].get('weights_mb')} MB" for p in precisions
            if (p, batches[0], "auto") in scen) + ".\n")

    plots_ok, plot_err = plots(d, scen, runs, parts, precisions, batches, total, speedups)
    if plots_ok:
        w("## Plots\n")
        for f in sorted(os.listdir(d)):
            if f.endswith(".png"):
                w(f"![{f}]({f})\n")
    else:
        w(f"## Plots\n\nNot drawn: {plot_err}. Run `python3 tools/report.py {d}` where matplotlib is installed.\n")
    with open(os.path.join(d, "REPORT.md"), "w") as fp:
        fp.write("\n".join(L) + "\n")
    print(f"report: wrote {os.path.join(d, 'REPORT.md')}" + ("" if plots_ok else f" (no plots: {plot_err})"))
    return 0 if plots_ok else 1


def plots(d, scen, runs, parts, precisions, batches, total, speedups):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return False, f"matplotlib is not importable ({e})"
    xs = parts
    # latency by mode
    for prec in precisions:
        for b in batches:
            r = scen.get((prec, b, "auto"))
            if not r:
                continue
            fig, ax = plt.subplots(figsize=(7, 4.5))
            for m in MODES:
                ys = [median(r, s, m) for s in xs]
                if any(y is not None for y in ys):
                    ax.plot(xs, ys, marker="o", label=m)
            tr = runs.get(f"torch-b{b}")
            if tr:
                ax.plot(xs, [torch_best(tr, s, total)[1] for s in xs], marker="s", linestyle="--", color="k",
                        label="PyTorch best")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(xs, [str(s) for s in xs])
            ax.set_xlabel("SMs")
            ax.set_ylabel("both towers, median ms")
            ax.set_title(f"RN50, {prec} weights, batch {b}+{b}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(d, f"latency-{prec}-b{b}.png"), dpi=110)
            plt.close(fig)
    # fusion speed-up
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for prec in precisions:
        for b in batches:
            for st in STRATEGIES:
                ys = [speedups.get((prec, b, st, s)) for s in xs]
                if any(y is not None for y in ys):
                    ax.plot(xs, ys, marker="o", label=f"{prec} b{b} {st}",
                            linestyle={"fp16": "-", "int8": ":", "fp32": "--"}[prec])
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(s) for s in xs])
    ax.set_xlabel("SMs")
    ax.set_ylabel("min(graph, graph-streams) / fused-graph")
    ax.set_title("Fusion speed-up against SM count")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "fusion-speedup.png"), dpi=110)
    plt.close(fig)
    # roofline scatter (fp16, batch 1)
    r1 = scen.get(("fp16", 1, "auto"))
    plist = [p for p in (r1 or {}).get("partitions", []) if p.get("ops")]
    if plist:
        fig, axs = plt.subplots(1, len(plist), figsize=(5 * len(plist), 4.5), squeeze=False)
        for ax, p in zip(axs[0], plist):
            rf = p["roofline"]
            ops = {o["name"]: o for o in p["ops"]}
            ai = lambda o: o["flops"] / max(o["bytes"], 1)  # noqa: E731
            for tower, col in (("image", "tab:blue"), ("text", "tab:orange")):
                pts = [o for o in p["ops"] if o["tower"] == tower and o["flops"] > 0]
                ax.scatter([ai(o) for o in pts], [o["tflops"] for o in pts], s=10, c=col, label=f"{tower} ops")
            for q in p.get("pairs", []):
                a, b = ops.get(q["a"]), ops.get(q["b"])
                best = min(v for v in (q.get("inter_us"), q.get("intra_block_us"), q.get("intra_thread_us")) if v)
                if not a or not b or not best:
                    continue
                fl, by = a["flops"] + b["flops"], a["bytes"] + b["bytes"]
                fx, fy = fl / by, fl / (best * 1e-6) / 1e12
                ax.plot([ai(a), fx, ai(b)], [a["tflops"], fy, b["tflops"]], color="tab:green", linewidth=0.8)
                ax.scatter([fx], [fy], marker="*", s=60, c="tab:green")
            xr = [0.1, 2e4]
            knee = rf["gemm_tflops"] * 1e3 / rf["copy_gbs"]
            ax.plot([xr[0], knee, xr[1]], [xr[0] * rf["copy_gbs"] / 1e3, rf["gemm_tflops"], rf["gemm_tflops"]],
                    color="k", linewidth=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("FLOP per byte (fewest bytes)")
            ax.set_ylabel("achieved TFLOP/s")
            ax.set_title(f"{p['sms']} SMs: {rf['gemm_tflops']:.0f} TFLOP/s, {rf['copy_gbs']:.0f} GB/s")
            ax.grid(True, which="both", alpha=0.3)
        axs[0][0].scatter([], [], marker="*", c="tab:green", label="fused pair (best strategy)")
        axs[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(d, "roofline.png"), dpi=110)
        plt.close(fig)
    # timeline of a fused iteration
    tpath = os.path.join(d, "traces", "fp16-b1-auto.json")
    if not os.path.exists(tpath) and os.path.exists(tpath + ".gz"):
        tpath += ".gz"  # a committed report keeps its traces compressed
    if os.path.exists(tpath):
        import gzip
        tr = json.load(gzip.open(tpath, "rt") if tpath.endswith(".gz") else open(tpath))
        ev = [e for e in tr.get("traceEvents", []) if e.get("ph") == "X" and e.get("pid") == 2]
        if ev:
            sms = sorted({e["tid"] for e in ev})
            fig, ax = plt.subplots(figsize=(11, 0.35 * len(sms) + 1.5))
            for tower, col in (("image", "tab:blue"), ("text", "tab:orange")):
                for row, s in enumerate(sms):
                    bars = [(e["ts"], e["dur"]) for e in ev if e["tid"] == s and e.get("cat") == tower]
                    if bars:
                        ax.broken_barh(bars, (row - 0.4 + (0.4 if tower == "text" else 0), 0.4), facecolors=col)
            names = {e["tid"]: e["args"]["name"] for e in tr.get("traceEvents", [])
                     if e.get("ph") == "M" and e.get("pid") == 2 and e.get("name") == "thread_name"}
            ax.set_yticks(range(len(sms)), [names.get(s, f"row {s}") for s in sms])
            ax.set_xlabel("us")
            ax.set_title("One fused iteration, first partition (blue: image tower blocks, orange: text)")
            fig.tight_layout()
            fig.savefig(os.path.join(d, "timeline-fused.png"), dpi=110)
            plt.close(fig)
    return True, None


if __name__ == "__main__":
    sys.exit(main(sys.argv))
