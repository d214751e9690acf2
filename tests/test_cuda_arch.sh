#!/bin/sh
# The kernel library must carry machine code for Jetson Orin (sm_87) and
# Hopper (sm_90). cuobjdump comes from the CUDA toolkit or from PyPI's
# nvidia-cuda-cuobjdump (which .ci/run installs).
set -u
B=${top_builddir:-.}
if [ "${HAVE_CUDA:-no}" != yes ]; then echo "SKIP: configured without CUDA"; exit 77; fi
dump=
for c in "${CUOBJDUMP:-}" "$(command -v cuobjdump 2>/dev/null)" \
	$(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/bin/cuobjdump") for p in nvidia.__path__))' 2>/dev/null); do
	if [ -n "$c" ] && [ -x "$c" ]; then dump=$c; break; fi
done
if [ -z "$dump" ]; then echo "SKIP: no cuobjdump (pip install nvidia-cuda-cuobjdump)"; exit 77; fi
out=$("$dump" --list-elf "$B/libmmfkernels.a" 2>&1) || { echo "FAIL: $dump: $out"; exit 1; }
echo "$out"
pass=0 fail=0
for sm in sm_87 sm_90; do
	case $out in *"$sm.cubin"*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)); echo "FAIL: no $sm cubin" ;; esac
done
echo "test_cuda_arch: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
