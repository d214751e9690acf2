/* test_barrier_kernel: the named-barrier pattern of the intra-thread fused
 * kernel (kernels/fuse.cu) without any op in it, for tests/gpu/test_barrier.c
 * and for compute-sanitizer racecheck. A block of 128 threads runs, per
 * iteration:
 *  - team A, all 128 threads on barrier 1: thread 0 writes a shared flag,
 *    barrier, every thread reads it (what gemm_split_reduce does with its
 *    split-K flag), barrier;
 *  - barrier 3 over the block;
 *  - team B, the first nb threads on barrier 2 (variant 0: 64 threads, as
 *    the attention tile's team; variant 1: all 128; variant 2: no team B):
 *    each writes a shared slot, barrier, reads its neighbour's, barrier;
 *  - barrier 3 again.
 * Variants 3-5 are variant 0 with one change each, to find an arrangement
 * that compute-sanitizer racecheck models (it reports variant 0, with no
 * mismatch, and is clean on 1 and 2: H200, 2026-11-27):
 *  3: the block-wide sync on barrier 0 instead of 3;
 *  4: the threads outside team B pass two barriers of their own (barrier
 *     4) while team B passes its two, so every thread passes as many;
 *  5: team A (the whole block) on barrier 0 instead of 1.
 * A read that does not see the value written before its barrier counts as
 * a mismatch: the barriers are broken if any is counted. */
#include <cuda_runtime.h>

#include "team.cuh"

__global__ void barrier_pattern(int nb, int variant, int iters, unsigned *mismatches)
{
	__shared__ int flag;
	__shared__ int slot[128];
	const int tid = threadIdx.x;
	mmf_team a, b, all, rest;
	a.tid = tid, a.size = 128, a.barrier = variant == 5 ? 0 : 1, a.smem = nullptr;
	b.tid = tid, b.size = nb > 0 ? nb : 32, b.barrier = 2, b.smem = nullptr;
	all.tid = tid, all.size = 128, all.barrier = variant == 3 ? 0 : 3, all.smem = nullptr;
	rest.tid = tid - nb, rest.size = 128 - nb, rest.barrier = 4, rest.smem = nullptr;
	unsigned bad = 0;
	for (int i = 0; i < iters; i++) {
		if (tid == 0)
			flag = i + 1;
		team_sync(a);
		bad += flag != i + 1;
		team_sync(a);
		team_sync(all);
		if (tid < nb) {
			slot[tid] = i * 131 + tid;
			team_sync(b);
			const int o = (tid + 1) % nb;
			bad += slot[o] != i * 131 + o;
			team_sync(b);
		} else if (variant == 4 && nb > 0) {
			team_sync(rest);
			team_sync(rest);
		}
		team_sync(all);
	}
	if (bad)
		atomicAdd(mismatches, bad);
}

/* Variant 0 to 5 (see above) on `blocks` blocks; returns the cudaError_t
 * of the launch and the run, and the mismatches counted. */
extern "C" int test_barrier_run(int variant, int blocks, int iters, unsigned *mismatches)
{
	const int nb = variant == 1 ? 128 : variant == 2 ? 0 : 64;
	unsigned *d = nullptr;
	cudaError_t e = cudaMalloc(&d, sizeof *d);
	if (e == cudaSuccess)
		e = cudaMemset(d, 0, sizeof *d);
	if (e == cudaSuccess) {
		barrier_pattern<<<blocks, 128>>>(nb, variant, iters, d);
		e = cudaGetLastError();
	}
	if (e == cudaSuccess)
		e = cudaMemcpy(mismatches, d, sizeof *d, cudaMemcpyDeviceToHost);
	cudaFree(d);
	return (int)e;
}
