/* layernorm.cuh: the LayerNorm tile function (see layernorm.cu for the
 * launch). */
#ifndef MMF_LAYERNORM_CUH
#define MMF_LAYERNORM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct layernorm_params {
	const __half *x;
	__half *y;
	const __half *gamma, *beta;
	int rows, width;
};

#define LN_THREADS 128
#define LN_MAX_VEC 4	/* up to 128*4*8 = 4096 wide in registers */

/* Shared memory per tile: one float per warp for the reductions. */
__host__ __device__ constexpr int layernorm_smem_bytes(int team_size) { return (team_size / 32) * 4; }

__device__ inline void layernorm_tile(const layernorm_params &p, int row, const mmf_team &team)
{
	const int nvec = p.width / 8;
	const uint4 *x = reinterpret_cast<const uint4 *>(p.x + (size_t)row * p.width);
	uint4 *y = reinterpret_cast<uint4 *>(p.y + (size_t)row * p.width);
	float *scratch = reinterpret_cast<float *>(team.smem);
	float v[LN_MAX_VEC][8];
	float sum = 0.f;
#pragma unroll
	for (int i = 0; i < LN_MAX_VEC; i++) {
		int c = team.tid + i * team.size;
		if (c < nvec) {
			uint4 raw = x[c];
			const __half2 *h = reinterpret_cast<const __half2 *>(&raw);
#pragma unroll
			for (int j = 0; j < 4; j++) {
				float2 f = __half22float2(h[j]);
				v[i][2 * j] = f.x, v[i][2 * j + 1] = f.y;
				sum += f.x + f.y;
			}
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
	const uint4 *g = reinterpret_cast<const uint4 *>(p.gamma), *b = reinterpret_cast<const uint4 *>(p.beta);
#pragma unroll
	for (int i = 0; i < LN_MAX_VEC; i++) {
		int c = team.tid + i * team.size;
		if (c < nvec) {
			uint4 graw = g[c], braw = b[c], out;
			const __half2 *gh = reinterpret_cast<const __half2 *>(&graw), *bh = reinterpret_cast<const __half2 *>(&braw);
			__half2 *o = reinterpret_cast<__half2 *>(&out);
#pragma unroll
			for (int j = 0; j < 4; j++) {
				float2 gf = __half22float2(gh[j]), bf = __half22float2(bh[j]);
				o[j] = __floats2half2_rn((v[i][2 * j] - mean) * inv * gf.x + bf.x,
							 (v[i][2 * j + 1] - mean) * inv * gf.y + bf.y);
			}
			y[c] = out;
		}
	}
}

__host__ __device__ static inline int layernorm_tiles(const layernorm_params &p) { return p.rows; }

#endif
