#!/bin/sh
# Two diagnostics on one GPU, from the repository root of a copy carrying
# .gpu (tools/gpu-bundle.sh), unpacked:
#   tools/race-split-session.sh OUT [PAIRS]
# 1. graph-split on the whole GPU, with each tower's end marked inside the
#    graph: which tower the other slows, and what the join adds.
# 2. compute-sanitizer racecheck of the intra-thread fused kernels, one
#    test_fuse pair at a time (MMF_FUSE_PAIR, default pairs 0-7), with
#    per-hazard reports (thread indices) capped at 10.
set -u
out=${1:?usage: race-split-session.sh OUT [PAIRS]}
pairs=${2:-0 1 2 3 4 5 6 7}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
MMF_CACHE=/tmp/mmf-cache-rs timeout 200 .gpu/mmf-bench --device cuda --model rn50 --sms all --modes graph-split \
	--split-sms 64,72 --iters 200 --json "$out/split-ends.json" >"$out/split-ends.log" 2>&1
echo "split-ends: exit $?"
grep -E "graph-split" "$out/split-ends.log"
for k in $pairs; do
	MMF_CACHE=/tmp/mmf-cache-rs MMF_FUSE_QUICK=1 MMF_FUSE_ONLY=intra-thread MMF_FUSE_PAIR=$k timeout 55 \
		compute-sanitizer --tool racecheck --racecheck-report hazard --print-limit 10 --error-exitcode 9 \
		.gpu/test_fuse >"$out/racecheck-intra-thread-pair$k.log" 2>&1
	echo "pair $k: exit $? $(grep -E 'RACECHECK SUMMARY|passed' "$out/racecheck-intra-thread-pair$k.log" | tr '\n' ' ')"
done
