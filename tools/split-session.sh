#!/bin/sh
# graph-split (each tower on its own SMs) on one GPU, from the repository
# root of a copy carrying .gpu (tools/gpu-bundle.sh, unpacked) and .whl
# (open_clip_torch, ftfy, wcwidth wheels for the PyTorch peer):
#   tools/split-session.sh OUT [STEPS]
# STEPS (default "check bar") is a list of:
#   check    test_part (spans of groups, disjoint SMs) and the small model
#            through graph-split at 16, 32 and all SMs (correctness)
#   bar      the benchmark of record at 8 SMs and the whole GPU
#            (tools/bar-session.sh: mmf-bench with every mode, graph-split
#            trying SPLIT image SMs, and PyTorch in the same run)
#   explore  RN50 graph-streams against graph-split at 16, 32 and 64 SMs
#   gpucheck check-gpu without its sanitizer runs (tools/check-gpu.sh)
set -u
out=${1:?usage: split-session.sh OUT [STEPS]}
steps=${2:-check bar}
split=${SPLIT:-48,56,64,72,80}
top=$(pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
for step in $steps; do
	case $step in
	check)
		timeout 120 .gpu/test_part >"$out/test_part.log" 2>&1
		echo "test_part: exit $?" | tee -a "$out/checks.txt"
		grep -E "span|FAIL" "$out/test_part.log" | head -8
		timeout 240 .gpu/mmf-bench --device cuda --model small --sms 16,32,all --modes graph-streams,graph-split \
			--split-sms 8,16,64 --iters 20 --warmup 5 >"$out/small.log" 2>&1
		echo "small graph-split: exit $?" | tee -a "$out/checks.txt"
		grep -E "graph-split|partition:" "$out/small.log"
		;;
	bar)
		SMS=8,all EXTRA="--split-sms $split" sh tools/bar-session.sh "$out/bar" >"$out/bar.log" 2>&1
		echo "bar: exit $?" | tee -a "$out/checks.txt"
		grep -E "graph-split|graph-streams +both|ratio|^ +[0-9]+ " "$out/bar.log" | tail -24
		;;
	explore)
		timeout 400 .gpu/mmf-bench --device cuda --model rn50 --sms 16,32,64 --modes graph-streams,graph-split \
			--iters 200 --json "$out/explore.json" >"$out/explore.log" 2>&1
		echo "explore: exit $?" | tee -a "$out/checks.txt"
		grep -E "graph-split|graph-streams +both|partition:" "$out/explore.log"
		;;
	gpucheck)
		MMF_CHECK_SANITIZERS=0 MMF_CACHE=/tmp/mmf-cache-check timeout 330 .gpu/check-gpu.sh .gpu >"$out/check-gpu-nosan.log" 2>&1
		echo "check-gpu (no sanitizers): exit $?" | tee -a "$out/checks.txt"
		grep -E "passed|FAILED" "$out/check-gpu-nosan.log" | tail -12
		;;
	*) echo "split-session: unknown step '$step'" >&2; exit 2 ;;
	esac
done
