#!/bin/sh
# How much the GEMM tuner's run-to-run choices move the two-stream time:
# N runs of the same mmf-bench (RN50 batch 1, graph and graph-streams on the
# given partitions), each tuning afresh, with the shapes it chose in its
# JSON (gemm_shapes). From the repository root of a copy carrying .gpu
# (tools/gpu-bundle.sh), unpacked:
#   tools/tuner-spread-session.sh OUT [N [SMS]]      (default 6 runs, all)
set -u
out=${1:?usage: tuner-spread-session.sh OUT [N [SMS]]}
n=${2:-6}
sms=${3:-all}
mkdir -p "$out"
export LD_LIBRARY_PATH="$(pwd)/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=/tmp/mmf-cache-spread
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
i=1
while [ $i -le "$n" ]; do
	echo "== run $i"
	timeout 200 .gpu/mmf-bench --device cuda --model rn50 --sms "$sms" --modes graph,graph-streams --iters 200 \
		--json "$out/run-$i.json" >"$out/run-$i.log" 2>&1
	echo "   exit $?"
	grep -E "graph" "$out/run-$i.log"
	i=$((i + 1))
done
python3 - "$out" "$n" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{out}/run-{i}.json")) for i in range(1, n + 1)]
for p in range(len(runs[0]["partitions"])):
    base = runs[0]["partitions"][p]["gemm_shapes"]
    for i, r in enumerate(runs, 1):
        part = r["partitions"][p]
        med = {f'{m["mode"]} {m["what"]}': m["median_ms"] for m in part["modes"]}
        diff = sum(a != b for t in ("image", "text") for a, b in zip(base[t], part["gemm_shapes"][t]))
        print(f'{part["sms"]} SMs run {i}: graph image {med.get("graph image")}, text {med.get("graph text")}, '
              f'graph-streams both {med.get("graph-streams both")}; shapes differing from run 1: {diff}')
PY
