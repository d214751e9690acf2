#!/bin/sh
# The DRAM-limit session (emulated Jetson bandwidth, --dram-gbs), from the
# repository root of a copy carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   tools/dram-session.sh OUT [PHASE...]
# Phases (default: limits trace):
#   limits   RN50 batch 1, fp16 and int8, graph / graph-streams / fused-graph
#            (each tower alone too) on the partitions of the Jetsons:
#            16 SMs at 205 GB/s (Orin AGX), 8 SMs at 102 (Orin NX) and at
#            68 (Orin Nano), each beside the same partition without a limit.
#            DRAM_SCENARIOS="SMS:GBS ..." replaces that list.
#   trace    one traced fused iteration at 8 SMs (SM utilisation), with
#            this bundle, and with OLD_BENCH (an older mmf-bench) under
#            CUDA's default lazy and under eager kernel loading.
#   ab       OLD_BENCH against .gpu/mmf-bench at 8 SMs and on the whole GPU
#            (tools/ab-bench.sh: alternating twice, own plan caches; OUT/ab).
#   check    check-gpu without its sanitizer runs (OUT/check-gpu.log); on a
#            machine with several GPUs it runs on the last one, beside the
#            other phases on GPU 0.
# Every run has a log and a JSON in OUT.
set -u
out=${1:?usage: dram-session.sh OUT [limits|trace|ab|check ...]}
shift
phases=${*:-limits trace}
old=${OLD_BENCH:-}
top=$(pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
ngpu=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=index,name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$out/gpus.txt"
bench() {	# name, then mmf-bench and its arguments
	n=$1
	shift
	echo "== $n: $*"
	timeout 400 "$@" --model rn50 --device cuda --json "$out/$n.json" >"$out/$n.log" 2>&1
	echo "   exit $?"
	grep -E "DRAM limit|== partition|graph|trace fused|mmf-bench:" "$out/$n.log" | head -30
}
limits() {
	done_free=
	for sc in ${DRAM_SCENARIOS:-16:205 8:102 8:68}; do
		s=${sc%%:*} g=${sc#*:}
		for w in fp16 int8; do
			case " $done_free " in *" $s-$w "*) ;; *)
				bench "${s}sm-$w-free" .gpu/mmf-bench --weights $w --sms $s --modes graph,graph-streams,fused-graph \
					--iters 100
				done_free="$done_free $s-$w" ;;
			esac
			bench "${s}sm-$w-dram$g" .gpu/mmf-bench --weights $w --sms $s --modes graph,graph-streams,fused-graph \
				--iters 100 --dram-gbs $g
		done
	done
}
trace() {
	MMF_CACHE=/tmp/mmf-cache-tr bench trace-8sm-fused .gpu/mmf-bench --sms 8 --modes fused-graph --iters 50 \
		--trace "$out/trace-8sm-fused.chrome.json"
	gzip -f "$out/trace-8sm-fused.chrome.json"
	[ -n "$old" ] || return 0
	MMF_CACHE=/tmp/mmf-cache-tr bench trace-8sm-fused-old-lazy "$old" --sms 8 --modes fused-graph --iters 50 \
		--trace /tmp/old-lazy.json
	CUDA_MODULE_LOADING=EAGER MMF_CACHE=/tmp/mmf-cache-tr bench trace-8sm-fused-old-eager "$old" --sms 8 \
		--modes fused-graph --iters 50 --trace /tmp/old-eager.json
}
ab() {
	[ -n "$old" ] || return 0
	sh "$top/tools/ab-bench.sh" "$out/ab" old="$old" new=.gpu/mmf-bench -- --model rn50 --sms 8,all \
		--modes graph,graph-streams,fused-graph
}
check() {
	MMF_CACHE=/tmp/mmf-cache-check MMF_CHECK_SANITIZERS=0 .gpu/check-gpu.sh .gpu >"$out/check-gpu.log" 2>&1
	echo "check-gpu exit $?" | tee -a "$out/check-gpu.log"
}
cpid=
export CUDA_VISIBLE_DEVICES=0
for p in $phases; do
	case $p in
	check)
		if [ "$ngpu" -gt 1 ]; then
			CUDA_VISIBLE_DEVICES=$((ngpu - 1)) check &
			cpid=$!
		else
			check
		fi ;;
	limits|trace|ab) $p ;;
	*) echo "dram-session.sh: unknown phase '$p'" >&2; exit 2 ;;
	esac
done
[ -n "$cpid" ] && wait "$cpid"
ls -la "$out"
