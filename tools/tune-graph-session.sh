#!/bin/sh
# --tune-graph on one GPU, from the repository root of a copy carrying .gpu
# (tools/gpu-bundle.sh), unpacked:
#   tools/tune-graph-session.sh OUT [SMS] [TESTS]
# Runs TESTS (default test_engine), then mmf-bench on SMS (default 8,all)
# in MODES (default graph-streams,graph-split), without and then with
# --tune-graph, each with its own plan cache.
set -u
out=${1:?usage: tune-graph-session.sh OUT [SMS] [TESTS]}
sms=${2:-8,all}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
for t in ${3-test_engine}; do
	timeout 240 ".gpu/$t" >"$out/$t.log" 2>&1
	echo "$t: exit $?"
	grep -E "GEMM shapes|passed|FAIL" "$out/$t.log" | tail -6
done
for v in plain tuned; do
	flag=; [ $v = tuned ] && flag="--tune-graph $sms"
	# shellcheck disable=SC2086
	MMF_CACHE=/tmp/mmf-cache-tg-$v timeout 400 .gpu/mmf-bench --device cuda --model rn50 --sms "$sms" \
		--modes "${MODES:-graph-streams,graph-split}" --split-sms 64,72 --iters 200 $flag --json "$out/$v.json" >"$out/$v.log" 2>&1
	echo "$v: exit $?"
	grep -E "graph-streams|graph-split|tune-graph" "$out/$v.log"
done
