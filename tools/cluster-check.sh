#!/bin/sh
# The GPU checks for split-K through clusters: check-gpu without its
# sanitizer runs, then compute-sanitizer memcheck and racecheck on one pass
# of both RN50 towers on the whole GPU with the heuristic GEMM shapes
# (--no-tune: split-K, hence clusters, on the few-tile GEMMs). From the
# repository root of a copy carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   tools/cluster-check.sh OUT
set -u
out=${1:?usage: cluster-check.sh OUT}
mkdir -p "$out"
export LD_LIBRARY_PATH="$(pwd)/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
MMF_CHECK_SANITIZERS=0 MMF_CACHE=/tmp/mmf-cache-check timeout 330 .gpu/check-gpu.sh .gpu >"$out/check-gpu-nosan.log" 2>&1
echo "check-gpu (no sanitizers): exit $?" | tee "$out/summary.txt"
grep -E "passed|FAILED" "$out/check-gpu-nosan.log" | tail -12
for tool in memcheck racecheck; do
	MMF_CACHE=/tmp/mmf-cache-san timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 .gpu/mmf-bench --device cuda \
		--model rn50 --sms all --modes seq --iters 1 --warmup 0 --no-tune >"$out/$tool-rn50.log" 2>&1
	echo "compute-sanitizer $tool rn50 (--no-tune, whole GPU): exit $?" | tee -a "$out/summary.txt"
	tail -3 "$out/$tool-rn50.log"
done
