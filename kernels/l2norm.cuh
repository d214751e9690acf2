/* l2norm: the last op of both towers. x [rows][width] fp16 becomes
 * y [rows][width] float32 = x / max(||x||, 1e-12) (F.normalize's eps): the
 * embedding goes back to the host as fp32, so the final rounding to fp16 is
 * skipped. Sum of squares in fp32.
 *
 * A tile is one row (one embedding of 512..1024): the team reads it with
 * 16-byte loads, reduces with team_sum, then reads it again (from L1/L2,
 * it is 1..2 KB) to scale it and write 2 x 16 bytes a chunk. Shared memory:
 * one float a warp. */
#ifndef MMF_L2NORM_CUH
#define MMF_L2NORM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct l2norm_params {
	const __half *x;	/* [rows][width] */
	float *y;		/* [rows][width] */
	int rows, width;
};

constexpr int L2NORM_TEAM = 128;

__host__ __device__ static inline int l2norm_tiles(const l2norm_params &p) { return p.rows; }

__host__ __device__ static inline int l2norm_smem_bytes(const l2norm_params &)
{
	return L2NORM_TEAM / 32 * (int)sizeof(float);
}

__device__ inline void l2norm_tile(const l2norm_params &p, int row, const mmf_team &team)
{
	const int nvec = p.width / 8;
	const uint4 *x = reinterpret_cast<const uint4 *>(p.x + (size_t)row * p.width);
	float4 *y = reinterpret_cast<float4 *>(p.y + (size_t)row * p.width);
	float ss = 0.f;
	for (int c = team.tid; c < nvec; c += L2NORM_TEAM) {
		const uint4 raw = __ldg(x + c);
		const __half2 *h = reinterpret_cast<const __half2 *>(&raw);
#pragma unroll
		for (int i = 0; i < 4; i++) {
			const float2 f = __half22float2(h[i]);
			ss += f.x * f.x + f.y * f.y;
		}
	}
	const float inv = 1.f / fmaxf(sqrtf(team_sum(team, ss, reinterpret_cast<float *>(team.smem))), 1e-12f);
	for (int c = team.tid; c < nvec; c += L2NORM_TEAM) {
		const uint4 raw = __ldg(x + c);
		const __half2 *h = reinterpret_cast<const __half2 *>(&raw);
		const float2 a = __half22float2(h[0]), b = __half22float2(h[1]), d = __half22float2(h[2]),
			     e = __half22float2(h[3]);
		y[2 * c] = make_float4(a.x * inv, a.y * inv, b.x * inv, b.y * inv);
		y[2 * c + 1] = make_float4(d.x * inv, d.y * inv, e.x * inv, e.y * inv);
	}
}

#endif
