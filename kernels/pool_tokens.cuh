/* pool_tokens: the tokens the ResNet attention pool attends over. From the
 * last feature map x [batch][hw][channels] (NHWC, hw = 7*7 for RN50) it
 * builds y [batch][hw+1][channels]: y[0] = mean over the hw positions of x,
 * then y[t] = x[t-1]; every row plus its positional embedding pos
 * [hw+1][channels]. fp16 in and out, or fp32 (the descriptor's fp32
 * form); fp32 sums either way.
 *
 * A tile is (sample, strip of 64 channels), 32..40 tiles a sample at
 * CLIP's 2048..2560 channels: a team of 128 is 8 lanes across the strip
 * (8 channels a lane: 128 contiguous bytes a row in fp16, 256 in fp32) by
 * 16 row groups, so one pass over the rows both copies them and sums the
 * mean; the 16 partial sums are reduced with shuffles inside a warp and
 * through 1 KB of shared memory across the 4 warps. */
#ifndef MMF_POOL_TOKENS_CUH
#define MMF_POOL_TOKENS_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct pool_tokens_params {
	const void *x;		/* [batch][hw][channels] */
	const void *pos;	/* [hw + 1][channels] */
	void *y;		/* [batch][hw + 1][channels] */
	int batch, hw, channels;
};

constexpr int POOL_TOKENS_TEAM = 128;
constexpr int POOL_TOKENS_LANES = 8;	/* 8-channel chunks across a strip: 64 channels */
constexpr int POOL_TOKENS_GROUPS = POOL_TOKENS_TEAM / POOL_TOKENS_LANES;

__host__ __device__ static inline int pool_tokens_tiles(const pool_tokens_params &p)
{
	return p.batch * ((p.channels + 8 * POOL_TOKENS_LANES - 1) / (8 * POOL_TOKENS_LANES));
}

__host__ __device__ static inline int pool_tokens_smem_bytes(const pool_tokens_params &)
{
	return POOL_TOKENS_TEAM / 32 * 8 * POOL_TOKENS_LANES * (int)sizeof(float);
}

/* f += the 8 elements at p */
template <typename T>
__device__ __forceinline__ void pool_tokens_acc(float f[8], const T *p)
{
	float v[8];
	mmf_ldg8(p, v);
#pragma unroll
	for (int i = 0; i < 8; i++)
		f[i] += v[i];
}

/* T: the tensors' element type, __half or float. */
template <typename T>
__device__ inline void pool_tokens_tile(const pool_tokens_params &p, int tile, const mmf_team &team)
{
	const int C = p.channels, HW = p.hw, nstrip = (C + 8 * POOL_TOKENS_LANES - 1) / (8 * POOL_TOKENS_LANES);
	const int b = tile / nstrip, strip = tile - b * nstrip;
	const int lane = team.tid & 31, warp = team.tid >> 5;
	const int ch = team.tid % POOL_TOKENS_LANES, rg = team.tid / POOL_TOKENS_LANES;
	const int c0 = (strip * POOL_TOKENS_LANES + ch) * 8;
	const bool on = c0 < C;
	const T *x = static_cast<const T *>(p.x) + (size_t)b * HW * C + c0, *pos = static_cast<const T *>(p.pos) + c0;
	T *y = static_cast<T *>(p.y) + (size_t)b * (HW + 1) * C + c0;
	float *part = reinterpret_cast<float *>(team.smem);	/* [warp][8 lanes * 8] */

	float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
	/* Rows in flight a thread: 4 in fp16 (64 bytes each of x and pos); 1
	 * in fp32, where 2 spilled on sm_110 (and 4 everywhere) at the 64
	 * registers of 8 teams an SM. */
	if (on)
#pragma unroll(sizeof(T) == 2 ? 4 : 1)
		for (int t = rg; t < HW; t += POOL_TOKENS_GROUPS) {
			float f[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
			pool_tokens_acc(f, x + (size_t)t * C);
#pragma unroll
			for (int i = 0; i < 8; i++)
				sum[i] += f[i];
			pool_tokens_acc(f, pos + (size_t)(t + 1) * C);
			mmf_store8(y + (size_t)(t + 1) * C, f);
		}
	/* lanes ch, ch+8, ch+16, ch+24 of a warp hold the same channels */
#pragma unroll
	for (int o = POOL_TOKENS_LANES; o < 32; o <<= 1)
#pragma unroll
		for (int i = 0; i < 8; i++)
			sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], o);
	team_sync(team);	/* the previous tile is done with part */
	if (lane < POOL_TOKENS_LANES)
#pragma unroll
		for (int i = 0; i < 8; i++)
			part[(warp * POOL_TOKENS_LANES + ch) * 8 + i] = sum[i];
	team_sync(team);
	if (team.tid < POOL_TOKENS_LANES && on) {	/* ch == tid */
		float f[8];
		const float inv = 1.f / HW;
#pragma unroll
		for (int i = 0; i < 8; i++) {
			float s = 0.f;
#pragma unroll
			for (int w = 0; w < POOL_TOKENS_TEAM / 32; w++)
				s += part[(w * POOL_TOKENS_LANES + ch) * 8 + i];
			f[i] = s * inv;
		}
		pool_tokens_acc(f, pos);
		mmf_store8(y, f);
	}
}

#endif
