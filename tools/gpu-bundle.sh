#!/bin/sh
# Builds the GPU test programs here and copies them, with the shared
# libraries they need that a bare CUDA machine may lack (jansson, OpenBLAS,
# libgfortran, libgomp), into DIR (default .gpu/). On the GPU machine run
#   DIR/run.sh
# which is what `make check-gpu` does when the tree can be built there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/.gpu}
cd "$top"
make -j"$(nproc)" gpu-tests >/dev/null
rm -rf "$dir" && mkdir -p "$dir/lib"
progs="tests/gpu/test_kernels tests/gpu/test_ops tests/gpu/test_gemm tests/gpu/test_part tests/gpu/test_engine mmf-bench mmf-mkmodel"
cp $progs tools/check-gpu.sh tools/gpu-bench.sh tools/torch_baseline.py tools/bench_compare.py "$dir/"
for lib in $(ldd $progs | awk '/=>/ {print $3}' | sort -u); do
	case $(basename "$lib") in
	libc.so*|libm.so*|libpthread*|libdl*|librt*|ld-linux*|libcuda.so*|libstdc++*|libgcc_s*) ;;
	# The GPU image has its own OpenBLAS (with libgfortran): not worth 40 MB of carry.
	libopenblas*|libgfortran*|libquadmath*) ;;
	*) cp -L "$lib" "$dir/lib/" ;;
	esac
done
cat > "$dir/run.sh" <<'RUN'
#!/bin/sh
# Runs the GPU tests from a bundle made by tools/gpu-bundle.sh.
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/check-gpu.sh" "$here"
RUN
chmod +x "$dir/run.sh"
du -sh "$dir"
