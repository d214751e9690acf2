#!/bin/sh
# Nsight Compute on one iteration of a chosen mode, joined with the op
# chain: per kernel, achieved occupancy, SM throughput %, DRAM throughput %
# and duration, as CSV and JSON.
#   tools/ncu_metrics.sh BIN_DIR OUT_DIR [seq|fused] [SMS] [MODEL]
# BIN_DIR holds mmf-bench (the build tree or a gpu-bundle.sh bundle); SMS is
# one partition (all by default); MODEL a file or synthetic name (rn50).
# ncu serialises kernels, so durations are each kernel alone, not the
# overlapped time of the mode.
set -eu
bin=$1 out=$2 mode=${3:-seq} sms=${4:-all} model=${5:-rn50}
here=$(cd "$(dirname "$0")" && pwd)
command -v ncu >/dev/null || { echo "ncu_metrics: ncu (Nsight Compute) not found" >&2; exit 1; }
mkdir -p "$out"
metrics=gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed
echo "ncu_metrics: profiling one $mode iteration on $sms SMs ($model)" >&2
ncu --profile-from-start off --clock-control none --metrics "$metrics" --csv \
	"$bin/mmf-bench" --device cuda --model "$model" --sms "$sms" --modes seq --iters 1 --warmup 0 \
	--profile "$mode" --profile-ops "$out/ops-$mode.csv" > "$out/ncu-raw-$mode.csv"
MMF_GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) MMF_SMS=$sms MMF_MODE=$mode \
	python3 "$here/ncu_join.py" "$out/ncu-raw-$mode.csv" "$out/ops-$mode.csv" "$out/ncu-$mode"
