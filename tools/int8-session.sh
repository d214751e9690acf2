#!/bin/sh
# The INT8 session on the GPU machine (issue 8), from the repository root of
# a copy carrying .gpu (tools/gpu-bundle.sh, PHOTOS set) and .whl:
#   tools/int8-session.sh OUT [checks|bench|all]
# checks: check-gpu (the int8 GEMM/engine/fusion tests included; the
#         sanitizer runs of check-gpu skipped) and compute-sanitizer
#         memcheck + racecheck of the int8 towers and fused int8 kernels;
# bench:  mmf-bench RN50 with fp16 then int8 weights, same GPU, same call,
#         8 SMs and the whole GPU, every mode; then int8_accuracy.py.
set -u
out=${1:?usage: int8-session.sh OUT [checks|bench|all]}
what=${2:-all}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache} MMF_BPE_VOCAB="$top/data/bpe_simple_vocab_16e6.txt.gz"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
step() { name=$1; shift; echo "=== $name ($(date +%T))"; t0=$(date +%s); "$@" >"$out/$name.log" 2>&1; rc=$?;
	echo "    rc $rc, $(( $(date +%s) - t0 )) s"; tail -${TAIL:-6} "$out/$name.log"; }
sanitize() {
	fail=0
	for tool in memcheck racecheck; do
		echo "== compute-sanitizer --tool $tool: one pass of each tower, int8 weights (small model)"
		o=$(timeout 240 compute-sanitizer --tool $tool --error-exitcode 9 .gpu/mmf-bench --device cuda --model small \
			--weights int8 --modes seq --iters 1 --warmup 0 --no-tune 2>&1)
		rc=$?
		echo "$o" | grep -E 'SUMMARY|Error|hazard|check:' | head -5
		[ $rc -eq 0 ] || { echo "FAILED: $tool (rc $rc)"; fail=1; }
	done
	for s in inter intra-block; do
		echo "== compute-sanitizer --tool racecheck: fused $s kernels (small model's pairs, fp16 and int8)"
		o=$(MMF_FUSE_QUICK=1 MMF_FUSE_ONLY=$s timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 \
			.gpu/test_fuse 2>&1)
		rc=$?
		echo "$o" | grep -E 'SUMMARY|passed' | head -3
		[ $rc -eq 0 ] || { echo "FAILED: racecheck fused $s (rc $rc)"; echo "$o" | grep -m3 -A3 'Error:'; fail=1; }
	done
	return $fail
}
if [ "$what" != bench ]; then
	TAIL=12 step check-gpu env MMF_CHECK_SANITIZERS=0 .gpu/check-gpu.sh .gpu
	TAIL=20 step sanitize-int8 sanitize
fi
if [ "$what" != checks ]; then
	for w in fp16 int8; do
		TAIL=30 step bench-rn50-$w .gpu/mmf-bench --device cuda --model rn50 --weights $w --sms 8,all \
			--iters 200 --warmup 20 --json "$out/bench-rn50-$w.json"
	done
	python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
		>"$out/pip.log" 2>&1
	TAIL=20 step int8-accuracy-cuda env PYTHONPATH=/tmp/site python3 tools/int8_accuracy.py --build .gpu \
		--device cuda --photo-dir .gpu/photos --out "$out/int8-accuracy-cuda.json"
fi
ls -la "$out"
