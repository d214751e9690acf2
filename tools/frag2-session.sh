#!/bin/sh
# Double-buffered GEMM fragments (kernels/gemm.cuh, Cfg::FRAG2) on one GPU:
# the GEMM, engine and fusion tests of the new build, then an A/B of
# mmf-bench against the build before (.gpu/mmf-bench-base), alternating.
# From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh,
# with the earlier mmf-bench copied in as .gpu/mmf-bench-base), unpacked:
#   tools/frag2-session.sh OUT [ROUNDS [SMS]]     (default 2 rounds, 8,all)
# Any other kernel change the same way: TESTS (default "test_gemm
# test_engine test_fuse"; empty: none), NAME (the new build's label, default frag2) and
# MODES (default graph,graph-streams; EXTRA: more mmf-bench flags).
# BUILDS adds NAME=PATH pairs to the A/B (e.g. a wrapper that runs the new
# build with an environment variable set).
set -u
out=${1:?usage: frag2-session.sh OUT [ROUNDS [SMS]]}
rounds=${2:-2}
sms=${3:-8,all}
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for t in ${TESTS-test_gemm test_engine test_fuse}; do
	timeout 240 ".gpu/$t" >"$out/$t.log" 2>&1
	echo "$t: exit $?" | tee -a "$out/tests.txt"
	grep -E "passed|FAIL" "$out/$t.log" | tail -2
done
# shellcheck disable=SC2086
ROUNDS=$rounds sh tools/ab-bench.sh "$out/ab" base="$top/.gpu/mmf-bench-base" "${NAME:-frag2}=$top/.gpu/mmf-bench" ${BUILDS:-} -- \
	--model rn50 --sms "$sms" --modes "${MODES:-graph,graph-streams}" --iters 200 ${EXTRA:-}
