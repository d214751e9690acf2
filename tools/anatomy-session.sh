#!/bin/sh
# Where the time of one batch-1 iteration goes, kernel by kernel, from the
# repository root of a copy carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   tools/anatomy-session.sh OUT [SMS...]     (default: all)
# For each partition: mmf-bench --ops (each op alone) with traced seq,
# streams and graph-streams iterations written as Chrome traces
# (OUT/seq-SMS.json, OUT/streams-SMS.json, OUT/graph-streams-SMS.json);
# tools/trace_anatomy.py then splits each tower's time into kernel spans
# and the gaps between them.
set -u
out=${1:?usage: anatomy-session.sh OUT [SMS...]}
shift
parts=${*:-all}
top=$(pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
nvidia-smi --query-gpu=index,name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$out/gpus.txt"
for s in $parts; do
	for m in seq streams graph-streams; do
		echo "== $s SMs, trace of $m"
		timeout 300 .gpu/mmf-bench --model rn50 --device cuda --sms "$s" --modes seq,graph,graph-streams \
			--iters 200 --ops --trace "$out/$m-$s.json" --trace-mode "$m" --json "$out/bench-$m-$s.json" \
			>"$out/bench-$m-$s.log" 2>&1
		echo "   exit $?"
		grep -E "graph|trace " "$out/bench-$m-$s.log" | head -12
		python3 tools/trace_anatomy.py "$out/$m-$s.json" | tee "$out/anatomy-$m-$s.txt" | tail -12
	done
done
