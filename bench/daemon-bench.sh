#!/bin/sh
# The daemon path's cost (issue 5's benchmark): text requests through
# mmfctl -> mmfd against the same engine call in process, and throughput
# with 1, 4 and 16 clients (text only, and text+image 1:1, which the worker
# pairs into image+text steps: fused on the GPU where the plan is faster).
# Writes JSON to OUT.
#   bench/daemon-bench.sh [OUT.json] [MODEL] [cpu|cuda] [SMS]
# BIN (default: the tree's top) holds mmfd, mmfctl and mmf-bench.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$top}
device=${3:-cpu}
sms=${4:-0}
out=${1:-$top/bench/results/daemon-$device-$(date -u +%Y-%m-%d).json}
model=${2:-tiny}
T=$(mktemp -d "${TMPDIR:-/tmp}/mmf-dbench-XXXXXX")
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
# One engine thread on both sides: on a small machine more threads starve
# the daemon's event loop (docs/DAEMON.md).
t0=$(date +%s)
# MMFD_ARGS: more mmfd options (e.g. --max-batch 4), recorded in the JSON.
# shellcheck disable=SC2086
"$bin/mmfd" --foreground --model "$model" --socket "$T/s.sock" --threads 1 --device "$device" --sms "$sms" \
	--plan-dir "$MMF_CACHE/plans" ${MMFD_ARGS:-} >"$T/mmfd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 6000); do "$bin/mmfctl" --socket "$T/s.sock" health >/dev/null 2>&1 && break; sleep 0.1; done
startup_s=$(( $(date +%s) - t0 ))
echo "daemon-bench: mmfd ready after ${startup_s} s" >&2
grep -E "planned|fused .* us|roofline" "$T/mmfd.log" >&2 || true
"$bin/mmfctl" --socket "$T/s.sock" plan > "$T/plan.json"
if [ "$device" = cuda ]; then
	part=all; [ "$sms" = 0 ] || part=$sms
	"$bin/mmf-bench" --model "$model" --device cuda --sms "$part" --modes graph --iters 400 --warmup 20 \
		--json "$T/inproc.json" >/dev/null
else
	"$bin/mmf-bench" --model "$model" --threads 1 --iters 400 --warmup 20 --json "$T/inproc.json" >/dev/null
fi
for c in 1 4 16; do
	echo "daemon-bench: $c client(s)" >&2
	"$bin/mmfctl" --socket "$T/s.sock" --json bench --clients $c --requests $((400 * c)) --mix 1:0 2>/dev/null > "$T/text-$c.json"
	"$bin/mmfctl" --socket "$T/s.sock" --json bench --clients $c --requests $((200 * c)) --mix 1:1 --image-size 64 2>/dev/null > "$T/mix-$c.json"
done
"$bin/mmfctl" --socket "$T/s.sock" --json stats > "$T/stats.json"
commit=${MMF_COMMIT:-$(cd "$top" && git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
[ "$device" = cpu ] || cp "$T/mmfd.log" "${out%.json}.mmfd.log"
python3 - "$T" "$out" "$commit" "$device" "$startup_s" "${MMFD_ARGS:-}" <<'PY'
import json, sys, datetime, platform
t, out, commit, device, startup_s, mmfd_args = sys.argv[1:]
inp = json.load(open(f"{t}/inproc.json"))
text = {c: json.load(open(f"{t}/text-{c}.json")) for c in (1, 4, 16)}
mix = {c: json.load(open(f"{t}/mix-{c}.json")) for c in (1, 4, 16)}
stats = json.load(open(f"{t}/stats.json"))
plan = json.loads(open(f"{t}/plan.json").read())
if device == "cuda":
    # the text tower as one CUDA graph launch, host wall time (launch + sync),
    # without the input upload and output download the daemon's step also does
    part = inp["partitions"][0]
    g = [m for m in part["modes"] if m["mode"] == "graph" and m["what"] == "text"][0]
    ip = {"median_ms": g["host_wall_ms"], "p99_ms": g["p90_ms"]}
    where = {"gpu": inp.get("gpu"), "gpu_sms": part["sms"]}
else:
    ip = inp["towers"]["text"]
    where = {"cpu": inp["cpu"]}
d1 = text[1]["text"]
res = {
    "benchmark": "daemon-bench", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "commit": commit, "device": device, **where, "model": inp["model"], "config": inp["config"],
    "engine_threads": 1, "mmfd_args": mmfd_args, "startup_s": int(startup_s), "plan": plan,
    "daemon_counters": {k: v for k, v in stats.items() if k.startswith(("steps_", "gpu_", "batches", "mean_batch"))},
    "in_process_text_ms": {"p50": ip["median_ms"], "p99": ip["p99_ms"]},
    "daemon_text_1_client_ms": {"p50": d1["p50_ms"], "p99": d1["p99_ms"]},
    "added_by_daemon_us": {"p50": round((d1["p50_ms"] - ip["median_ms"]) * 1e3, 1),
                           "p99": round((d1["p99_ms"] - ip["p99_ms"]) * 1e3, 1)},
    "throughput_rps": {"text": {c: text[c]["throughput_rps"] for c in text},
                       "text_image_1_1": {c: mix[c]["throughput_rps"] for c in mix}},
    "runs": {"text": text, "mix": mix},
    "note": ("CPU backend, one engine thread" if device == "cpu" else
             "CUDA backend; in-process = the text tower's CUDA graph, host wall time (p99 field: its p90 GPU time); "
             "the daemon's step also uploads inputs and downloads the embedding")
            + "; batching across clients raises throughput with more clients",
}
json.dump(res, open(out, "w"), indent=1)
print(f"in process text p50 {ip['median_ms']:.3f} ms, p99 {ip['p99_ms']:.3f} ms; "
      f"through mmfd p50 {d1['p50_ms']:.3f} ms, p99 {d1['p99_ms']:.3f} ms: added p50 {res['added_by_daemon_us']['p50']} us, "
      f"p99 {res['added_by_daemon_us']['p99']} us")
for c in (1, 4, 16):
    print(f"{c:2d} clients: text {text[c]['throughput_rps']:.0f} req/s, text+image {mix[c]['throughput_rps']:.0f} req/s")
print(f"written to {out}")
PY
