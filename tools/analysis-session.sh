#!/bin/sh
# The analysis session on a multi-GPU machine (issue 7), from the repository
# root of a copy carrying .gpu (tools/gpu-bundle.sh, PHOTOS set) and .whl:
#   tools/analysis-session.sh OUT SECONDS [check]
# Runs `mmf-bench --report OUT/report` on RN50 (the full matrix: fp16, int8
# and fp32 x batch 1, 4, 8 x strategy, plus the PyTorch peer), one scenario
# per GPU, into /tmp/mmf-analysis/report, and stops it cleanly after
# SECONDS (SIGTERM: finished scenarios are kept, so the same command on the
# same machine resumes; on a fresh machine a carried report.tgz in the
# current directory is unpacked first). With `check`, the last GPU runs
# check-gpu without its sanitizer runs (OUT/check-gpu.log) and the one
# before them (OUT/sanitizers.log, cut at SECONDS) while the others run the
# report. OUT/report.tgz holds the report directory (the device returns few
# files).
set -u
out=${1:?usage: analysis-session.sh OUT SECONDS [check]}
secs=${2:?usage: analysis-session.sh OUT SECONDS [check]}
top=$(pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache} MMF_BPE_VOCAB="$top/data/bpe_simple_vocab_16e6.txt.gz"
export MMF_TOOLS="$top/tools" PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
[ -d /tmp/site/open_clip ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
	.whl/*.whl >"$out/pip.log" 2>&1
ngpu=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$out/gpus.txt"
R=/tmp/mmf-analysis
mkdir -p $R
# A previous call's report, returned to us and carried back, resumes here.
[ -d $R/report ] || { [ -f report.tgz ] && tar xzf report.tgz -C $R; }
rep=$ngpu
cpid=
spid=
if [ "${3:-}" = check ] && [ "$ngpu" -gt 2 ]; then
	rep=$((ngpu - 2))
	(CUDA_VISIBLE_DEVICES=$((ngpu - 1)) MMF_CHECK_SANITIZERS=0 .gpu/check-gpu.sh .gpu >"$out/check-gpu.log" 2>&1
	 echo "check-gpu exit $?" >>"$out/check-gpu.log") &
	cpid=$!
	(CUDA_VISIBLE_DEVICES=$((ngpu - 2)) MMF_CHECK_SANITIZERS=only timeout -s TERM "$secs" .gpu/check-gpu.sh .gpu \
		>"$out/sanitizers.log" 2>&1; echo "sanitizers exit $?" >>"$out/sanitizers.log") &
	spid=$!
fi
echo "report on $rep GPU(s) for at most $secs s"
timeout -s TERM "$secs" .gpu/mmf-bench --report $R/report --report-gpus "$rep" --model rn50 --iters 100 --warmup 10
echo "report exit $?"
[ -n "$cpid" ] && { wait "$cpid"; tail -3 "$out/check-gpu.log"; }
[ -n "$spid" ] && { wait "$spid"; tail -3 "$out/sanitizers.log"; }
tar czf "$out/report.tgz" -C $R report
ls -la "$out"
