#!/usr/bin/env python3
"""Joins an mmf-bench --json result and a tools/torch_baseline.py --json
result from the same GPU and run into one JSON, with the comparison the
GPU-engine issue asks for: per SM partition, mmf's best mode against
PyTorch's best method for both towers (median ms), and their ratio.

    tools/bench_compare.py MMF.json TORCH.json OUT.json
"""
import json
import sys


def best(items):
    items = [i for i in items if i[1] is not None]
    return min(items, key=lambda i: i[1]) if items else (None, None)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    mmf = json.load(open(sys.argv[1]))
    torch = json.load(open(sys.argv[2]))
    gpu_m = mmf.get("gpu")
    gpu_t = torch.get("gpu", {}).get("name")
    if gpu_m != gpu_t:
        sys.exit(f"bench_compare: the two results come from different GPUs ({gpu_m} vs {gpu_t})")
    total = mmf.get("gpu_sms")
    tparts = {}
    for p in torch.get("partitions", []):
        if p.get("skipped"):
            continue
        sms = p.get("sms") or total if p.get("label") == "all" else p.get("sms")
        tparts[sms] = p
    rows = []
    for p in mmf.get("partitions", []):
        sms = p["sms"]
        m_best = best([(m["mode"], m["median_ms"]) for m in p["modes"] if m["what"] == "both"])
        tp = tparts.get(sms)
        t_best = (None, None)
        if tp:
            t_best = best([(meth, r.get("both", {}).get("median_ms")) for meth, r in tp["results"].items()])
        row = {"sms": sms, "mmf_best_mode": m_best[0], "mmf_both_median_ms": m_best[1],
               "torch_best_method": t_best[0], "torch_both_median_ms": t_best[1]}
        if m_best[1] and t_best[1]:
            row["ratio_mmf_over_torch"] = round(m_best[1] / t_best[1], 4)
        rows.append(row)
    out = {"gpu": gpu_m, "gpu_sms": total, "date": mmf.get("date"), "commit": mmf.get("commit"),
           "note": "same GPU, same run; ratio <= 0.5 is the GPU-engine issue's bar",
           "comparison": rows, "mmf": mmf, "torch": torch}
    json.dump(out, open(sys.argv[3], "w"), indent=1)
    print(f"{'SMs':>5} {'mmf best':>14} {'ms':>8} {'torch best':>11} {'ms':>8} {'ratio':>7}")
    for r in rows:
        print(f"{r['sms']:>5} {str(r['mmf_best_mode']):>14} {r['mmf_both_median_ms'] or float('nan'):8.3f} "
              f"{str(r['torch_best_method']):>11} {r['torch_both_median_ms'] or float('nan'):8.3f} "
              f"{r.get('ratio_mmf_over_torch', float('nan')):7.3f}")


if __name__ == "__main__":
    main()
