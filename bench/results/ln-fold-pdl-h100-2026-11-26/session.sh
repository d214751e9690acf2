#!/bin/sh
# The run behind ../ln-fold-pdl-h100-2026-11-26.json (an experiment that
# was not kept): a bundle (tools/gpu-bundle.sh) of d3a91ba with
# experiment.patch applied as .gpu/mmf-bench, and beside it
#   .gpu/mmf-bench-noln   d3a91ba without the patch
#   .gpu/mmf-bench-pdl1   the patch built with NVCCFLAGS += -DMMF_PDL_VARIANT=1
#   .gpu/mmf-bench-pdl3   the same with -DMMF_PDL_VARIANT=3
# run from the repository root of the copy, .gpu unpacked:
#   sh bench/results/ln-fold-pdl-h100-2026-11-26/session.sh OUT
# A/B of the four (tools/ab-bench.sh, RN50, 8 SMs and the whole GPU, graph
# and graph-streams), compute-sanitizer memcheck and racecheck of one pass
# of each tower (small model, fp16), then check-gpu without sanitizers.
set -u
out=${1:?usage: ln-fold-session.sh OUT}
mkdir -p "$out"
export LD_LIBRARY_PATH=$PWD/.gpu/lib
MMF_COMMIT=d3a91ba+ln-fold-ab ROUNDS=2 tools/ab-bench.sh $out/ab noln=.gpu/mmf-bench-noln ln=.gpu/mmf-bench lnpdl1=.gpu/mmf-bench-pdl1 lnpdl3=.gpu/mmf-bench-pdl3 -- --model rn50 --sms 8,all --modes graph,graph-streams --iters 200 2>&1 | grep -E "==|exit|graph-streams|graph "
for t in memcheck racecheck; do echo "== $t fp16 small"; MMF_CACHE=/tmp/cs timeout 200 compute-sanitizer --tool $t --error-exitcode 9 .gpu/mmf-bench --device cuda --model small --modes seq --iters 1 --warmup 0 --no-tune 2>&1 | grep -E "SUMMARY|hazard|Error" | head -3; done
MMF_CHECK_SANITIZERS=0 timeout 330 .gpu/run.sh > $out/check.log 2>&1; echo "check rc=$?"; grep -E "^==|FAILED|passed|failed" $out/check.log | tail -30
cd "$out" && tar czf ab.tgz ab && rm -rf ab
