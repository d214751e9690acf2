#!/bin/sh
# Split-K through thread-block clusters (kernels/gemm.cuh,
# gemm_cluster_reduce) against the global ticket, on one GPU: the GEMM,
# engine and fusion tests (clusters checked bitwise against the ticket),
# then an A/B of the same mmf-bench with MMF_CLUSTER=0 (ticket), without
# (clusters of up to 8) and MMF_CLUSTER=16 (up to 16, non-portable),
# alternating, each tuning its own GEMM shapes, and a traced seq iteration
# of each for tools/trace_anatomy.py. From the
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
# Wrappers: the same binary with the ticket and with clusters of 16.
for v in 0 16; do
	printf '#!/bin/sh\nMMF_CLUSTER=%s exec %s/.gpu/mmf-bench "$@"\n' $v "$top" >/tmp/mmf-cluster$v && chmod +x /tmp/mmf-cluster$v
done
ROUNDS=$rounds sh tools/ab-bench.sh "$out/ab" ticket=/tmp/mmf-cluster0 cluster8="$top/.gpu/mmf-bench" \
	cluster16=/tmp/mmf-cluster16 -- --model rn50 --sms "$sms" --modes graph,graph-streams --iters 200
for v in ticket cluster8 cluster16; do
	case $v in ticket) b=/tmp/mmf-cluster0 ;; cluster8) b=.gpu/mmf-bench ;; *) b=/tmp/mmf-cluster16 ;; esac
	MMF_CACHE=/tmp/mmf-cache-ab-$v timeout 200 $b --device cuda --model rn50 --sms all --modes seq --trace-mode seq \
		--trace "$out/trace-$v.json" --iters 50 >"$out/trace-$v.log" 2>&1
	echo "trace $v: exit $?"
	[ -f "$out/trace-$v.json" ] && python3 tools/trace_anatomy.py "$out/trace-$v.json" --top 25 \
		--json "$out/anatomy-$v.json" >"$out/anatomy-$v.txt" 2>&1 && gzip -f "$out/trace-$v.json"
	head -3 "$out/anatomy-$v.txt"
done
