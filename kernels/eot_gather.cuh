/* eot_gather: the text tower's pooled row. For x [batch][tokens][width] and
 * ids [batch][tokens] int32, y [batch][width] is the row of x at the first
 * maximal id (torch.argmax: the end-of-text token has the largest id). fp16
 * in and out, or fp32 (the descriptor's fp32 form), copied bit for bit.
 *
 * A tile is one sample: the team scans the ids (each thread a strided
 * subset), reduces (value, first index) with shuffles and through 8 bytes a
 * warp of shared memory, then copies the row with 16-byte loads and stores
 * (as bytes, whatever the element type).
 * Batch 1 is a single tile, but the op moves one row (1 KB at width 512). */
#ifndef MMF_EOT_GATHER_CUH
#define MMF_EOT_GATHER_CUH

#include <cuda_fp16.h>
#include <limits.h>
#include <stdint.h>

#include "team.cuh"

struct eot_gather_params {
	const void *x;		/* [batch][tokens][width] */
	const int32_t *ids;	/* [batch][tokens] */
	void *y;		/* [batch][width] */
	int batch, tokens, width;
};

constexpr int EOT_GATHER_TEAM = 128;

__host__ __device__ static inline int eot_gather_tiles(const eot_gather_params &p) { return p.batch; }

__host__ __device__ static inline int eot_gather_smem_bytes(const eot_gather_params &)
{
	return EOT_GATHER_TEAM / 32 * 2 * (int)sizeof(int);
}

/* Keeps the larger value, and of equal values the earlier index. */
__device__ __forceinline__ void eot_gather_best(int &v, int &i, int ov, int oi)
{
	if (ov > v || (ov == v && oi < i))
		v = ov, i = oi;
}

/* T: x's and y's element type, __half or float. */
template <typename T>
__device__ inline void eot_gather_tile(const eot_gather_params &p, int tile, const mmf_team &team)
{
	const int nt = p.tokens, lane = team.tid & 31, warp = team.tid >> 5;
	const int32_t *ids = p.ids + (size_t)tile * nt;
	int *scratch = reinterpret_cast<int *>(team.smem);	/* [warp][value, index] */
	int v = INT_MIN, i = INT_MAX;
	for (int t = team.tid; t < nt; t += EOT_GATHER_TEAM)
		eot_gather_best(v, i, __ldg(ids + t), t);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		eot_gather_best(v, i, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, i, o));
	team_sync(team);	/* the previous tile is done with scratch */
	if (lane == 0)
		scratch[2 * warp] = v, scratch[2 * warp + 1] = i;
	team_sync(team);
	v = scratch[0], i = scratch[1];
	for (int w = 1; w < EOT_GATHER_TEAM / 32; w++)
		eot_gather_best(v, i, scratch[2 * w], scratch[2 * w + 1]);

	const int nvec = p.width / (16 / (int)sizeof(T));	/* 16-byte chunks */
	const uint4 *x = reinterpret_cast<const uint4 *>(static_cast<const T *>(p.x) + ((size_t)tile * nt + i) * p.width);
	uint4 *y = reinterpret_cast<uint4 *>(static_cast<T *>(p.y) + (size_t)tile * p.width);
	for (int c = team.tid; c < nvec; c += EOT_GATHER_TEAM)
		y[c] = __ldg(x + c);
}

#endif
