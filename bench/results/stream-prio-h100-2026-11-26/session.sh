#!/bin/sh
# Stream priorities for the two towers (experiment): graph-streams with
# MMF_STREAM_PRIO unset, text's stream (1) above image's (0), and image's
# above text's, in turn, twice, on 8 SMs and the whole GPU. From the
# repository root of a copy carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   sh bench/results/stream-prio-h100-2026-11-26/session.sh OUT
# (the bundle built with experiment.patch applied; not kept)
set -u
out=${1:?usage: prio-session.sh OUT}
mkdir -p "$out"
export LD_LIBRARY_PATH="$(pwd)/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=/tmp/mmf-cache-prio
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
for r in 1 2; do
	for p in none 0,-1 -1,0 0,-5 -5,0; do
		echo "== round $r: MMF_STREAM_PRIO=$p"
		if [ $p = none ]; then unset MMF_STREAM_PRIO; else export MMF_STREAM_PRIO=$p; fi
		timeout 200 .gpu/mmf-bench --device cuda --model rn50 --sms 8,all --modes graph,graph-streams --iters 200 \
			--json "$out/prio-$p-$r.json" >"$out/prio-$p-$r.log" 2>&1
		echo "   exit $?"
		grep -E "graph-streams  both|MMF_STREAM_PRIO" "$out/prio-$p-$r.log"
	done
done
