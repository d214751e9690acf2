#!/bin/sh
# A/B of mmf-bench builds on one GPU: runs each build in turn, ROUNDS times
# (alternating, so drift hits all alike), each with its own plan cache, and
# prints the medians side by side. From the repository root of a copy
# carrying .gpu (tools/gpu-bundle.sh), unpacked:
#   ROUNDS=2 tools/ab-bench.sh OUT NAME=PATH [NAME=PATH ...] -- MMF-BENCH ARGS
# e.g. tools/ab-bench.sh out base=.gpu/mmf-bench try=/tmp/x/mmf-bench -- \
#        --model rn50 --sms 8,all --modes graph,graph-streams
# Writes OUT/NAME-ROUND.json and .log, OUT/ab.txt and OUT/builds.txt.
set -u
out=${1:?usage: ab-bench.sh OUT NAME=PATH ... -- ARGS}
shift
builds=
while [ $# -gt 0 ] && [ "$1" != -- ]; do builds="$builds $1"; shift; done
[ "${1:-}" = -- ] && shift
mkdir -p "$out"
export LD_LIBRARY_PATH="$(pwd)/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader >"$out/gpu.txt"
# Which binary each name was: a JSON's "commit" is MMF_COMMIT if set (the
# same for every build) or the build's own configure-time hash, so this
# list is the record of what ran.
for b in $builds; do echo "${b%%=*} ${b#*=} $(sha256sum "${b#*=}" | cut -c1-16)"; done >"$out/builds.txt"
r=1
while [ $r -le "${ROUNDS:-2}" ]; do
	for b in $builds; do
		n=${b%%=*} p=${b#*=}
		echo "== round $r: $n ($p)"
		MMF_CACHE=/tmp/mmf-cache-ab-$n timeout 500 "$p" --device cuda "$@" --json "$out/$n-$r.json" >"$out/$n-$r.log" 2>&1
		echo "   exit $?"
		grep -E "roofline|graph" "$out/$n-$r.log"
	done
	r=$((r + 1))
done | tee "$out/ab.txt"
