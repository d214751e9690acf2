#!/bin/sh
# One GPU-machine session for the real-inputs and daemon work, run from the
# repository root of a copy carrying .gpu (tools/gpu-bundle.sh) and .whl:
#   tools/gpu-session.sh OUT
# 1. check-gpu (correctness; sanitizers skipped with MMF_CHECK_SANITIZERS=0)
# 2. validate_openclip.py --device cuda (RN50, seeded weights, real photos)
# 3. daemon-bench on CUDA: whole GPU and an 8-SM partition, --fuse auto
# Every result lands in OUT; each step's log too.
set -u
out=${1:?usage: gpu-session.sh OUT}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=/tmp/mmf-cache MMF_BPE_VOCAB="$top/data/bpe_simple_vocab_16e6.txt.gz"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
step() { name=$1; shift; echo "=== $name ($(date +%T))"; t0=$(date +%s); "$@" >"$out/$name.log" 2>&1; rc=$?;
	echo "    rc $rc, $(( $(date +%s) - t0 )) s"; tail -${TAIL:-6} "$out/$name.log"; }
step check-gpu env MMF_CHECK_SANITIZERS=${MMF_CHECK_SANITIZERS:-0} .gpu/check-gpu.sh .gpu
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
	>"$out/pip.log" 2>&1
TAIL=30 step validate-cuda env PYTHONPATH=/tmp/site python3 tools/validate_openclip.py --build .gpu --device cuda \
	--photo-dir .gpu/photos --out "$out/validate-cuda.json"
for sms in ${SMS_LIST:-0 8}; do
	TAIL=4 step daemon-bench-sms$sms env BIN=.gpu MMFD_ARGS="--max-batch 4" \
		bench/daemon-bench.sh "$out/daemon-cuda-rn50-sms$sms.json" rn50 cuda $sms
done
ls -la "$out"
