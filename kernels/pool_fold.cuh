/* pool_fold: the attention pool (attn_pool.cuh) with the keys and values
 * folded into the weights, for batch-1 latency (experimental: the engine
 * uses it with MMF_POOL_FOLD=1). With one query a sample, per head h (rows
 * h*dh..h*dh+dh-1 of the k and v projections Wk, Wv, dh = width/heads):
 *
 *   q_h . k_j = q_h . (Wk_h x_j + bk_h) = (Wk_h^T q_h) . x_j + q_h . bk_h,
 *
 * and the last term, the same for every token j, cancels in the softmax;
 *
 *   sum_j p_j v_j = Wv_h (sum_j p_j x_j) + bv_h      (sum_j p_j = 1).
 *
 * So instead of the keys and values of every token (RN50: a 50 x 4096 x
 * 2048 GEMM, 839 MFLOP over 16.8 MB of weights) two passes read each weight
 * matrix once against a vector:
 *
 *   pool_qk:   qt[b][h][:] = Wk_h^T q_h / sqrt(dh)       fp32 [batch][heads][width]
 *   pool_fold: per (sample, head): s_j = qt_h . x_j, p = softmax(s),
 *              xbar = sum_j p_j x_j (fp32, shared memory),
 *              out[b][h*dh + r] = Wv[h*dh + r] . xbar + bv[h*dh + r]
 *
 * out is what attn_pool gives from the same q, k and v (the heads' outputs
 * side by side), summed in another order. fp16 tensors, fp32 math; no fp32
 * form (the engine folds only fp16 models).
 *
 * pool_qk: a tile is (sample, head, 512 columns); its 128 threads are two
 * halves of 64, each thread 8 consecutive columns (one 16-byte load a row)
 * over half the head's rows, the halves summed through shared memory (2 KB).
 * pool_fold: a tile is (sample, head) for 4 warps; the scores are dot
 * products of a warp with a token row each, every warp takes the softmax's
 * max and sum itself, each thread sums 8 columns of xbar over the tokens,
 * and each warp computes dh/4 output rows, two at a time. Shared memory:
 * tokens (rounded up to 4) + width floats. team.smem 16-byte aligned. */
#ifndef MMF_POOL_FOLD_CUH
#define MMF_POOL_FOLD_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct pool_qk_params {
	const void *q;		/* [batch][width] fp16: token 0's query */
	const void *wk;		/* [width][width] fp16, row n = output feature n */
	float *qt;		/* [batch][heads][width] */
	int batch, width, heads;
	float scale;		/* 1/sqrt(dh) */
};

struct pool_fold_params {
	const void *x;		/* [batch][tokens][width] fp16 */
	const float *qt;	/* [batch][heads][width] (pool_qk) */
	const void *wv;		/* [width][width] fp16 */
	const float *bv;	/* [width] or NULL */
	void *out;		/* [batch][width] fp16 */
	int batch, tokens, width, heads;
};

constexpr int POOL_FOLD_TEAM = 128;
constexpr int POOL_QK_COLS = POOL_FOLD_TEAM / 2 * 8;	/* columns a pool_qk tile */
constexpr int POOL_FOLD_MAX_WIDTH = 4096;
constexpr int POOL_FOLD_MAX_TOKENS = 1024;

__host__ __device__ static inline int pool_qk_tiles(const pool_qk_params &p)
{
	return p.batch * p.heads * ((p.width + POOL_QK_COLS - 1) / POOL_QK_COLS);
}

__host__ __device__ static inline int pool_qk_smem_bytes(const pool_qk_params &) { return POOL_QK_COLS * (int)sizeof(float); }

__host__ __device__ static inline int pool_fold_tiles(const pool_fold_params &p) { return p.batch * p.heads; }

__host__ __device__ static inline int pool_fold_smem_bytes(const pool_fold_params &p)
{
	return (((p.tokens + 3) & ~3) + p.width) * (int)sizeof(float);
}

__device__ __forceinline__ float pool_fold_warp_sum(float v)
{
#pragma unroll
	for (int o = 16; o; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float pool_fold_warp_max(float v)
{
#pragma unroll
	for (int o = 16; o; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

__device__ inline void pool_qk_tile(const pool_qk_params &p, int tile, const mmf_team &team)
{
	const int C = p.width, dh = C / p.heads, chunks = (C + POOL_QK_COLS - 1) / POOL_QK_COLS;
	const int chunk = tile % chunks, bh = tile / chunks, h = bh % p.heads, b = bh / p.heads;
	const int half = team.tid / (POOL_FOLD_TEAM / 2), col = team.tid % (POOL_FOLD_TEAM / 2);
	const int c = chunk * POOL_QK_COLS + col * 8;
	const int r0 = half * (dh / 2), r1 = half ? dh : dh / 2;
	float *red = reinterpret_cast<float *>(team.smem);	/* [64][8]: the second half's sums */
	team_sync(team);	/* the previous tile has read red */
	float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
	if (c < C) {
		const __half *q = static_cast<const __half *>(p.q) + (size_t)b * C + h * dh;
		const __half *w = static_cast<const __half *>(p.wk) + (size_t)(h * dh) * C + c;
#pragma unroll 8
		for (int r = r0; r < r1; r++) {
			const float qv = __half2float(q[r]);
			float wf[8];
			mmf_ldg8(w + (size_t)r * C, wf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				acc[i] = fmaf(qv, wf[i], acc[i]);
		}
	}
	if (half) {
#pragma unroll
		for (int i = 0; i < 8; i++)
			red[col * 8 + i] = acc[i];
	}
	team_sync(team);
	if (!half && c < C) {
		float *o = p.qt + ((size_t)b * p.heads + h) * C + c;
		float4 lo, hi;
		lo.x = (acc[0] + red[col * 8 + 0]) * p.scale, lo.y = (acc[1] + red[col * 8 + 1]) * p.scale;
		lo.z = (acc[2] + red[col * 8 + 2]) * p.scale, lo.w = (acc[3] + red[col * 8 + 3]) * p.scale;
		hi.x = (acc[4] + red[col * 8 + 4]) * p.scale, hi.y = (acc[5] + red[col * 8 + 5]) * p.scale;
		hi.z = (acc[6] + red[col * 8 + 6]) * p.scale, hi.w = (acc[7] + red[col * 8 + 7]) * p.scale;
		reinterpret_cast<float4 *>(o)[0] = lo;
		reinterpret_cast<float4 *>(o)[1] = hi;
	}
}

__device__ inline void pool_fold_tile(const pool_fold_params &p, int tile, const mmf_team &team)
{
	const int C = p.width, T = p.tokens, dh = C / p.heads;
	const int b = tile / p.heads, h = tile - b * p.heads;
	const int lane = team.tid & 31, warp = team.tid >> 5, nwarps = POOL_FOLD_TEAM / 32;
	float *sc = reinterpret_cast<float *>(team.smem);
	float *xbar = sc + ((T + 3) & ~3);
	const __half *x = static_cast<const __half *>(p.x) + (size_t)b * T * C;
	const float *qt = p.qt + ((size_t)b * p.heads + h) * C;
	team_sync(team);	/* the previous tile has read sc and xbar */

	/* Scores: a warp a token, lanes along the row. */
	for (int j = warp; j < T; j += nwarps) {
		const __half *xj = x + (size_t)j * C;
		float s = 0.f;
#pragma unroll 2	/* 4 spilled 8 bytes on sm_110 */
		for (int k = lane * 8; k < C; k += 256) {
			float xf[8], qf[8];
			mmf_ldg8(xj + k, xf);
			mmf_ldg8(qt + k, qf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				s = fmaf(xf[i], qf[i], s);
		}
		s = pool_fold_warp_sum(s);
		if (lane == 0)
			sc[j] = s;
	}
	team_sync(team);

	/* Softmax statistics, every warp for itself (no barrier). */
	float mx = __int_as_float(0xff800000);	/* -inf */
	for (int j = lane; j < T; j += 32)
		mx = fmaxf(mx, sc[j]);
	mx = pool_fold_warp_max(mx);
	float sum = 0.f;
	for (int j = lane; j < T; j += 32)
		sum += __expf(sc[j] - mx);
	const float inv = 1.f / pool_fold_warp_sum(sum);

	/* xbar = sum_j p_j x_j: 8 columns a thread per pass. */
	for (int k = team.tid * 8; k < C; k += POOL_FOLD_TEAM * 8) {
		float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
		for (int j = 0; j < T; j++) {
			const float pj = __expf(sc[j] - mx) * inv;
			float xf[8];
			mmf_ldg8(x + (size_t)j * C + k, xf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				acc[i] = fmaf(pj, xf[i], acc[i]);
		}
		float4 *d = reinterpret_cast<float4 *>(xbar + k);
		d[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
		d[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
	}
	team_sync(team);

	/* out rows of this head: Wv[n] . xbar + bv[n], two rows a warp at a time. */
	const __half *wv = static_cast<const __half *>(p.wv);
	__half *out = static_cast<__half *>(p.out) + (size_t)b * C;
	for (int r = warp * 2; r < dh; r += nwarps * 2) {
		const int n0 = h * dh + r, n1 = n0 + 1 < h * dh + dh ? n0 + 1 : n0;
		const __half *w0 = wv + (size_t)n0 * C, *w1 = wv + (size_t)n1 * C;
		float a0 = 0.f, a1 = 0.f;
#pragma unroll 4
		for (int k = lane * 8; k < C; k += 256) {
			float f0[8], f1[8];
			mmf_ldg8(w0 + k, f0);
			mmf_ldg8(w1 + k, f1);
			float xs[8];
			*reinterpret_cast<float4 *>(xs) = *reinterpret_cast<const float4 *>(xbar + k);
			*reinterpret_cast<float4 *>(xs + 4) = *reinterpret_cast<const float4 *>(xbar + k + 4);
#pragma unroll
			for (int i = 0; i < 8; i++) {
				a0 = fmaf(f0[i], xs[i], a0);
				a1 = fmaf(f1[i], xs[i], a1);
			}
		}
		a0 = pool_fold_warp_sum(a0);
		a1 = pool_fold_warp_sum(a1);
		if (lane == 0) {
			out[n0] = __float2half_rn(a0 + (p.bv ? p.bv[n0] : 0.f));
			if (n1 != n0)
				out[n1] = __float2half_rn(a1 + (p.bv ? p.bv[n1] : 0.f));
		}
	}
}

#endif
