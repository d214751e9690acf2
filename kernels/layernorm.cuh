/* layernorm.cuh: the LayerNorm tile function, fp16 or fp32 tensors (see
 * layernorm.cu for the op and the launch). */
#ifndef MMF_LAYERNORM_CUH
#define MMF_LAYERNORM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct layernorm_params {
	const void *x;		/* [rows][width] of T */
	void *y;		/* [rows][width] of T */
	const void *gamma, *beta;	/* [width] of T */
	int rows, width;
};

#define LN_THREADS 128
#define LN_MAX_VEC 4	/* up to 128*4*8 = 4096 wide in registers */

/* Shared memory per tile: one float per warp for the reductions. */
__host__ __device__ constexpr int layernorm_smem_bytes(int team_size) { return (team_size / 32) * 4; }

/* T: __half (the fp16 form) or float (the fp32 form); the math is fp32
 * either way and an fp16 output is rounded once, at the store. */
template <typename T>
__device__ inline void layernorm_tile(const layernorm_params &p, int row, const mmf_team &team)
{
	const int nvec = p.width / 8;
	const T *x = static_cast<const T *>(p.x) + (size_t)row * p.width;
	T *y = static_cast<T *>(p.y) + (size_t)row * p.width;
	const T *g = static_cast<const T *>(p.gamma), *b = static_cast<const T *>(p.beta);
	float *scratch = reinterpret_cast<float *>(team.smem);
	float v[LN_MAX_VEC][8];
	float sum = 0.f;
#pragma unroll
	for (int i = 0; i < LN_MAX_VEC; i++) {
		int c = team.tid + i * team.size;
		if (c < nvec) {
			mmf_load8(x + 8 * c, v[i]);
#pragma unroll
			for (int j = 0; j < 4; j++)
				sum += v[i][2 * j] + v[i][2 * j + 1];
		}
	}
	float mean = team_sum(team, sum, scratch) / p.width;
	float sq = 0.f;
#pragma unroll
	for (int i = 0; i < LN_MAX_VEC; i++)
		if (team.tid + i * team.size < nvec)
#pragma unroll
			for (int j = 0; j < 8; j++) {
				float d = v[i][j] - mean;
				sq += d * d;
			}
	float inv = rsqrtf(team_sum(team, sq, scratch) / p.width + 1e-5f);
#pragma unroll
	for (int i = 0; i < LN_MAX_VEC; i++) {
		int c = team.tid + i * team.size;
		if (c < nvec) {
			float gf[8], bf[8], o[8];
			mmf_load8(g + 8 * c, gf);
			mmf_load8(b + 8 * c, bf);
#pragma unroll
			for (int j = 0; j < 8; j++)
				o[j] = (v[i][j] - mean) * inv * gf[j] + bf[j];
			mmf_store8(y + 8 * c, o);
		}
	}
}

__host__ __device__ static inline int layernorm_tiles(const layernorm_params &p) { return p.rows; }

#endif
