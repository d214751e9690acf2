/* cupti: the host side of a traced iteration, from the CUPTI activity API:
 * every CUDA runtime call (launches, synchronisations, event records) with
 * its thread and host interval, and every kernel with its stream and GPU
 * interval. Only in builds with CUPTI (HAVE_CUPTI). */
#ifndef MMF_BENCH_CUPTI_H
#define MMF_BENCH_CUPTI_H

#include "engine/err.h"

typedef struct cupti_ev {
	char name[64];		/* "cudaLaunchKernelExC_v11060", or the kernel's (shortened) name */
	unsigned long long t0, t1;	/* CUPTI timestamps, ns */
	unsigned id;		/* runtime calls: thread id; kernels: stream id */
	unsigned corr;		/* correlation id: a launch call and its kernel share it */
	int sync;		/* runtime calls that wait for the GPU (*Synchronize*) */
} cupti_ev;

/* Starts recording runtime calls and kernels (no-op error without CUPTI). */
int cupti_begin(mmf_err *err);
/* Stops and hands back what was recorded: runtime calls sorted by start,
 * kernels sorted by start (both malloc'd). */
int cupti_end(cupti_ev **api, int *napi, cupti_ev **kern, int *nkern, mmf_err *err);

#endif
