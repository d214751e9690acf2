#!/bin/sh
# The GPU checks for split-K through clusters: check-gpu without its
# sanitizer runs, then compute-sanitizer memcheck and racecheck on one pass
# of both RN50 towers on the whole GPU with the heuristic GEMM shapes
# (--no-tune: split-K, hence clusters, on the few-tile GEMMs; the JSON
# records the shapes). racecheck of the whole pass runs past 200 s, so
# `race` runs synccheck and racecheck on the GEMM kernels alone instead.
# From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh),
# unpacked:
#   tools/cluster-check.sh OUT [all|race]
set -u
out=${1:?usage: cluster-check.sh OUT}
mkdir -p "$out"
export LD_LIBRARY_PATH="$(pwd)/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
what=${2:-all}
san() {	# tool timeout [filter...]
	tool=$1 t=$2
	shift 2
	MMF_CACHE=/tmp/mmf-cache-san timeout "$t" compute-sanitizer --tool $tool --error-exitcode 9 "$@" .gpu/mmf-bench \
		--device cuda --model rn50 --sms all --modes seq --iters 1 --warmup 0 --no-tune --json "$out/$tool-rn50.json" \
		>"$out/$tool-rn50.log" 2>&1
	echo "compute-sanitizer $tool rn50 (--no-tune, whole GPU${1:+, $*}): exit $?" | tee -a "$out/summary.txt"
	tail -3 "$out/$tool-rn50.log"
}
if [ "$what" = all ]; then
	MMF_CHECK_SANITIZERS=0 MMF_CACHE=/tmp/mmf-cache-check timeout 330 .gpu/check-gpu.sh .gpu >"$out/check-gpu-nosan.log" 2>&1
	echo "check-gpu (no sanitizers): exit $?" | tee "$out/summary.txt"
	grep -E "passed|FAILED" "$out/check-gpu-nosan.log" | tail -12
	san memcheck 200
	san racecheck 200
else
	san synccheck 200 --kernel-name kns=gemm_kernel
	san racecheck 380 --kernel-name kns=gemm_kernel
fi
