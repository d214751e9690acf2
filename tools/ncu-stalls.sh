#!/bin/sh
# Where the warps of one batch-1 iteration wait: Nsight Compute's warp
# state statistics (stall reasons per issued instruction) for every kernel
# of one seq iteration, with the kernel -> op list, from a bundle or build
# directory BIN_DIR:
#   tools/ncu-stalls.sh BIN_DIR OUT_DIR [SMS] [MODEL]
# Writes OUT_DIR/stalls-raw.csv (ncu --csv, one row per kernel and metric)
# and OUT_DIR/ops-seq.csv. Kernels run one at a time under ncu. In CSV the
# section gives the cycles per issued instruction and ncu's notes only; for a
# per-reason breakdown add the smsp__average_warp_latency_issue_stalled_*
# metrics (bench/results/ncu-stalls-rn50-b1-h200-2026-11-26.json).
set -eu
bin=$1 out=$2 sms=${3:-all} model=${4:-rn50}
command -v ncu >/dev/null || { echo "ncu-stalls: ncu (Nsight Compute) not found" >&2; exit 1; }
mkdir -p "$out"
ncu --profile-from-start off --clock-control none --section WarpStateStats --section LaunchStats --csv \
	"$bin/mmf-bench" --device cuda --model "$model" --sms "$sms" --modes seq --iters 1 --warmup 0 \
	--profile seq --profile-ops "$out/ops-seq.csv" > "$out/stalls-raw.csv"
