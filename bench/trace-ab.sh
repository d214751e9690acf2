#!/bin/sh
# The cost of block tracing (issue 7), on a GPU machine from a bundle:
# mmf-bench built without the tracing code (BIN/mmf-bench-base, commit
# BASE) against the current one (BIN/mmf-bench) with tracing off, in
# alternation (base, new, base, new) on the same GPU; then the current one
# with --trace (SM utilisation of seq and fused, the cost of tracing on,
# and the Chrome trace of a fused iteration on the first partition).
#   bench/trace-ab.sh BIN OUT [MODEL] [SMS]
set -eu
bin=$1 out=$2 model=${3:-rn50} sms=${4:-8,all}
mkdir -p "$out"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
mkdir -p "$MMF_CACHE"
w=$MMF_CACHE/$model-seed1.safetensors
[ -f "$w" ] || "$bin/mmf-mkmodel" --seed 1 "$model" "$w" >/dev/null
modes=seq,graph,graph-streams,fused,fused-graph
for round in 1 2; do
	for v in base new; do
		exe=$bin/mmf-bench; [ $v = base ] && exe=$bin/mmf-bench-base
		echo "== $v, round $round" >&2
		"$exe" --device cuda --model "$w" --sms "$sms" --modes "$modes" --iters 200 --warmup 20 \
			--json "$out/ab-$v-$round.json" >"$out/ab-$v-$round.txt" 2>&1
	done
done
"$bin/mmf-bench" --device cuda --model "$w" --sms "$sms" --modes seq,fused --iters 50 --warmup 10 \
	--trace "$out/trace-$model-fused-first-partition.json" --json "$out/traced.json" | grep -E "partition|trace"
python3 - "$out" <<'PY'
import json, sys, statistics
out = sys.argv[1]
def med(v, r, sms, mode):
    d = json.load(open(f"{out}/ab-{v}-{r}.json"))
    for p in d["partitions"]:
        if p["sms"] == sms:
            for m in p["modes"]:
                if m["mode"] == mode and m["what"] == "both":
                    return m["median_ms"]
d0 = json.load(open(f"{out}/ab-new-1.json"))
rows = []
for p in d0["partitions"]:
    for m in [m["mode"] for m in p["modes"] if m["what"] == "both"]:
        b = [med("base", r, p["sms"], m) for r in (1, 2)]
        n = [med("new", r, p["sms"], m) for r in (1, 2)]
        rows.append({"sms": p["sms"], "mode": m, "base_ms": b, "new_ms": n,
                     "change_pct": round((statistics.mean(n) / statistics.mean(b) - 1) * 100, 2)})
        print(f"{p['sms']:4d} SMs {m:14s} base {b[0]:.3f} {b[1]:.3f}  tracing off {n[0]:.3f} {n[1]:.3f} ms  "
              f"({rows[-1]['change_pct']:+.2f}%)")
import os
json.dump({"gpu": d0.get("gpu"), "gpu_sms": d0.get("gpu_sms"), "commit": d0.get("commit"), "date": d0.get("date"),
           "base_commit": os.environ.get("BASE", "unknown"),
           "tracing_off_vs_base": rows, "traced": json.load(open(f"{out}/traced.json"))},
          open(f"{out}/trace-ab.json", "w"), indent=1)
PY
