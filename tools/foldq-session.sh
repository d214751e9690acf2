#!/bin/sh
# First GPU run of the quartered folded attention pool (MMF_POOL_FOLD=q,
# kernels/pool_fold.cuh, written in stop 20 and not yet run on a GPU):
# test_ops (both launch forms against the CPU and bitwise equal to each
# other), then an A/B of one binary, "base" (the defaults) and "q"
# (MMF_POOL_FOLD=q), alternating ROUNDS times (tools/ab-bench.sh), then the
# per-op table of q beside base's (mmf-bench --ops at 8 SMs and the whole
# GPU). From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh),
# unpacked:
#   ROUNDS=2 tools/foldq-session.sh OUT
set -u
out=${1:?usage: foldq-session.sh OUT}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
timeout 300 .gpu/test_ops >"$out/test_ops.log" 2>&1
echo "test_ops: exit $? $(grep -E 'passed' "$out/test_ops.log")"
grep -E "FAIL|pool_fold" "$out/test_ops.log" | head -24
printf '#!/bin/sh\nexec "%s/mmf-bench" "$@"\n' "$top/.gpu" >"$top/.gpu/mmf-bench-base"
printf '#!/bin/sh\nMMF_POOL_FOLD=q exec "%s/mmf-bench" "$@"\n' "$top/.gpu" >"$top/.gpu/mmf-bench-q"
chmod +x "$top/.gpu/mmf-bench-base" "$top/.gpu/mmf-bench-q"
sh tools/ab-bench.sh "$out/ab" base=.gpu/mmf-bench-base q=.gpu/mmf-bench-q -- \
	--model rn50 --sms 8,all --modes graph,graph-streams,graph-split --split-sms 64 --iters 200 |
	grep -E "^==|graph-split +(image|both)|graph-streams +both"
python3 tools/ab_summary.py "$out/ab" "foldq-session.sh: base = defaults, q = MMF_POOL_FOLD=q" >"$out/ab.json"
for b in base q; do
	MMF_CACHE=/tmp/mmf-cache-ab-$b timeout 300 ".gpu/mmf-bench-$b" --device cuda --model rn50 --sms 8,all --modes graph \
		--ops --iters 50 --json "$out/ops-$b.json" >"$out/ops-$b.log" 2>&1
	echo "ops $b: exit $?; $(grep -E 'attnpool\.attn' "$out/ops-$b.log" | tr -s ' ' | tr '\n' ';')"
done
