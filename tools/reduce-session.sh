#!/bin/sh
# Split-K reduction through the cluster with every remote load in flight
# (kernels/gemm.cuh, gemm_cluster_reduce), and the epilogue's bias and
# residual plus LayerNorm's gamma and beta fetched into L1 early: test_gemm
# (cluster against ticket, bitwise), then an A/B of mmf-bench builds,
# alternating (tools/ab-bench.sh). From the repository root of a copy
# carrying .gpu (tools/gpu-bundle.sh, this tree) and the other builds
# xz-compressed in .ab/ (mmf-bench-NAME.xz):
#   ROUNDS=2 NOTE="what the builds are" tools/reduce-session.sh OUT
# (TESTS="test_gemm test_ops" by default.)
set -u
out=${1:?usage: reduce-session.sh OUT}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
for t in ${TESTS:-test_gemm test_ops}; do
	[ -x ".gpu/$t" ] || continue
	timeout 300 ".gpu/$t" >"$out/$t.log" 2>&1
	echo "$t: exit $? $(grep -E 'passed' "$out/$t.log" | tail -1)"
done
builds="new=.gpu/mmf-bench"
for f in .ab/mmf-bench-*.xz; do
	[ -f "$f" ] || continue
	n=$(basename "$f" .xz)
	xz -dc "$f" >"/tmp/$n" && chmod +x "/tmp/$n"
	builds="${n#mmf-bench-}=/tmp/$n $builds"
done
sh tools/ab-bench.sh "$out/ab" $builds -- --model rn50 --sms 8,all --modes graph-streams,graph-split --split-sms 64 --iters 200 |
	grep -E "^==|graph-split +(image|text|both)|graph-streams +both"
python3 tools/ab_summary.py "$out/ab" "reduce-session.sh: ${NOTE:-base = 50101d8, new = this tree}" >"$out/ab.json"
