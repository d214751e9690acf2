#!/bin/sh
# mmfctl against a real mmfd (tiny synthetic model, CPU backend): every
# subcommand's happy path, real text and PNG/JPEG inputs, the load
# generator, detaching without --foreground, SIGHUP, and a clean SIGTERM exit.
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
S=${srcdir:-.}
VOCAB=$S/data/bpe_simple_vocab_16e6.txt.gz
MMF_CACHE=$T/cache "$B/mmfd" --foreground --model tiny --socket "$T/s.sock" --threads 1 --vocab "$VOCAB" >"$T/mmfd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 100); do [ -S "$T/s.sock" ] && "$B/mmfctl" --socket "$T/s.sock" health >/dev/null 2>&1 && break; sleep 0.1; done
export MMF_SOCKET=$T/s.sock
expect 0 "status  ok" -- "$B/mmfctl" health
expect 0 '"device":"cpu"' -- "$B/mmfctl" --json health
expect 0 "requests_health" -- "$B/mmfctl" stats
expect 0 "# TYPE mmf_requests_health_total counter" -- "$B/mmfctl" stats --prometheus
expect 0 "# TYPE mmf_queue_depth gauge" -- "$B/mmfctl" stats --prometheus
expect 0 "# TYPE mmf_sm_util_pct gauge" -- "$B/mmfctl" stats --prometheus
expect 0 "# TYPE mmf_sm_util_samples_total counter" -- "$B/mmfctl" stats --prometheus
"$B/mmfctl" embed-text --tokens 49406,320,1125,49407 --out "$T/e.f32" >/dev/null 2>&1 && [ "$(wc -c < "$T/e.f32")" -eq 256 ] && ok || bad "embed-text --out: expected 64 floats"
expect 0 "" -- "$B/mmfctl" embed-text "a photo of a cat"
"$B/mmfctl" --json embed-text "a photo of a cat" > "$T/t1.json" 2>&1 &&
	"$B/mmfctl" --json embed-text --tokens 49406,320,1125,539,320,2368,49407 > "$T/t2.json" 2>&1 &&
	cmp -s "$T/t1.json" "$T/t2.json" && ok || bad "embed-text of a string differs from its token ids"
expect 1 "BAD_REQUEST: text: " -- "$B/mmfctl" embed-text "$(printf 'caf\303')"
expect 0 '"backend": "cpu"' -- "$B/mmfctl" plan
expect 1 "UNSUPPORTED: tracing needs mmfd --device cuda" -- "$B/mmfctl" trace --seconds 1 "$T/trace.json"
[ ! -e "$T/trace.json" ] && ok || bad "mmfctl trace left a file behind after an error"
expect 2 "--seconds '61': expected 1..60" -- "$B/mmfctl" trace --seconds 61 "$T/trace.json"
expect 2 "trace takes one output file" -- "$B/mmfctl" trace
expect 0 "responses_by_type{type=\"embed_text\",status=\"ok\"}" -- "$B/mmfctl" stats
expect 0 'mmf_responses_by_type_total{type="embed_text",status="ok"}' -- "$B/mmfctl" stats --prometheus
head -c $((8 * 8 * 3)) /dev/urandom > "$T/img.rgb"
expect 0 "" -- "$B/mmfctl" embed-image --raw "$T/img.rgb" --width 8 --height 8
expect 1 "is 192 bytes, a 9x8 RGB image is 216" -- "$B/mmfctl" embed-image --raw "$T/img.rgb" --width 9 --height 8
for f in "$S"/tests/images/*.png "$S"/tests/images/*.jpg; do	# the image tests' files
	[ -f "$f" ] || continue
	expect 0 "" -- "$B/mmfctl" embed-image "$f"
	expect 0 "a photo" -- "$B/mmfctl" classify "$f" --labels "a photo of a cat,a photo of a dog,a diagram"
	break
done
head -c 100 /dev/urandom > "$T/junk.jpg"
expect 1 "BAD_REQUEST: image: not a JPEG or PNG" -- "$B/mmfctl" embed-image "$T/junk.jpg"
expect 0 "throughput" -- "$B/mmfctl" bench --clients 2 --requests 60
expect 2 "usage" -- "$B/mmfctl" no-such-command
if [ "${HAVE_CUDA:-no}" != yes ]; then
	expect 1 "--device cuda: this mmfd was built without CUDA" -- "$B/mmfd" --foreground --device cuda --model tiny --socket "$T/t2.sock"
elif ! command -v nvidia-smi >/dev/null 2>&1; then	# built with CUDA, no GPU here
	expect 1 "engine: no usable CUDA driver" -- "$B/mmfd" --foreground --device cuda --model tiny --socket "$T/t2.sock"
	[ ! -e "$T/t2.sock" ] && ok || bad "mmfd left its socket behind after failing to start"
fi
expect 2 "device 'tpu': expected cpu or cuda" -- "$B/mmfd" --device tpu
expect 2 "weights 'int4': expected auto, fp16 or int8" -- "$B/mmfd" --weights int4
expect 2 "weights 'fp32': expected auto, fp16 or int8" -- "$B/mmfd" --weights fp32
expect 2 "util-every '-1': expected an integer in [0, 1073741824]" -- "$B/mmfd" --util-every -1
expect 2 "text-cache '-1': expected an integer in [0, 1048576]" -- "$B/mmfd" --text-cache -1
# --weights int8 on the CPU backend: serves, and says what it runs
MMF_CACHE=$T/cache "$B/mmfd" --foreground --model tiny --weights int8 --socket "$T/q.sock" --threads 1 --vocab "$VOCAB" >"$T/q.log" 2>&1 &
qpid=$!
for i in $(seq 1 100); do "$B/mmfctl" --socket "$T/q.sock" health >/dev/null 2>&1 && break; sleep 0.1; done
expect 0 "" -- "$B/mmfctl" --socket "$T/q.sock" embed-text "a photo of a cat"
grep -q "32 of 32 convolution and linear weights int8, computed dequantised on the CPU" "$T/q.log" && ok || bad "mmfd --weights int8: $(cat "$T/q.log")"
kill -TERM $qpid; wait $qpid
expect 1 "no such file" -- "$B/mmfd" --foreground --model tiny --socket "$T/t3.sock" --vocab "$T/nope.gz"

# SIGHUP re-reads the configuration: a new deadline applies, a new model is
# named as needing a restart, and the daemon keeps serving.
printf 'deadline-ms = 1234\nmodel = small\n' > "$T/mmfd.conf"
MMF_CACHE=$T/cache "$B/mmfd" --foreground --model tiny --socket "$T/h.sock" --threads 1 --config "$T/mmfd.conf" \
	--model tiny --vocab "$VOCAB" >"$T/h.log" 2>&1 &
hpid=$!
for i in $(seq 1 100); do "$B/mmfctl" --socket "$T/h.sock" health >/dev/null 2>&1 && break; sleep 0.1; done
printf 'deadline-ms = 4321\nmodel = rn50\nlog-level = debug\n' > "$T/mmfd.conf"
kill -HUP $hpid
for i in $(seq 1 50); do grep -q "SIGHUP" "$T/h.log" && break; sleep 0.1; done
grep -q "deadline 4321 ms" "$T/h.log" && ok || bad "SIGHUP: new deadline not applied: $(cat "$T/h.log")"
grep -q "applied only at restart: model" "$T/h.log" && bad "SIGHUP: the command line's --model should win over the file" || ok
expect 0 "status  ok" -- "$B/mmfctl" --socket "$T/h.sock" health
kill -TERM $hpid; wait $hpid

# Without --foreground mmfd returns once it serves (exit 0), or with the
# child's error and status 1 when it cannot start.
MMF_CACHE=$T/cache "$B/mmfd" --model tiny --socket "$T/bg.sock" --threads 1 --vocab "$VOCAB" 2>"$T/bg.log"
rc=$?
[ "$rc" -eq 0 ] && ok || bad "detaching mmfd exited $rc: $(cat "$T/bg.log")"
expect 0 "status  ok" -- "$B/mmfctl" --socket "$T/bg.sock" health
bgpid=$(pgrep -f "mmfd --model tiny --socket $T/bg.sock" | head -1)
[ -n "$bgpid" ] && kill -TERM "$bgpid"
for i in $(seq 1 50); do [ -e "$T/bg.sock" ] || break; sleep 0.1; done
[ ! -e "$T/bg.sock" ] && ok || bad "detached mmfd did not exit on SIGTERM"
expect 1 "no such file" -- "$B/mmfd" --model tiny --socket "$T/bg2.sock" --vocab "$T/nope.gz"
kill -TERM $pid
wait $pid
rc=$?
[ "$rc" -eq 0 ] && ok || bad "mmfd exited $rc after SIGTERM"
[ ! -e "$T/s.sock" ] && ok || bad "socket file left behind"
echo "test_e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
