#!/bin/sh
# Issue 3's speed bar on the GPU machine, from the repository root of a copy
# carrying .gpu (tools/gpu-bundle.sh, unpacked) and .whl (open_clip_torch,
# ftfy, wcwidth wheels):
#   tools/bar-session.sh OUT
# GPU 0 runs the benchmark of record (tools/gpu-bench.sh: mmf-bench and the
# PyTorch peer, same GPU, same run, 200 iterations) at SMS (default 8,all)
# without the per-op and pair tables (EXTRA: more mmf-bench flags); with several GPUs the last one runs
# the whole of check-gpu beside it (OUT/check-gpu.log).
set -u
out=${1:?usage: bar-session.sh OUT}
top=$(pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache} PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
[ -d /tmp/site/open_clip ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
	.whl/*.whl >"$out/pip.log" 2>&1
ngpu=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$out/gpus.txt"
cpid=
if [ "$ngpu" -gt 1 ]; then
	(CUDA_VISIBLE_DEVICES=$((ngpu - 1)) MMF_CACHE=/tmp/mmf-cache-check .gpu/check-gpu.sh .gpu >"$out/check-gpu.log" 2>&1
	 echo "check-gpu exit $?" >>"$out/check-gpu.log") &
	cpid=$!
fi
CUDA_VISIBLE_DEVICES=0 SMS=${SMS:-8,all} EXTRA=${EXTRA-} sh .gpu/gpu-bench.sh .gpu "$out/record"
echo "record exit $?"
[ -n "$cpid" ] && { wait "$cpid"; tail -3 "$out/check-gpu.log"; }
ls -la "$out" "$out/record"
