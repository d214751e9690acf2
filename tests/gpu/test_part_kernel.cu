/* test_part_kernel: records which SM ran each block (%smid), for
 * tests/gpu/test_part.c. Each block holds its SM for a while so that a grid
 * much larger than one wave spreads over every SM it is allowed to use; a
 * grid that finished too fast could leave SMs of the partition unused and
 * the count would say less than the partition has. Launched with <<<>>> on
 * purpose: the test checks that runtime-API launches on a green-context
 * stream stay inside the partition. */
#include <cuda_runtime.h>

__global__ void record_smid(unsigned *smid, long long spin)
{
	if (threadIdx.x == 0) {
		unsigned id;
		asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
		smid[blockIdx.x] = id;
	}
	long long t0 = clock64();
	while (clock64() - t0 < spin)
		;
}

/* Returns the cudaError_t of the launch (0 on success). */
extern "C" int test_part_record_smid(unsigned *smid, int blocks, long long spin, cudaStream_t s)
{
	record_smid<<<blocks, 64, 0, s>>>(smid, spin);
	return (int)cudaGetLastError();
}
