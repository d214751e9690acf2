#!/bin/sh
# What slows graph-split's towers beside each other (~8% each on H100/H200,
# docs/NOTES.md): each tower alone on a 64-SM partition (graph mode), with
# nothing on the other SMs and then with the DRAM hog of --dram-gbs there
# at a few targets, plus the SM clock sampled during each run. If the
# towers slow by ~8% only where the hog leaves the partition far less
# bandwidth than the other tower ever uses, DRAM bandwidth is not the cause.
# From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh),
# unpacked:
#   tools/contention-session.sh OUT [TARGETS]     (default "1500 1700 1900")
# On an H200 (2026-11-27) the hog held only targets near its floor (~1650-
# 1800 GB/s for 64 SMs): 3000, 2500 and 2000 were refused, 1000 too low
# (bench/results/contention-h200-2026-11-27/).
set -u
out=${1:?usage: contention-session.sh OUT [TARGETS]}
targets=${2:-1500 1700 1900}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
for t in none $targets; do
	flag=; [ "$t" = none ] || flag="--dram-gbs $t"
	nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader -lms 200 >"$out/clocks-$t.csv" 2>&1 &
	smi=$!
	# shellcheck disable=SC2086
	MMF_CACHE=/tmp/mmf-cache-cont timeout 300 .gpu/mmf-bench --device cuda --model rn50 --sms 64 --modes graph \
		--iters 400 $flag --json "$out/graph-64-$t.json" >"$out/graph-64-$t.log" 2>&1
	echo "dram target $t: exit $?"
	kill "$smi" 2>/dev/null
	grep -E "graph  |DRAM|limited" "$out/graph-64-$t.log" | head -6
done
# graph-split itself with the clock sampled, for the same comparison.
nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader -lms 200 >"$out/clocks-split.csv" 2>&1 &
smi=$!
MMF_CACHE=/tmp/mmf-cache-cont timeout 300 .gpu/mmf-bench --device cuda --model rn50 --sms all --modes graph-split \
	--split-sms 64 --iters 400 --json "$out/split.json" >"$out/split.log" 2>&1
echo "graph-split: exit $?"
kill "$smi" 2>/dev/null
grep -E "graph-split" "$out/split.log"
