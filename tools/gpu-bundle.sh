#!/bin/sh
# Builds the GPU test programs and mmf-bench for one architecture (default
# sm_90, the measurement GPUs) in a scratch copy of this tree, and copies
# them with the shared libraries a bare CUDA machine may lack (jansson,
# libgomp, libcudart) into DIR (default .gpu/). On the GPU machine run
#   DIR/run.sh          (the GPU checks: tools/check-gpu.sh)
#   DIR/gpu-bench.sh DIR OUT   (the benchmark of record)
#   tools/gpu-bundle.sh [DIR] [ARCH]
set -eu
command -v rsync >/dev/null || { echo "gpu-bundle.sh: needs rsync (apt-get install rsync)" >&2; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/.gpu}
arch=${2:-90}
build=${TMPDIR:-/tmp}/mmf-gpu-build-sm$arch
mkdir -p "$build"
cd "$top"
# The sources only (tracked and new files), not this tree's build outputs;
# by checksum and without their times, so that make sees every change.
{ git ls-files; git ls-files --others --exclude-standard; } | rsync -rlp --checksum --files-from=- "$top/" "$build/"
cd "$build"
# automake's own rules rerun configure when configure.ac or Makefile.am change.
[ -f Makefile ] || { ./autogen.sh >/dev/null 2>&1 && ./configure --with-cuda-arch="$arch" >/dev/null; }
make -j"$(nproc)" gpu-tests mmfd mmfctl >/dev/null
rm -rf "$dir" && mkdir -p "$dir/lib"
progs="tests/gpu/test_kernels tests/gpu/test_ops tests/gpu/test_gemm tests/gpu/test_part tests/gpu/test_engine tests/gpu/test_fuse tests/gpu/test_barrier mmf-bench mmf-mkmodel mmfd mmfctl"
cp $progs "$dir/"
cp "$top/tools/check-gpu.sh" "$top/tools/gpu-bench.sh" "$top/tools/torch_baseline.py" "$top/tools/bench_compare.py" \
	"$top/tools/ncu_metrics.sh" "$top/tools/ncu_join.py" "$dir/"
for lib in $(ldd $progs | awk '/=>/ {print $3}' | sort -u); do
	case $(basename "$lib") in
	libc.so*|libm.so*|libpthread*|libdl*|librt*|ld-linux*|libcuda.so*|libstdc++*|libgcc_s*) ;;
	# The GPU image has its own OpenBLAS (with libgfortran): not worth 40 MB of carry.
	libopenblas*|libgfortran*|libquadmath*) ;;
	*) cp -L "$lib" "$dir/lib/" ;;
	esac
done
# Photos for tools/validate_openclip.py --photo-dir (scikit-image's data
# directory, unpacked from its PyPI wheel: see .ci/run), when PHOTOS names it.
if [ -n "${PHOTOS:-}" ]; then
	mkdir -p "$dir/photos"
	for f in astronaut.png coffee.png camera.png motorcycle_left.png hubble_deep_field.jpg coins.png brick.png \
		grass.png retina.jpg page.png; do
		[ -f "$PHOTOS/$f" ] && cp "$PHOTOS/$f" "$dir/photos/"
	done
fi
cat > "$dir/run.sh" <<'RUN'
#!/bin/sh
# Runs the GPU checks from a bundle made by tools/gpu-bundle.sh.
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/check-gpu.sh" "$here"
RUN
chmod +x "$dir/run.sh"
du -sh "$dir"
