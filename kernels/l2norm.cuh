/* l2norm: the last op of both towers. x [rows][width] fp16 (fp32 in the
 * descriptor's fp32 form) becomes y [rows][width] float32 = x / max(||x||,
 * 1e-12) (F.normalize's eps): the embedding goes back to the host as fp32,
 * so the final rounding to fp16 is skipped. Sum of squares in fp32.
 *
 * A tile is one row (one embedding of 512..1024): the team reads it 8
 * elements a thread and load (16 bytes in fp16, 2 x 16 in fp32), reduces
 * with team_sum, then reads it again (from L1/L2, it is 1..4 KB) to scale
 * it and write 2 x 16 bytes a chunk. Shared memory: one float a warp. */
#ifndef MMF_L2NORM_CUH
#define MMF_L2NORM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct l2norm_params {
	const void *x;		/* [rows][width] */
	float *y;		/* [rows][width] */
	int rows, width;
};

constexpr int L2NORM_TEAM = 128;

__host__ __device__ static inline int l2norm_tiles(const l2norm_params &p) { return p.rows; }

__host__ __device__ static inline int l2norm_smem_bytes(const l2norm_params &)
{
	return L2NORM_TEAM / 32 * (int)sizeof(float);
}

/* T: x's element type, __half or float. */
template <typename T>
__device__ inline void l2norm_tile(const l2norm_params &p, int row, const mmf_team &team)
{
	const int nvec = p.width / 8;
	const T *x = static_cast<const T *>(p.x) + (size_t)row * p.width;
	float *y = p.y + (size_t)row * p.width;
	float ss = 0.f;
	for (int c = team.tid; c < nvec; c += L2NORM_TEAM) {
		float f[8];
		mmf_ldg8(x + 8 * c, f);
#pragma unroll
		for (int i = 0; i < 4; i++)
			ss += f[2 * i] * f[2 * i] + f[2 * i + 1] * f[2 * i + 1];
	}
	const float inv = 1.f / fmaxf(sqrtf(team_sum(team, ss, reinterpret_cast<float *>(team.smem))), 1e-12f);
	for (int c = team.tid; c < nvec; c += L2NORM_TEAM) {
		float f[8];
		mmf_ldg8(x + 8 * c, f);
#pragma unroll
		for (int i = 0; i < 8; i++)
			f[i] *= inv;
		mmf_store8(y + 8 * c, f);
	}
}

#endif
