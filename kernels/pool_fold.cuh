/* pool_fold: the attention pool (attn_pool.cuh) with the keys and values
 * folded into the weights, for batch-1 latency (the engine's default for
 * fp16 models; MMF_POOL_FOLD=0 turns it off). With one query a sample,
 * per head h (rows h*dh..h*dh+dh-1 of the k and v projections Wk, Wv,
 * dh = width/heads):
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
 * pool_qk: a tile is (sample, head, 512 columns); its 512 threads are 8
 * groups of 64, each thread 8 consecutive columns (one 16-byte load a row)
 * over an eighth of the head's rows, the groups' sums added in group order
 * through shared memory (14 KB). Many threads rather than many loads a
 * thread: ptxas interleaves each 16-byte load with the math of the one
 * before (sm_90 SASS), so a thread keeps only ~2-3 loads in flight however
 * far its loop is unrolled.
 * pool_fold: a tile is (sample, head): only 32 tiles at batch 1 for RN50,
 * each streaming its head's 64 rows of Wv (256 KB), so the team is the
 * largest a block can be (32 warps), for the most loads in flight. The
 * scores are dot products of a warp with a token row each; every warp
 * takes the softmax's max and sum itself; xbar is summed by G groups of
 * threads over every G-th token (8 columns a thread; G * width <= 4096, 2
 * for RN50) into shared partials, added in group order (the same bits
 * every run); each warp then computes output rows two at a time. Shared
 * memory: tokens (rounded up to 4) + width + 4096 floats (25 KB for RN50,
 * at most 36 KB). team.smem 16-byte aligned. */
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

constexpr int POOL_QK_TEAM = 512;
constexpr int POOL_QK_GROUPS = 8;	/* row groups of a pool_qk tile (dh is a multiple of 8) */
constexpr int POOL_QK_COLS = POOL_QK_TEAM / POOL_QK_GROUPS * 8;	/* columns a pool_qk tile */
constexpr int POOL_FOLD_TEAM = 1024;
constexpr int POOL_FOLD_PART = 4096;	/* floats of xbar partials: groups G with G * width <= this */
constexpr int POOL_FOLD_MAX_WIDTH = 4096;
constexpr int POOL_FOLD_MAX_TOKENS = 1024;

__host__ __device__ static inline int pool_qk_tiles(const pool_qk_params &p)
{
	return p.batch * p.heads * ((p.width + POOL_QK_COLS - 1) / POOL_QK_COLS);
}

__host__ __device__ static inline int pool_qk_smem_bytes(const pool_qk_params &)
{
	return (POOL_QK_GROUPS - 1) * POOL_QK_COLS * (int)sizeof(float);
}

__host__ __device__ static inline int pool_fold_tiles(const pool_fold_params &p) { return p.batch * p.heads; }

__host__ __device__ static inline int pool_fold_smem_bytes(const pool_fold_params &p)
{
	return (((p.tokens + 3) & ~3) + p.width + POOL_FOLD_PART) * (int)sizeof(float);
}

/* acc[i] += s * (8 halves of raw)[i]. */
__device__ __forceinline__ void pool_fold_fma8(float acc[8], float s, uint4 raw)
{
	float f[8];
	mmf_unpack8(raw, f);
#pragma unroll
	for (int i = 0; i < 8; i++)
		acc[i] = fmaf(s, f[i], acc[i]);
}

/* The loops below run in batches of U 16-byte loads (then a remainder one
 * at a time): unrolled with a run-time trip count, a loop checks its bound
 * between bodies and no load moves ahead of the previous body's math. In a
 * batch ptxas is free to issue loads early; on sm_90 it runs 2-3 ahead of
 * the math, not U, so the teams are wide instead. */
__device__ inline void pool_qk_tile(const pool_qk_params &p, int tile, const mmf_team &team)
{
	constexpr int NC = POOL_QK_TEAM / POOL_QK_GROUPS;	/* column threads */
	const int C = p.width, dh = C / p.heads, chunks = (C + POOL_QK_COLS - 1) / POOL_QK_COLS;
	const int chunk = tile % chunks, bh = tile / chunks, h = bh % p.heads, b = bh / p.heads;
	const int grp = team.tid / NC, col = team.tid % NC;
	const int c = chunk * POOL_QK_COLS + col * 8;
	const int rows = dh / POOL_QK_GROUPS, r0 = grp * rows, r1 = r0 + rows;
	float *red = reinterpret_cast<float *>(team.smem);	/* [groups - 1][COLS]: groups 1.. */
	team_sync(team);	/* the previous tile has read red */
	float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
	if (c < C) {
		const __half *q = static_cast<const __half *>(p.q) + (size_t)b * C + h * dh;
		const __half *w = static_cast<const __half *>(p.wk) + (size_t)(h * dh) * C + c;
		constexpr int U = 4;
		int r = r0;
		for (; r + U <= r1; r += U) {
			uint4 raw[U];
			float qv[U];
#pragma unroll
			for (int u = 0; u < U; u++) {
				raw[u] = __ldg(reinterpret_cast<const uint4 *>(w + (size_t)(r + u) * C));
				qv[u] = __half2float(q[r + u]);
			}
#pragma unroll
			for (int u = 0; u < U; u++)
				pool_fold_fma8(acc, qv[u], raw[u]);
		}
		for (; r < r1; r++)
			pool_fold_fma8(acc, __half2float(q[r]), __ldg(reinterpret_cast<const uint4 *>(w + (size_t)r * C)));
	}
	if (grp) {
#pragma unroll
		for (int i = 0; i < 8; i++)
			red[(grp - 1) * POOL_QK_COLS + col * 8 + i] = acc[i];
	}
	team_sync(team);
	if (!grp && c < C) {
		for (int g = 0; g < POOL_QK_GROUPS - 1; g++)
#pragma unroll
			for (int i = 0; i < 8; i++)
				acc[i] += red[g * POOL_QK_COLS + col * 8 + i];
#pragma unroll
		for (int i = 0; i < 8; i++)
			acc[i] *= p.scale;
		mmf_store8(p.qt + ((size_t)b * p.heads + h) * C + c, acc);
	}
}

__device__ inline void pool_fold_tile(const pool_fold_params &p, int tile, const mmf_team &team)
{
	const int C = p.width, T = p.tokens, dh = C / p.heads;
	const int b = tile / p.heads, h = tile - b * p.heads;
	const int lane = team.tid & 31, warp = team.tid >> 5, nwarps = POOL_FOLD_TEAM / 32;
	float *sc = reinterpret_cast<float *>(team.smem);
	float *xbar = sc + ((T + 3) & ~3);
	float *part = xbar + C;	/* [G][C]: each token group's share of xbar */
	const __half *x = static_cast<const __half *>(p.x) + (size_t)b * T * C;
	const float *qt = p.qt + ((size_t)b * p.heads + h) * C;
	team_sync(team);	/* the previous tile has read sc and xbar */

	/* Scores: a warp a token, lanes along the row. */
	for (int j = warp; j < T; j += nwarps) {
		const __half *xj = x + (size_t)j * C;
		float s = 0.f;
		constexpr int U = 2;
		int k = lane * 8;
		for (; k + (U - 1) * 256 < C; k += U * 256) {
			uint4 raw[U];
			float qf[U][8];
#pragma unroll
			for (int u = 0; u < U; u++) {
				raw[u] = __ldg(reinterpret_cast<const uint4 *>(xj + k + u * 256));
				mmf_ldg8(qt + k + u * 256, qf[u]);
			}
#pragma unroll
			for (int u = 0; u < U; u++) {
				float xf[8];
				mmf_unpack8(raw[u], xf);
#pragma unroll
				for (int i = 0; i < 8; i++)
					s = fmaf(xf[i], qf[u][i], s);
			}
		}
		for (; k < C; k += 256) {
			float xf[8], qf[8];
			mmf_ldg8(xj + k, xf);
			mmf_ldg8(qt + k, qf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				s = fmaf(xf[i], qf[i], s);
		}
		s = mmf_warp_sum(s);
		if (lane == 0)
			sc[j] = s;
	}
	team_sync(team);
	MMF_PROBE_MARK(team, 0);	/* scores */

	/* Softmax statistics, every warp for itself (no barrier). */
	float mx = __int_as_float(0xff800000);	/* -inf */
	for (int j = lane; j < T; j += 32)
		mx = fmaxf(mx, sc[j]);
	mx = mmf_warp_max(mx);
	float sum = 0.f;
	for (int j = lane; j < T; j += 32)
		sum += __expf(sc[j] - mx);
	const float inv = 1.f / mmf_warp_sum(sum);

	/* xbar = sum_j p_j x_j: group g of the team sums tokens g, g+G, ...
	 * (8 columns a thread), then the groups' partials are added in order. */
	const int nch = C / 8, G = min(POOL_FOLD_TEAM / nch, POOL_FOLD_PART / C);	/* width <= 4096: G >= 1 */
	if (team.tid < G * nch) {
		const int g = team.tid / nch, k = (team.tid - g * nch) * 8;
		float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
		constexpr int U = 8;
		int j = g;
		for (; j + (U - 1) * G < T; j += U * G) {
			uint4 raw[U];
#pragma unroll
			for (int u = 0; u < U; u++)
				raw[u] = __ldg(reinterpret_cast<const uint4 *>(x + (size_t)(j + u * G) * C + k));
#pragma unroll
			for (int u = 0; u < U; u++)
				pool_fold_fma8(acc, __expf(sc[j + u * G] - mx) * inv, raw[u]);
		}
		for (; j < T; j += G)
			pool_fold_fma8(acc, __expf(sc[j] - mx) * inv, __ldg(reinterpret_cast<const uint4 *>(x + (size_t)j * C + k)));
		mmf_store8(part + (size_t)g * C + k, acc);
	}
	team_sync(team);
	for (int k = team.tid; k < C; k += POOL_FOLD_TEAM) {
		float v = part[k];
		for (int g = 1; g < G; g++)
			v += part[(size_t)g * C + k];
		xbar[k] = v;
	}
	team_sync(team);
	MMF_PROBE_MARK(team, 1);	/* xbar */

	/* out rows of this head: Wv[n] . xbar + bv[n], two rows a warp at a time. */
	const __half *wv = static_cast<const __half *>(p.wv);
	__half *out = static_cast<__half *>(p.out) + (size_t)b * C;
	for (int r = warp * 2; r < dh; r += nwarps * 2) {
		const int n0 = h * dh + r, n1 = n0 + 1 < h * dh + dh ? n0 + 1 : n0;
		const __half *w0 = wv + (size_t)n0 * C, *w1 = wv + (size_t)n1 * C;
		float a0 = 0.f, a1 = 0.f;
		constexpr int U = 4;
		int k = lane * 8;
		for (; k + (U - 1) * 256 < C; k += U * 256) {
			uint4 r0[U], r1[U];
#pragma unroll
			for (int u = 0; u < U; u++) {
				r0[u] = __ldg(reinterpret_cast<const uint4 *>(w0 + k + u * 256));
				r1[u] = __ldg(reinterpret_cast<const uint4 *>(w1 + k + u * 256));
			}
#pragma unroll
			for (int u = 0; u < U; u++) {
				float f0[8], f1[8], xs[8];
				mmf_unpack8(r0[u], f0);
				mmf_unpack8(r1[u], f1);
				mmf_load8(xbar + k + u * 256, xs);
#pragma unroll
				for (int i = 0; i < 8; i++) {
					a0 = fmaf(f0[i], xs[i], a0);
					a1 = fmaf(f1[i], xs[i], a1);
				}
			}
		}
		for (; k < C; k += 256) {
			float f0[8], f1[8], xs[8];
			mmf_ldg8(w0 + k, f0);
			mmf_ldg8(w1 + k, f1);
			mmf_load8(xbar + k, xs);
#pragma unroll
			for (int i = 0; i < 8; i++) {
				a0 = fmaf(f0[i], xs[i], a0);
				a1 = fmaf(f1[i], xs[i], a1);
			}
		}
		a0 = mmf_warp_sum(a0);
		a1 = mmf_warp_sum(a1);
		if (lane == 0) {
			out[n0] = __float2half_rn(a0 + (p.bv ? p.bv[n0] : 0.f));
			if (n1 != n0)
				out[n1] = __float2half_rn(a1 + (p.bv ? p.bv[n1] : 0.f));
		}
	}
}

#endif
