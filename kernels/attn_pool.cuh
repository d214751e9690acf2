/* attn_pool: the attention pool that ends the ResNet image tower. One query
 * a sample, q [batch][width] (token 0's), against every token's keys and
 * values, kv [batch][tokens][2*width] (k | v): out [batch][width] gets, per
 * head of dh = width/heads columns, softmax(q.k_j / sqrt(dh)) v. fp16 in and
 * out, or fp32 (the descriptor's fp32 form); fp32 math either way.
 *
 * A tile is (sample, head): 32..64 tiles at batch 1 for CLIP's ResNets. The
 * op is a matrix-vector product twice over (50..197 keys of dh = 64), so it
 * is memory-bound and shaped for the reads: a group of G lanes (G the power
 * of two covering dh/8, 8 for dh = 64) reads one key row, 8 contiguous
 * elements a lane (one 16-byte load in fp16, two in fp32), and reduces its
 * dot product with shuffles; the team's 16 groups walk the keys. The scores
 * go to shared memory, every warp takes the max and the sum itself (no
 * extra barrier), and the same groups accumulate p_j v_j over their keys in
 * registers, reduced across groups with shuffles and across warps through
 * shared memory. Shared memory, either form: tokens + 4*dh floats (1.2 KB
 * at 50 tokens, dh = 64). team.smem must be 16-byte aligned. */
#ifndef MMF_ATTN_POOL_CUH
#define MMF_ATTN_POOL_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct attn_pool_params {
	const void *q;		/* [batch][width] */
	const void *kv;		/* [batch][tokens][2 * width] */
	void *out;		/* [batch][width] */
	int batch, tokens, width, heads;
};

constexpr int ATTN_POOL_TEAM = 128;
constexpr int ATTN_POOL_MAX_DH = 256;	/* dh/8 chunks fit one warp */
constexpr int ATTN_POOL_MAX_TOKENS = 8192;	/* scores in well under 48 KB */

__host__ __device__ static inline int attn_pool_tiles(const attn_pool_params &p) { return p.batch * p.heads; }

__host__ __device__ static inline int attn_pool_smem_bytes(const attn_pool_params &p)
{
	return (((p.tokens + 3) & ~3) + ATTN_POOL_TEAM / 32 * (p.width / p.heads)) * (int)sizeof(float);
}

/* T: the tensors' element type, __half or float. */
template <typename T>
__device__ inline void attn_pool_tile(const attn_pool_params &p, int tile, const mmf_team &team)
{
	const int nt = p.tokens, C = p.width, dh = C / p.heads, nc = dh / 8;
	const int b = tile / p.heads, h = tile - b * p.heads;
	int G = 1;	/* lanes a key: the power of two covering nc */
	while (G < nc)
		G <<= 1;
	const int lane = team.tid & 31, warp = team.tid >> 5, sub = team.tid & (G - 1);
	const int grp = team.tid / G, ngrp = ATTN_POOL_TEAM / G;
	const bool on = sub < nc;
	const size_t ld = 2 * (size_t)C;
	const T *k = static_cast<const T *>(p.kv) + (size_t)b * nt * ld + h * dh + sub * 8, *v = k + C;
	float *sc = reinterpret_cast<float *>(team.smem);
	float *part = sc + ((nt + 3) & ~3);	/* [warp][dh] partial outputs */

	/* q pre-scaled by log2(e)/sqrt(dh), so the softmax is exp2(s - max). */
	float qv[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
	if (on)
		mmf_ldg8(static_cast<const T *>(p.q) + (size_t)b * C + h * dh + sub * 8, qv);
	const float scale = 1.44269504088896341f * rsqrtf((float)dh);
#pragma unroll
	for (int i = 0; i < 8; i++)
		qv[i] *= scale;

	team_sync(team);	/* the previous tile is done with sc and part */
#pragma unroll 2
	for (int j0 = 0; j0 < nt; j0 += ngrp) {
		const int j = j0 + grp;
		float d = 0.f;
		if (on && j < nt) {
			float kf[8];
			mmf_ldg8(k + j * ld, kf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				d += qv[i] * kf[i];
		}
		for (int o = 1; o < G; o <<= 1)
			d += __shfl_xor_sync(0xffffffffu, d, o);
		if (sub == 0 && j < nt)
			sc[j] = d;
	}
	team_sync(team);

	float m = -INFINITY, l = 0.f;
	for (int j = lane; j < nt; j += 32)
		m = fmaxf(m, sc[j]);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
	for (int j = lane; j < nt; j += 32)
		l += exp2f(sc[j] - m);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		l += __shfl_xor_sync(0xffffffffu, l, o);

	float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
	if (on)
#pragma unroll 4
		for (int j = grp; j < nt; j += ngrp) {
			const float w = exp2f(sc[j] - m);
			float vf[8];
			mmf_ldg8(v + j * ld, vf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				acc[i] += w * vf[i];
		}
	for (int o = G; o < 32; o <<= 1)
#pragma unroll
		for (int i = 0; i < 8; i++)
			acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], o);
	if (lane < G && on)
#pragma unroll
		for (int i = 0; i < 8; i++)
			part[warp * dh + sub * 8 + i] = acc[i];
	team_sync(team);

	if (team.tid < nc) {	/* warp 0, where sub == tid */
		const float inv = 1.f / l;
		float r[8];
#pragma unroll
		for (int i = 0; i < 8; i++) {
			r[i] = 0.f;
			for (int w = 0; w < ATTN_POOL_TEAM / 32; w++)
				r[i] += part[w * dh + team.tid * 8 + i];
			r[i] *= inv;
		}
		mmf_store8(static_cast<T *>(p.out) + (size_t)b * C + h * dh + team.tid * 8, r);
	}
}

#endif
