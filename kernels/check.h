/* One checking macro for CUDA runtime and driver calls: reports file, line
 * and the call, and returns -EIO from the enclosing function. */
#ifndef MMF_CHECK_H
#define MMF_CHECK_H

#include <errno.h>
#include <stdio.h>

#define MMF_CUDA_CHECK(call)                                                              \
	do {                                                                              \
		cudaError_t e_ = (call);                                                  \
		if (e_ != cudaSuccess) {                                                  \
			fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,  \
				cudaGetErrorString(e_));                                  \
			return -EIO;                                                      \
		}                                                                         \
	} while (0)

#endif
