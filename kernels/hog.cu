/* hog: DRAM traffic from the SMs outside a partition, so that the partition
 * sees about the DRAM bandwidth of a small Jetson instead of the whole
 * GPU's (engine/gpu_dram.c calibrates and drives it).
 *
 * Each block reads `chunks` chunks of 256 threads x 16 bytes, with
 * __nanosleep(sleep_ns) after each chunk, in one of four patterns (MODE):
 * scattered 32-byte sectors (two neighbouring threads read one; each opens
 * a DRAM row for 32 bytes) or sequential chunks, each read-only or written
 * back. Which takes the most DRAM time from the partition depends on the
 * GPU's memory controllers, so gpu_dram.c measures all four. The loads bypass L1
 * (ld.global.cg) and buf is several times the L2, so they reach DRAM and
 * keep evicting the partition's L2 lines, as a small Jetson's 4 MB L2
 * would not hold them either. */
#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "mmf_kernels.h"

/* MODE bit 0: sequential 4 KiB chunks instead of scattered sectors; bit 1:
 * write each 16 bytes back after reading them (the L2 then writes the dirty
 * lines to DRAM, and the DRAM bus turns around between reads and writes). */
template <int MODE>
__global__ void __launch_bounds__(256) hog_kernel(uint4 *__restrict__ buf, unsigned long long mask, unsigned long long seed,
						  int chunks, unsigned sleep_ns, unsigned *sink)
{
	unsigned acc = 0;
	unsigned long long x = seed ^ ((unsigned long long)blockIdx.x << 32 | (threadIdx.x >> 1));
#pragma unroll 4
	for (int c = 0; c < chunks; c++) {
		unsigned long long i;
		if (MODE & 1) {
			i = ((seed + (unsigned long long)c) * gridDim.x + blockIdx.x) * 256 + threadIdx.x;
		} else {
			/* splitmix64 step: a new sector per pair of threads and chunk. */
			x += 0x9e3779b97f4a7c15ull;
			unsigned long long z = x;
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
			z ^= z >> 31;
			i = (z << 1) | (threadIdx.x & 1);
		}
		i &= mask;
		uint4 v = __ldcg(buf + i);
		acc ^= v.x ^ v.y ^ v.z ^ v.w;
		if (MODE & 2) {
			v.x += 1;
			__stcg(buf + i, v);
		}
		if (sleep_ns)
			__nanosleep(sleep_ns);
	}
	if (acc == 0x9e3779b9u)	/* keeps the loads; practically never true */
		*sink = acc;
}

extern "C" int mmf_hog_blocks_per_sm(void)
{
	int n = 0;
	MMF_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, hog_kernel<0>, 256, 0));
	return n;
}

extern "C" int mmf_hog_launch(void *buf, size_t bytes, int mode, unsigned long long seed, int blocks, int chunks,
			      unsigned sleep_ns, unsigned *sink, mmf_stream stream)
{
	size_t n = bytes / 16;
	if (!buf || !sink || blocks < 1 || chunks < 1 || n < 2 || (n & (n - 1)) || (uintptr_t)buf % 32 || mode < 0 ||
	    mode >= MMF_HOG_MODES)
		return -EINVAL;
	void (*k)(uint4 *, unsigned long long, unsigned long long, int, unsigned, unsigned *) =
		mode == 0 ? hog_kernel<0> : mode == 1 ? hog_kernel<1> : mode == 2 ? hog_kernel<2> : hog_kernel<3>;
	k<<<blocks, 256, 0, (cudaStream_t)stream>>>((uint4 *)buf, n - 1, seed, chunks, sleep_ns, sink);
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}
