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
make -j"$(nproc)" tests/gpu/test_kernels mmf-bench mmf-mkmodel >/dev/null
rm -rf "$dir" && mkdir -p "$dir/lib"
cp tests/gpu/test_kernels mmf-bench mmf-mkmodel "$dir/"
for lib in $(ldd tests/gpu/test_kernels mmf-bench | awk '/=>/ {print $3}' | sort -u); do
	case $(basename "$lib") in
	libc.so*|libm.so*|libpthread*|libdl*|librt*|ld-linux*|libcuda.so*|libstdc++*|libgcc_s*) ;;
	*) cp -L "$lib" "$dir/lib/" ;;
	esac
done
cat > "$dir/run.sh" <<'RUN'
#!/bin/sh
# Runs the GPU tests from a bundle made by tools/gpu-bundle.sh.
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== test_kernels"
"$here/test_kernels"
RUN
chmod +x "$dir/run.sh"
du -sh "$dir"
