#!/bin/sh
# A/B of the experimental text attention + out_proj kernel
# (kernels/attn_proj.cuh, MMF_ATTN_PROJ=1; sm_90+): test_ops (attn_proj
# against the CPU, both launch forms bitwise), then an A/B of one binary:
# "old" (the attention-pool fold and the matrix-vector tile off too),
# "ap0" (the defaults) and "new" (the defaults and MMF_ATTN_PROJ=1),
# alternating ROUNDS times (tools/ab-bench.sh), at the split of the record
# (64 SMs for the image tower) and at 72; then the per-op tables of old and
# new. Stop 20 ran it when attn_proj was on by default ("ap0" was
# MMF_ATTN_PROJ=0 then): bench/results/attn-proj-h200-2026-11-27*.
# From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   ROUNDS=2 SPLITS="64 72" tools/attn-proj-session.sh OUT
set -u
out=${1:?usage: attn-proj-session.sh OUT}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
timeout 300 .gpu/test_ops >"$out/test_ops.log" 2>&1
echo "test_ops: exit $? $(grep -E 'passed' "$out/test_ops.log")"
grep -E "FAIL|attn_proj" "$out/test_ops.log" | head -16
for v in "old:MMF_POOL_FOLD=0 MMF_GEMV=0" ap0: new:MMF_ATTN_PROJ=1; do
	printf '#!/bin/sh\n%s exec "%s/mmf-bench" "$@"\n' "${v#*:}" "$top/.gpu" >"$top/.gpu/mmf-bench-${v%%:*}"
	chmod +x "$top/.gpu/mmf-bench-${v%%:*}"
done
for split in ${SPLITS:-64 72}; do
	sh tools/ab-bench.sh "$out/ab-split$split" old=.gpu/mmf-bench-old ap0=.gpu/mmf-bench-ap0 new=.gpu/mmf-bench-new -- \
		--model rn50 --sms 8,16,all --modes graph,graph-streams,graph-split --split-sms "$split" --iters 200 |
		grep -E "^==|graph-split +both|graph-streams +both"
done
for b in old new; do
	MMF_CACHE=/tmp/mmf-cache-ab-$b timeout 300 ".gpu/mmf-bench-$b" --device cuda --model rn50 --sms 16,all --modes graph \
		--ops --iters 50 --json "$out/ops-$b.json" >"$out/ops-$b.log" 2>&1
	echo "ops $b: exit $?"
	grep -E "block0\.attn|block11\.attn|attnpool" "$out/ops-$b.log" | head -16
done
