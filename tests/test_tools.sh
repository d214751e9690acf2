#!/bin/sh
# Command-line behaviour of mmf-mkmodel and mmf-bench: help, bad arguments
# with their exact messages, and a full tiny run.
set -u
B=${top_builddir:-.}
T=$(mktemp -d "${TMPDIR:-/tmp}/mmf-tools-XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# expect CODE PATTERN -- command...: exit status and a fixed string in stdout+stderr
expect() {
	code=$1 pat=$2; shift 3
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -ne "$code" ]; then bad "$* exited $rc, expected $code: $out"; return; fi
	case $out in *"$pat"*) ok ;; *) bad "$*: output lacks '$pat': $out" ;; esac
}

expect 0 "Usage: mmf-mkmodel" -- "$B/mmf-mkmodel" --help
expect 2 "unknown configuration 'rn51'" -- "$B/mmf-mkmodel" rn51 "$T/x.safetensors"
expect 2 "--layers '3,4': expected four" -- "$B/mmf-mkmodel" --layers 3,4 tiny "$T/x.safetensors"
expect 2 "image size 100: expected a multiple of 32" -- "$B/mmf-mkmodel" --image-size 100 tiny "$T/x.safetensors"
expect 2 "--dtype 'f8': expected f32, f16 or bf16" -- "$B/mmf-mkmodel" --dtype f8 tiny "$T/x.safetensors"
expect 2 "expected CONFIG and OUT.safetensors" -- "$B/mmf-mkmodel" tiny
expect 0 "image 64, width 16, layers 1,1,1,1" -- "$B/mmf-mkmodel" --print tiny
expect 0 "writing $T/t.safetensors" -- "$B/mmf-mkmodel" --vocab 1000 tiny "$T/t.safetensors"
expect 1 "cannot create" -- "$B/mmf-mkmodel" tiny "$T/no/such/dir/x.safetensors"
# --quantize: a file or a configuration, int8 weights that mmf-bench then runs
expect 0 "wrote $T/q.safetensors: 32 of 32 convolution and linear weights int8" -- "$B/mmf-mkmodel" --quantize "$T/t.safetensors" "$T/q.safetensors"
expect 0 "wrote $T/q2.safetensors: 32 of 32 convolution and linear weights int8" -- "$B/mmf-mkmodel" --quantize --vocab 1000 tiny "$T/q2.safetensors"
cmp -s "$T/q.safetensors" "$T/q2.safetensors" && ok || bad "--quantize of a file and of its configuration differ"
expect 1 "$T/none.safetensors: cannot open" -- "$B/mmf-mkmodel" --quantize "$T/none.safetensors" "$T/q3.safetensors"
[ ! -e "$T/q3.safetensors" ] && ok || bad "a failed --quantize left its output behind"

expect 0 "Usage: mmf-bench" -- "$B/mmf-bench" --help
expect 2 "--device 'tpu': expected cpu or cuda" -- "$B/mmf-bench" --device tpu
expect 2 "--iters '0': expected a positive integer" -- "$B/mmf-bench" --iters 0
expect 2 "--tune-sms 'x': expected a non-negative integer" -- "$B/mmf-bench" --tune-sms x
expect 2 "--split-sms '64,x': expected a comma-separated list of positive SM counts" -- "$B/mmf-bench" --split-sms 64,x
expect 2 "--split-sms '0': expected a comma-separated list of positive SM counts" -- "$B/mmf-bench" --split-sms 0
expect 2 "--split-sms '8,16,24,32,40,48,56,64,72,80,88,96,104,112,120,128,136': more than 16 counts" -- "$B/mmf-bench" --split-sms 8,16,24,32,40,48,56,64,72,80,88,96,104,112,120,128,136
expect 2 "--split-sms applies to --device cuda only" -- "$B/mmf-bench" --split-sms 64
expect 2 "--strategy 'fast': expected inter, intra-block, intra-thread or auto" -- "$B/mmf-bench" --device cpu --strategy fast
expect 2 "--sms applies to --device cuda only" -- "$B/mmf-bench" --sms 8
expect 2 "--pairs applies to --device cuda only" -- "$B/mmf-bench" --device cpu --pairs
expect 2 "--dram-gbs applies to --device cuda only" -- "$B/mmf-bench" --dram-gbs 68
expect 2 "--trace-mode 'x': expected seq, streams, graph-streams or fused" -- "$B/mmf-bench" --trace-mode x
expect 2 "--trace-mode applies to --device cuda only" -- "$B/mmf-bench" --trace-mode seq
expect 2 "--tune-graph applies to --device cuda only" -- "$B/mmf-bench" --tune-graph all
expect 2 "--trace-mode needs --trace FILE" -- "$B/mmf-bench" --device cuda --trace-mode seq
expect 2 "--dram-gbs 'abc': expected a bandwidth in GB/s, 1 to 100000" -- "$B/mmf-bench" --dram-gbs abc
expect 2 "--dram-gbs '0': expected a bandwidth in GB/s, 1 to 100000" -- "$B/mmf-bench" --dram-gbs 0
expect 2 "--dram-gbs does not go with --report" -- "$B/mmf-bench" --report "$T/rep" --dram-gbs 68
expect 1 "$T/missing.safetensors: cannot open: No such file or directory" -- "$B/mmf-bench" --model "$T/missing.safetensors"
: > "$T/empty.safetensors"
expect 1 "empty file, expected a safetensors header" -- "$B/mmf-bench" --model "$T/empty.safetensors"
expect 0 "text tower: 19 ops" -- "$B/mmf-bench" --model "$T/t.safetensors" --chain
expect 0 "embedding check: ok" -- "$B/mmf-bench" --model "$T/t.safetensors" --iters 2 --warmup 1 --json "$T/r.json"
grep -q '"median_ms"' "$T/r.json" && ok || bad "bench JSON lacks median_ms"
expect 0 "weights: int8 (32 of 32 convolution and linear weights int8" -- "$B/mmf-bench" --model "$T/q.safetensors" --iters 1 --warmup 0
expect 0 "weights: int8 (32 of 32" -- "$B/mmf-bench" --model "$T/t.safetensors" --weights int8 --iters 1 --warmup 0
expect 0 "weights: fp16, dequantised from int8" -- "$B/mmf-bench" --model "$T/q.safetensors" --weights fp16 --iters 1 --warmup 0
expect 2 "--weights 'int4': expected auto, fp16, int8 or fp32" -- "$B/mmf-bench" --weights int4
expect 2 "--report-quick goes with --report" -- "$B/mmf-bench" --report-quick
MMF_CACHE=$T/cache expect 0 "writing synthetic tiny model to $T/cache/tiny-seed3.safetensors" -- "$B/mmf-bench" --model tiny --seed 3 --iters 1 --warmup 0
MMF_CACHE=$T/cache expect 0 "embedding check: ok" -- "$B/mmf-bench" --model tiny --seed 3 --iters 1 --warmup 0 --ops

# Real inputs in process (--image/--text/--labels, --tokenize) and their errors.
S=${srcdir:-.}
V=$S/data/bpe_simple_vocab_16e6.txt.gz
P=$S/tests/images/photo_chelsea.png
MMF_CACHE=$T/cache expect 0 "a photo of a cat" -- "$B/mmf-bench" --model tiny --seed 3 --vocab "$V" --image "$P" --labels "a photo of a cat,a diagram"
MMF_CACHE=$T/cache expect 0 "1 image and 1 text embeddings (float32, 64 values each) written to $T/e.f32" -- \
	"$B/mmf-bench" --model tiny --seed 3 --vocab "$V" --image "$P" --text "a cat" --out "$T/e.f32"
[ "$(wc -c < "$T/e.f32")" -eq 512 ] && ok || bad "--out: expected 2 x 64 floats"
MMF_CACHE=$T/cache expect 1 "$T/none.jpg: cannot open: No such file or directory" -- "$B/mmf-bench" --model tiny --seed 3 --image "$T/none.jpg"
printf 'GIF89a not an image' > "$T/x.gif"
MMF_CACHE=$T/cache expect 1 "image: not a JPEG or PNG (starts with 47 49 46 38)" -- "$B/mmf-bench" --model tiny --seed 3 --image "$T/x.gif"
MMF_CACHE=$T/cache expect 1 "$T/none.gz: no such file" -- "$B/mmf-bench" --model tiny --seed 3 --vocab "$T/none.gz" --text "a cat"
expect 1 "text 0: token 49406 is outside the model's vocabulary of 1000" -- "$B/mmf-bench" --model "$T/t.safetensors" --vocab "$V" --text "a cat"
expect 2 "--out goes with --image or --text" -- "$B/mmf-bench" --model "$T/t.safetensors" --out "$T/o.f32" --iters 1
expect 2 "--tokenize takes texts only" -- "$B/mmf-bench" --tokenize --image "$P"
expect 0 '"ids": [49406, 320, 2368, 49407]' -- "$B/mmf-bench" --tokenize --vocab "$V" --text "A cat"
expect 0 '"error": "text: invalid UTF-8 at byte offset 3 (byte 0xc3): truncated sequence' -- "$B/mmf-bench" --tokenize --vocab "$V" --text "$(printf 'caf\303')"
"$B/mmf-bench" --tokenize --vocab "$V" --text "$(printf 'caf\303')" --json "$T/tok.json" >/dev/null 2>&1
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/tok.json" 2>/dev/null && ok || bad "--tokenize JSON of a non-UTF-8 text does not parse"

# tools/report.py renders the committed quick report's runs again: the
# tables come out with the recorded numbers (plots only where matplotlib is).
Q=$S/bench/results/report-rn50-h200-quick-2026-11-26
if [ -d "$Q/runs" ] && command -v python3 >/dev/null 2>&1; then
	mkdir -p "$T/rep" && cp -r "$Q/runs" "$Q/traces" "$T/rep/"
	out=$(python3 "$S/tools/report.py" "$T/rep" 2>&1); rc=$?
	case "$rc:$out" in 0:*|1:*"no plots: matplotlib"*) ok ;; *) bad "report.py exited $rc: $out" ;; esac
	grep -q "| 8 | 3.473 | 3.064 | 3.451 | 3.018 |" "$T/rep/REPORT.md" && ok || bad "report.py: the fp16 8-SM row is not in REPORT.md"
	grep -q "Scenarios not (yet) run: .*fp32-b1-auto" "$T/rep/REPORT.md" && ok || bad "report.py: REPORT.md does not list the fp32 scenarios the quick report lacks"
else
	echo "SKIP: report.py check (no committed report or no python3)"
fi

# mmf-bench --report without a GPU: every scenario fails (each with its
# log), the rendering says there are no results; given the quick report's
# runs it resumes ("done before") and renders them.
if [ "${HAVE_CUDA:-no}" = yes ] && [ -d "$Q/runs" ] && command -v python3 >/dev/null 2>&1; then
	R=$T/report
	MMF_TOOLS=$S/tools MMF_CACHE=$T/cache expect 1 "rendering FAILED" -- "$B/mmf-bench" --report "$R" --report-quick --model tiny --iters 2 --warmup 0
	[ -s "$R/logs/fp16-b1-auto.log" ] && [ -s "$R/logs/int8-b1-auto.log" ] && [ -s "$R/logs/fp32-b1-auto.log" ] &&
		[ -s "$R/logs/torch-b1.log" ] && [ ! -e "$R/runs/fp16-b1-auto.json" ] &&
		ok || bad "--report: a log per failed scenario and no result expected: $(ls "$R/logs" "$R/runs")"
	cp "$Q"/runs/*.json "$R/runs/"
	out=$(MMF_TOOLS=$S/tools MMF_CACHE=$T/cache "$B/mmf-bench" --report "$R" --report-quick --model tiny 2>&1)
	[ "$(echo "$out" | grep -c 'done before')" -eq 3 ] && [ -s "$R/REPORT.md" ] && ok || bad "--report did not resume: $out"
	MMF_TOOLS=$S/tools expect 2 "--report-gpus '0': expected a 1..64 integer" -- "$B/mmf-bench" --report "$R" --report-gpus 0
	# SIGTERM mid-run stops the running scenario (a PyTorch peer that hangs:
	# python3 is a sleep here) and exits resumable, keeping nothing partial.
	mkdir -p "$T/fakebin" && printf '#!/bin/sh\nexec sleep 60\n' >"$T/fakebin/python3" && chmod +x "$T/fakebin/python3"
	R2=$T/report2
	PATH=$T/fakebin:$PATH MMF_TOOLS=$S/tools MMF_CACHE=$T/cache "$B/mmf-bench" --report "$R2" --report-quick --model tiny \
		--iters 2 --warmup 0 >"$T/stop.out" 2>&1 &
	rp=$!
	for i in $(seq 1 100); do grep -q "torch-b1 .*\.\.\." "$T/stop.out" && break; sleep 0.2; done
	kill -TERM $rp
	wait $rp; rc=$?
	[ $rc -eq 143 ] && grep -q "torch-b1 *stopped after" "$T/stop.out" && grep -q "stopped by signal 15; finished scenarios are kept" "$T/stop.out" &&
		[ ! -e "$R2/runs/torch-b1.json" ] && [ ! -e "$R2/runs/torch-b1.json.tmp" ] && ok ||
		bad "--report did not stop cleanly on SIGTERM (rc $rc): $(cat "$T/stop.out")"
	pgrep -f "sleep 60" >/dev/null && bad "--report left its scenario running after SIGTERM" || ok
fi

echo "test_tools: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
