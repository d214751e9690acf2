#!/bin/sh
# The GPU benchmark of record: mmf-bench and the PyTorch peer on the same
# GPU in the same run, joined by bench_compare.py.
#   tools/gpu-bench.sh BIN_DIR OUT_DIR [MODEL] [BATCH]
# BIN_DIR holds mmf-bench and mmf-mkmodel (the build tree, or a bundle from
# gpu-bundle.sh); open_clip must be importable (see torch_baseline.py).
# SMS (default 8,16,32,64,all) and EXTRA (mmf-bench flags, default --ops
# --pairs) narrow a run, e.g. SMS=8,all EXTRA= for the issue 3 bar alone.
set -eu
bin=$1 out=$2 model=${3:-rn50} batch=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
mkdir -p "$MMF_CACHE"
w=$MMF_CACHE/$model-seed1.safetensors
[ -f "$w" ] || "$bin/mmf-mkmodel" --seed 1 "$model" "$w"
sms=${SMS:-8,16,32,64,all}
# shellcheck disable=SC2086  # EXTRA is a list of flags
"$bin/mmf-bench" --device cuda --model "$w" --sms "$sms" --batch "$batch" --iters 200 --warmup 20 ${EXTRA---ops --pairs} \
	--json "$out/mmf.json" | tee "$out/mmf.txt"
PYTHONUNBUFFERED=1 python3 "$here/torch_baseline.py" --weights "$w" --sms "$sms" --batch "$batch" \
	--iters 200 --json "$out/torch.json" | tee "$out/torch.txt"
python3 "$here/bench_compare.py" "$out/mmf.json" "$out/torch.json" "$out/compare.json"
