#!/bin/sh
# Split-K through thread-block clusters (kernels/gemm.cuh,
# gemm_cluster_reduce) against the global ticket, on one GPU: the GEMM,
# engine and fusion tests (clusters checked bitwise against the ticket),
# then an A/B of the same mmf-bench with MMF_CLUSTER=0 (ticket) and
# without (clusters), alternating, each tuning its own GEMM shapes, and a
# traced seq iteration of each for tools/trace_anatomy.py. From the
# repository root of a copy carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   tools/cluster-session.sh OUT [ROUNDS [SMS]]     (default 2 rounds, 8,all)
set -u
out=${1:?usage: cluster-session.sh OUT [ROUNDS [SMS]]}
rounds=${2:-2}
sms=${3:-8,all}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
for t in test_gemm test_engine test_fuse; do
	timeout 300 .gpu/$t >"$out/$t.log" 2>&1
	echo "$t: exit $?" | tee -a "$out/tests.txt"
	grep -E "clusters|passed|FAIL" "$out/$t.log" | tail -3
done
# A wrapper: the same binary with the ticket.
printf '#!/bin/sh\nMMF_CLUSTER=0 exec %s/.gpu/mmf-bench "$@"\n' "$top" >/tmp/mmf-ticket && chmod +x /tmp/mmf-ticket
ROUNDS=$rounds sh tools/ab-bench.sh "$out/ab" ticket=/tmp/mmf-ticket cluster="$top/.gpu/mmf-bench" -- \
	--model rn50 --sms "$sms" --modes graph,graph-streams --iters 200
for v in ticket cluster; do
	b=/tmp/mmf-ticket
	[ $v = cluster ] && b=.gpu/mmf-bench
	MMF_CACHE=/tmp/mmf-cache-ab-$v timeout 200 $b --device cuda --model rn50 --sms all --modes seq --trace-mode seq \
		--trace "$out/trace-$v.json" --iters 50 >"$out/trace-$v.log" 2>&1
	echo "trace $v: exit $?"
	[ -f "$out/trace-$v.json" ] && python3 tools/trace_anatomy.py "$out/trace-$v.json" --top 25 \
		--json "$out/anatomy-$v.json" >"$out/anatomy-$v.txt" 2>&1 && gzip -f "$out/trace-$v.json"
	head -3 "$out/anatomy-$v.txt"
done
