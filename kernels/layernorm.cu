/* layernorm: y = (x - mean) / sqrt(var + 1e-5) * gamma + beta over each row
 * of a row-major fp16 matrix, statistics in fp32. A tile is one row; the
 * team reads it once with 16-byte loads into registers when it fits (CLIP's
 * text widths of 512..1280 are 1..2 vectors per thread at 128 threads),
 * reduces mean and variance in two passes over those registers (exact, no
 * E[x^2]-E[x]^2 cancellation), then writes. Memory-bound: one read and one
 * write of the row. */
#include <cuda_fp16.h>

#include "check.h"
#include "mmf_kernels.h"
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

__device__ void layernorm_tile(const layernorm_params &p, int row, const mmf_team &team)
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

__global__ void __launch_bounds__(LN_THREADS) layernorm_kernel(layernorm_params p)
{
	__shared__ float smem[layernorm_smem_bytes(LN_THREADS) / 4];
	mmf_team team = team_whole_block(reinterpret_cast<char *>(smem));
	for (int row = blockIdx.x; row < p.rows; row += gridDim.x)
		layernorm_tile(p, row, team);
	mmf_pdl_trigger();
}

static int layernorm_launch(const layernorm_params &p, cudaStream_t stream)
{
	int grid = p.rows < 65535 ? p.rows : 65535;
	MMF_CUDA_CHECK(mmf_launch(layernorm_kernel, grid, LN_THREADS, 0, stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_layernorm_f16(const void *x, void *y, const void *gamma, const void *beta,
				 int rows, int width, mmf_stream stream)
{
	if (!x || !y || !gamma || !beta || rows < 1 || width < 8 || width % 8 ||
	    width > LN_THREADS * LN_MAX_VEC * 8)
		return -EINVAL;
	if (((uintptr_t)x | (uintptr_t)y | (uintptr_t)gamma | (uintptr_t)beta) % 16)
		return -EINVAL;
	layernorm_params p = {(const __half *)x, (__half *)y, (const __half *)gamma, (const __half *)beta, rows, width};
	return layernorm_launch(p, (cudaStream_t)stream);
}
