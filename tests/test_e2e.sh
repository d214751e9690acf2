#!/bin/sh
# mmfctl against a real mmfd (tiny synthetic model, CPU backend): every
# subcommand's happy path or its exact UNSUPPORTED message, the load
# generator, and a clean SIGTERM exit.
set -u
B=${top_builddir:-.}
T=$(mktemp -d "${TMPDIR:-/tmp}/mmf-e2e-XXXXXX")
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect() {	# expect CODE PATTERN -- command...
	code=$1 pat=$2; shift 3
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, expected $code: $out"; return; fi
	case $out in *"$pat"*) ok ;; *) bad "$*: output lacks '$pat': $out" ;; esac
}
MMF_CACHE=$T/cache "$B/mmfd" --foreground --model tiny --socket "$T/s.sock" --threads 1 >"$T/mmfd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 100); do [ -S "$T/s.sock" ] && "$B/mmfctl" --socket "$T/s.sock" health >/dev/null 2>&1 && break; sleep 0.1; done
export MMF_SOCKET=$T/s.sock
expect 0 "status  ok" -- "$B/mmfctl" health
expect 0 '"device":"cpu"' -- "$B/mmfctl" --json health
expect 0 "requests_health" -- "$B/mmfctl" stats
expect 0 "# TYPE mmf_requests_health_total counter" -- "$B/mmfctl" stats --prometheus
expect 0 "# TYPE mmf_queue_depth gauge" -- "$B/mmfctl" stats --prometheus
"$B/mmfctl" embed-text --tokens 49406,320,1125,49407 --out "$T/e.f32" >/dev/null 2>&1 && [ "$(wc -c < "$T/e.f32")" -eq 256 ] && ok || bad "embed-text --out: expected 64 floats"
expect 1 "UNSUPPORTED: text: text strings are not supported yet" -- "$B/mmfctl" embed-text "a photo of a cat"
head -c $((8 * 8 * 3)) /dev/urandom > "$T/img.rgb"
expect 0 "" -- "$B/mmfctl" embed-image --raw "$T/img.rgb" --width 8 --height 8
expect 1 "is 192 bytes, a 9x8 RGB image is 216" -- "$B/mmfctl" embed-image --raw "$T/img.rgb" --width 9 --height 8
expect 0 "throughput" -- "$B/mmfctl" bench --clients 2 --requests 60
expect 2 "usage" -- "$B/mmfctl" no-such-command
if [ "${HAVE_CUDA:-no}" != yes ]; then
	expect 1 "--device cuda: this mmfd was built without CUDA" -- "$B/mmfd" --foreground --device cuda --model tiny --socket "$T/t2.sock"
elif ! command -v nvidia-smi >/dev/null 2>&1; then	# built with CUDA, no GPU here
	expect 1 "engine: no usable CUDA driver" -- "$B/mmfd" --foreground --device cuda --model tiny --socket "$T/t2.sock"
	[ ! -e "$T/t2.sock" ] && ok || bad "mmfd left its socket behind after failing to start"
fi
expect 2 "device 'tpu': expected cpu or cuda" -- "$B/mmfd" --device tpu
kill -TERM $pid
wait $pid
rc=$?
[ "$rc" -eq 0 ] && ok || bad "mmfd exited $rc after SIGTERM"
[ ! -e "$T/s.sock" ] && ok || bad "socket file left behind"
echo "test_e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
