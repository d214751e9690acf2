#!/bin/sh
# Which named-barrier arrangement compute-sanitizer racecheck models for the
# intra-thread fused kernel: test_barrier's variants 0-5 (the pattern with
# no op), then the intra-thread conv x attention pair of test_fuse
# (MMF_FUSE_PAIR=2) under each MMF_INTRA_BARS "A,ALL" (team A's barrier,
# the block's barrier; the default is 1,3).
# From the repository root of a copy carrying .gpu (tools/gpu-bundle.sh),
# unpacked:
#   tools/racecheck-bars-session.sh OUT [BARS...]     (default: 1,3 1,0 0,3)
set -u
out=${1:?usage: racecheck-bars-session.sh OUT [BARS...]}
shift
[ $# -gt 0 ] || set -- 1,3 1,0 0,3
mkdir -p "$out"
top=$(pwd)
export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for v in 0 1 2 3 4 5; do
	timeout 120 compute-sanitizer --tool racecheck --racecheck-report hazard --print-limit 4 .gpu/test_barrier $v \
		>"$out/barrier-v$v.log" 2>&1
	echo "test_barrier $v: exit $? $(grep -E 'RACECHECK SUMMARY|mismatches' "$out/barrier-v$v.log" | tr '\n' ' ')"
done
for b in "$@"; do
	t0=$(date +%s)
	MMF_INTRA_BARS=$b MMF_FUSE_QUICK=1 MMF_FUSE_ONLY=intra-thread MMF_FUSE_PAIR=2 timeout 150 \
		compute-sanitizer --tool racecheck --racecheck-report hazard --print-limit 4 --error-exitcode 9 \
		.gpu/test_fuse >"$out/fuse-pair2-bars-$b.log" 2>&1
	echo "test_fuse pair 2, MMF_INTRA_BARS=$b: exit $? ($(($(date +%s) - t0)) s) $(grep -E 'RACECHECK SUMMARY|passed' "$out/fuse-pair2-bars-$b.log" | tr '\n' ' ')"
done
