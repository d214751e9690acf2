#!/bin/sh
# Whether tuning the GEMM shapes on a smaller partition (--tune-sms N, the
# share of the GPU a tower gets while the other runs beside it) helps the
# two-stream time on the whole GPU: an A/B of mmf-bench tuned on the whole
# GPU against tuned on each N. From the repository root of a copy carrying
# .gpu (tools/gpu-bundle.sh), unpacked:
#   tools/tune-sms-session.sh OUT [ROUNDS [N...]]     (default 2 rounds, 64 88)
set -u
out=${1:?usage: tune-sms-session.sh OUT [ROUNDS [N...]]}
rounds=${2:-2}
shift 2 2>/dev/null || shift $#
top=$(pwd)
builds="whole=$top/.gpu/mmf-bench"
for n in ${*:-64 88}; do
	printf '#!/bin/sh\nexec %s/.gpu/mmf-bench "$@" --tune-sms %s\n' "$top" "$n" >/tmp/mmf-tune$n && chmod +x /tmp/mmf-tune$n
	builds="$builds tune$n=/tmp/mmf-tune$n"
done
ROUNDS=$rounds sh tools/ab-bench.sh "$out" $builds -- --model rn50 --sms all --modes graph,graph-streams --iters 200
