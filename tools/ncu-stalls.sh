#!/bin/sh
# Where the warps of one batch-1 iteration wait: Nsight Compute's stall
# reasons per issued instruction (smsp__average_warps_issue_stalled_*_
# per_issue_active.ratio, one value per reason) for every kernel of one seq
# iteration, with the kernel -> op list, from a bundle or build directory
# BIN_DIR:
#   tools/ncu-stalls.sh BIN_DIR OUT_DIR [SMS] [MODEL]
# Writes OUT_DIR/stalls-raw.csv (ncu --csv --page raw, one row per kernel
# and metric), OUT_DIR/ops-seq.csv and OUT_DIR/metrics-query.txt (the
# chip's instruction-cache metrics, for a follow-up). Kernels run one at a
# time under ncu, caches not flushed between them (--cache-control none),
# clocks not pinned; summarise with tools/ncu_stalls_sum.py.
set -eu
bin=$1 out=$2 sms=${3:-all} model=${4:-rn50}
command -v ncu >/dev/null || { echo "ncu-stalls: ncu (Nsight Compute) not found" >&2; exit 1; }
mkdir -p "$out"
ncu --query-metrics --chip gh100 2>/dev/null | grep -iE "icc|instruction cache|inst_cache|imc" >"$out/metrics-query.txt" || true
ncu --profile-from-start off --clock-control none --cache-control none --page raw --csv \
	--metrics 'regex:^smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio$,gpu__time_duration.sum,smsp__inst_executed.sum,launch__grid_size' \
	"$bin/mmf-bench" --device cuda --model "$model" --sms "$sms" --modes seq --iters 1 --warmup 0 \
	--profile seq --profile-ops "$out/ops-seq.csv" > "$out/stalls-raw.csv"
