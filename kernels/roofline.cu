/* roofline: a streaming copy used to measure the DRAM bandwidth that the
 * SMs of the current partition can drive (cudaMemcpy would use the copy
 * engines, which partitions do not restrict). 16-byte loads, grid-stride,
 * several loads in flight per thread. */
#include <cuda_runtime.h>
#include <errno.h>

#include "check.h"
#include "mmf_kernels.h"

__global__ void __launch_bounds__(256) copy_kernel(const uint4 *__restrict__ src, uint4 *__restrict__ dst, size_t n)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	for (; i + 3 * stride < n; i += 4 * stride) {
		uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
		dst[i] = a, dst[i + stride] = b, dst[i + 2 * stride] = c, dst[i + 3 * stride] = d;
	}
	for (; i < n; i += stride)
		dst[i] = src[i];
}

extern "C" int mmf_copy_bw(const void *src, void *dst, size_t bytes, int sms, mmf_stream stream)
{
	if (!src || !dst || bytes % 16 || sms < 1 || (((uintptr_t)src | (uintptr_t)dst) % 16))
		return -EINVAL;
	copy_kernel<<<sms * 8, 256, 0, (cudaStream_t)stream>>>((const uint4 *)src, (uint4 *)dst, bytes / 16);
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}
