#!/bin/sh
# The daemon path's cost (issue 5's benchmark): text requests through
# mmfctl -> mmfd against the same engine call in process, and throughput
# with 1, 4 and 16 clients, on the CPU backend. Writes JSON to OUT.
#   bench/daemon-bench.sh [OUT.json] [MODEL]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/bench/results/daemon-cpu-$(date -u +%Y-%m-%d).json}
model=${2:-tiny}
T=$(mktemp -d "${TMPDIR:-/tmp}/mmf-dbench-XXXXXX")
export MMF_CACHE=${MMF_CACHE:-/tmp/mmf-cache}
# One engine thread on both sides: on a small machine more threads starve
# the daemon's event loop (docs/DAEMON.md).
"$top/mmfd" --foreground --model "$model" --socket "$T/s.sock" --threads 1 >"$T/mmfd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 100); do "$top/mmfctl" --socket "$T/s.sock" health >/dev/null 2>&1 && break; sleep 0.1; done
"$top/mmf-bench" --model "$model" --threads 1 --iters 400 --warmup 20 --json "$T/inproc.json" >/dev/null
for c in 1 4 16; do
	echo "daemon-bench: $c client(s)" >&2
	"$top/mmfctl" --socket "$T/s.sock" --json bench --clients $c --requests $((400 * c)) --mix 1:0 2>/dev/null > "$T/text-$c.json"
	"$top/mmfctl" --socket "$T/s.sock" --json bench --clients $c --requests $((200 * c)) --mix 1:1 --image-size 64 2>/dev/null > "$T/mix-$c.json"
done
commit=$(cd "$top" && git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
python3 - "$T" "$out" "$commit" <<'PY'
import json, sys, datetime, platform
t, out, commit = sys.argv[1:]
inp = json.load(open(f"{t}/inproc.json"))
text = {c: json.load(open(f"{t}/text-{c}.json")) for c in (1, 4, 16)}
mix = {c: json.load(open(f"{t}/mix-{c}.json")) for c in (1, 4, 16)}
ip = inp["towers"]["text"]
d1 = text[1]["text"]
res = {
    "benchmark": "daemon-bench", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "commit": commit, "device": "cpu", "cpu": inp["cpu"], "model": inp["model"], "config": inp["config"],
    "engine_threads": 1,
    "in_process_text_ms": {"p50": ip["median_ms"], "p99": ip["p99_ms"]},
    "daemon_text_1_client_ms": {"p50": d1["p50_ms"], "p99": d1["p99_ms"]},
    "added_by_daemon_us": {"p50": round((d1["p50_ms"] - ip["median_ms"]) * 1e3, 1),
                           "p99": round((d1["p99_ms"] - ip["p99_ms"]) * 1e3, 1)},
    "throughput_rps": {"text": {c: text[c]["throughput_rps"] for c in text},
                       "text_image_1_1": {c: mix[c]["throughput_rps"] for c in mix}},
    "runs": {"text": text, "mix": mix},
    "note": "CPU backend, one engine thread; batching across clients raises throughput with more clients",
}
json.dump(res, open(out, "w"), indent=1)
print(f"in process text p50 {ip['median_ms']:.3f} ms, p99 {ip['p99_ms']:.3f} ms; "
      f"through mmfd p50 {d1['p50_ms']:.3f} ms, p99 {d1['p99_ms']:.3f} ms: added p50 {res['added_by_daemon_us']['p50']} us, "
      f"p99 {res['added_by_daemon_us']['p99']} us")
for c in (1, 4, 16):
    print(f"{c:2d} clients: text {text[c]['throughput_rps']:.0f} req/s, text+image {mix[c]['throughput_rps']:.0f} req/s")
print(f"written to {out}")
PY
