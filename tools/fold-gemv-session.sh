#!/bin/sh
# First GPU run of the two experimental paths (docs/NOTES.md): the folded
# attention pool (MMF_POOL_FOLD=1) and the matrix-vector tile for linears of
# at most 8 rows (MMF_GEMV=1). Checks them (test_ops, test_gemm: the new
# kernels against the CPU), then an A/B of the same binary with neither,
# each and both (tools/ab-bench.sh, alternating ROUNDS times), then the
# per-op table of the base and of both.
# From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh),
# unpacked:
#   ROUNDS=2 tools/fold-gemv-session.sh OUT [MMF-BENCH ARGS]
# (default args: --model rn50 --sms 8,all --modes graph,graph-streams,graph-split
#  --split-sms 64 --iters 200)
set -u
out=${1:?usage: fold-gemv-session.sh OUT [MMF-BENCH ARGS]}
shift
[ $# -gt 0 ] || set -- --model rn50 --sms 8,all --modes graph,graph-streams,graph-split --split-sms 64 --iters 200
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for t in test_ops test_gemm; do
	timeout 300 ".gpu/$t" >"$out/$t.log" 2>&1
	echo "$t: exit $? $(grep -E 'passed' "$out/$t.log")"
	grep -E "FAIL|pool_fold|gemv" "$out/$t.log" | head -12
done
# Wrappers of the one binary, each with its environment.
for v in base: fold:MMF_POOL_FOLD=1 gemv:MMF_GEMV=1 "both:MMF_POOL_FOLD=1 MMF_GEMV=1"; do
	printf '#!/bin/sh\n%s exec "%s/mmf-bench" "$@"\n' "${v#*:}" "$top/.gpu" >"$top/.gpu/mmf-bench-${v%%:*}"
	chmod +x "$top/.gpu/mmf-bench-${v%%:*}"
done
sh tools/ab-bench.sh "$out/ab" base=.gpu/mmf-bench-base fold=.gpu/mmf-bench-fold gemv=.gpu/mmf-bench-gemv \
	both=.gpu/mmf-bench-both -- "$@"
for b in base both; do
	MMF_CACHE=/tmp/mmf-cache-ab-$b timeout 300 ".gpu/mmf-bench-$b" --device cuda --model rn50 --sms 8,all --modes graph \
		--ops --iters 50 --json "$out/ops-$b.json" >"$out/ops-$b.log" 2>&1
	echo "ops $b: exit $?"
	grep -E "attnpool|text_projection" "$out/ops-$b.log" | head -12
done
