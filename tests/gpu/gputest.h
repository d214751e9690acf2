/* gputest: what every GPU test shares: a CUDA check that exits the test,
 * and the skip (exit 77) on a machine without a CUDA device. */
#ifndef MMF_GPUTEST_H
#define MMF_GPUTEST_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(x)                                                                                          \
	do {                                                                                           \
		cudaError_t e_ = (x);                                                                  \
		if (e_ != cudaSuccess) {                                                               \
			fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorName(e_), \
				cudaGetErrorString(e_));                                               \
			exit(1);                                                                       \
		}                                                                                      \
	} while (0)

/* Exits 77 (automake's skip) when there is no usable CUDA device; else
 * prints the device. */
static inline void gpu_test_require_device(void)
{
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
		printf("SKIP: no CUDA device\n");
		exit(77);
	}
	struct cudaDeviceProp p;
	CK(cudaGetDeviceProperties(&p, 0));
	printf("device: %s, %d SMs, sm_%d%d\n", p.name, p.multiProcessorCount, p.major, p.minor);
}

#endif
