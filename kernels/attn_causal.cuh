/* attn_causal: the text tower's causal multi-head self-attention.
 * qkv [batch][tokens][3*width] holds q | k | v per row, each third split into
 * `heads` contiguous slices of dh = width/heads columns; out
 * [batch][tokens][width] gets, per head and side by side,
 * softmax(q k^T / sqrt(dh), keys j <= i only) v, fp32 math. Two tiles:
 * the fp16 one below (fp16 in and out, tensor cores) and, further down,
 * attn_causal_f32_tile (fp32 in and out, CUDA cores: the descriptor's fp32
 * form, mmf_attn_causal_to_f32).
 *
 * fp16: a tile is (sample, head, block of 32 query rows) for a team of two
 * warps, 16 rows each: CLIP's 77 tokens give 3 tiles a head, so batch 1 with
 * 8..20 heads is 24..60 tiles; the last block sees the most keys and is
 * handed out first. Per head the work is two small matrix products
 * (77x77x64), so it runs on the tensor cores with mma.sync m16n8k16 (fp16
 * in, fp32 accumulate; sm_80 and later), one warp on 16 rows:
 *  - K, for the keys the block can see, goes to shared memory through
 *    16-byte cp.async, coalesced (a head's row is dh*2 contiguous bytes),
 *    while the Q fragments are loaded straight from global memory (each Q
 *    row is read once); ldmatrix feeds K to the mma.
 *  - All scores of a warp's 16 rows stay in registers, so the softmax is
 *    exact and two-pass, with no running rescale; only the diagonal 16-key
 *    step is masked. Probabilities are rounded to fp16 for the P V product
 *    only; the row sums are fp32.
 *  - V (ldmatrix .trans) feeds P V, which accumulates in fp32 registers.
 *    The small size loads V into a second buffer together with K; the
 *    large one loads it over K after Q K^T.
 * The register arrays are sized at compile time, so the tile comes in two
 * sizes (attn_causal_small): CLIP's T <= 80, dh <= 64 in under 96 registers,
 * and anything up to T = 128, dh = 128 in 128. Occupancy is what limits
 * this op (a warp's work is one long dependent chain), so the small size
 * matters: 10 teams an SM instead of 8.
 * A buffer is round16(T) rows of round16(dh)+8 halves: 11.5 KB at T=77,
 * dh=64 (two: 23 KB) and 34 KB at the limits T=128, dh=128 (one); the 8
 * halves of padding make every ldmatrix conflict-free. The second buffer
 * takes one global round trip off every tile, which is what a batch-1
 * text tower waits on (24 tiles on a whole GPU); it was 5% faster on an
 * H200 at batch 64 too, but 20% slower at dh=128, hence the large size
 * keeps one. On Orin (164 KB an SM) two buffers allow 7 small teams an SM
 * instead of the 10 the registers allow. Nothing T x T touches
 * global memory. dh may be any multiple of 8 up to 128 (a dh that is not a
 * multiple of 16 is zero-padded for Q K^T). team.smem must be 16-byte
 * aligned. */
#ifndef MMF_ATTN_CAUSAL_CUH
#define MMF_ATTN_CAUSAL_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "mmf_kernels.h"
#include "team.cuh"

struct attn_causal_params {
	const void *qkv;	/* [batch][tokens][3 * width] */
	void *out;		/* [batch][tokens][width], not overlapping qkv */
	int batch, tokens, width, heads;
};

constexpr int ATTN_CAUSAL_TEAM = 64;	/* two warps */
constexpr int ATTN_CAUSAL_ROWS = 32;	/* query rows a tile, 16 a warp */
constexpr int ATTN_CAUSAL_MAX_TOKENS = 128;
constexpr int ATTN_CAUSAL_MAX_DH = 128;
/* The small size (attn_causal_small): CLIP's T = 77, dh = 64. */
constexpr int ATTN_CAUSAL_SMALL_TOKENS = 80;
constexpr int ATTN_CAUSAL_SMALL_DH = 64;

__host__ __device__ static inline int attn_causal_tiles(const attn_causal_params &p)
{
	return p.batch * p.heads * ((p.tokens + ATTN_CAUSAL_ROWS - 1) / ATTN_CAUSAL_ROWS);
}

/* Halves per staged K/V row: dh rounded up to a whole k16 step, plus 8. */
__host__ __device__ static inline int attn_causal_ld(int dh) { return ((dh + 15) & ~15) + 8; }

/* CLIP's shape, T = 77 with dh = 64, fits in 96 registers, which lets 10
 * teams share an SM instead of 8 (batch 64, W 512 on an H200: 22 -> 15 us);
 * anything else up to T = 128, dh = 128 takes 128 registers. */
__host__ __device__ static inline bool attn_causal_small(const attn_causal_params &p)
{
	return p.tokens <= ATTN_CAUSAL_SMALL_TOKENS && p.width / p.heads <= ATTN_CAUSAL_SMALL_DH;
}

/* Halves of one staged K or V buffer: round16(T) rows of attn_causal_ld. */
__host__ __device__ static inline int attn_causal_buf_halves(int tokens, int dh)
{
	return ((tokens + 15) & ~15) * attn_causal_ld(dh);
}

/* One buffer, two for the small size (K and V load together). */
__host__ __device__ static inline int attn_causal_smem_bytes(const attn_causal_params &p)
{
	return (attn_causal_small(p) ? 2 : 1) * attn_causal_buf_halves(p.tokens, p.width / p.heads) * (int)sizeof(__half);
}

__device__ __forceinline__ uint32_t attn_causal_saddr(const void *p)
{
	return (uint32_t)__cvta_generic_to_shared(p);
}

/* D += A B for one m16n8k16 step, fp16 inputs, fp32 accumulators. */
__device__ __forceinline__ void attn_causal_mma(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
	asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
	    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
	    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void attn_causal_ldsm_x4(uint32_t r[4], const __half *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
		     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		     : "r"(attn_causal_saddr(p)));
}

__device__ __forceinline__ void attn_causal_ldsm_x4_trans(uint32_t r[4], const __half *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
		     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		     : "r"(attn_causal_saddr(p)));
}

__device__ __forceinline__ void attn_causal_ldsm_x2_trans(uint32_t r[2], const __half *p)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
		     : "=r"(r[0]), "=r"(r[1])
		     : "r"(attn_causal_saddr(p)));
}

/* Starts copying rows [0, rows) of one head's K or V (row r at src + r *
 * stride) into buf, ld halves a row; columns from dh and rows from `valid`
 * on are zero-filled (the cp.async source size 0), so padded keys and
 * padded k16 columns contribute exactly nothing. */
__device__ __forceinline__ void attn_causal_stage(__half *buf, const __half *src, int stride, int rows,
						  int valid, int dh, int ld, const mmf_team &team)
{
	/* (row, chunk) of flat index tid + k*TEAM, stepped without a division */
	const int cpr = (ld - 8) / 8, dr = ATTN_CAUSAL_TEAM / cpr, dc = ATTN_CAUSAL_TEAM - dr * cpr;
	int r = team.tid / cpr, c = team.tid - r * cpr;
	while (r < rows) {
		const bool ok = r < valid && c * 8 < dh;
		const __half *s = ok ? src + r * stride + c * 8 : src;
		asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(attn_causal_saddr(buf + r * ld + c * 8)),
			     "l"(s), "r"(ok ? 16 : 0));
		r += dr, c += dc;
		if (c >= cpr)
			c -= cpr, r++;
	}
}

/* Waits for this thread's copies, then for the team's. */
__device__ __forceinline__ void attn_causal_wait(const mmf_team &team)
{
	asm volatile("cp.async.wait_all;\n" ::: "memory");
	team_sync(team);
}

/* 2^x, flushing results below 2^-126 to 0: probabilities that small do not
 * count against a row maximum of 1. */
__device__ __forceinline__ float attn_causal_exp2(float x)
{
	float y;
	asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
	return y;
}

__device__ __forceinline__ uint32_t attn_causal_pack(float lo, float hi)
{
	__half2 h = __floats2half2_rn(lo, hi);
	return *reinterpret_cast<uint32_t *>(&h);
}

/* The tile for T <= 16*KS and dh <= 16*KK: register arrays are sized by
 * the template, the loops stop at the actual sizes. */
template <int KS, int KK>
__device__ __forceinline__ void attn_causal_tile_fit(const attn_causal_params &p, int tile, const mmf_team &team)
{
	constexpr int ND = 2 * KK;
	/* The small size (attn_causal_small) stages V into a second buffer
	 * together with K, so P V does not wait for a second round trip. */
	constexpr bool KV2 = KS * 16 <= ATTN_CAUSAL_SMALL_TOKENS && KK * 16 <= ATTN_CAUSAL_SMALL_DH;
	const int T = p.tokens, W = p.width, dh = W / p.heads, ld = attn_causal_ld(dh);
	const int nqb = (T + ATTN_CAUSAL_ROWS - 1) / ATTN_CAUSAL_ROWS;
	const int qb = nqb - 1 - tile % nqb;	/* heaviest block first */
	const int h = (tile / nqb) % p.heads, b = tile / nqb / p.heads;
	const int q0 = qb * ATTN_CAUSAL_ROWS, kend = min(T, q0 + ATTN_CAUSAL_ROWS), krows = (kend + 15) & ~15;
	const int stride = 3 * W;	/* a sample is below 2^31 halves: T <= 128, W checked */
	const __half *q = static_cast<const __half *>(p.qkv) + (size_t)b * T * stride + h * dh;
	__half *buf = reinterpret_cast<__half *>(team.smem);
	const int warp = team.tid >> 5, lane = team.tid & 31, g = lane >> 2, c = lane & 3;
	const int w0 = q0 + 16 * warp;	/* this warp's first query row */
	const int r0 = w0 + g, r1 = r0 + 8;	/* the two rows this thread holds */
	/* 16-key steps this warp needs; only the last holds keys past a row */
	const int nks = w0 < T ? w0 / 16 + 1 : 0;
	const int nkk = (dh + 15) / 16, nd = dh / 8;

	__half *vbuf = KV2 ? buf + attn_causal_buf_halves(T, dh) : buf;

	team_sync(team);	/* the previous tile is done with buf (and vbuf) */
	attn_causal_stage(buf, q + W, stride, krows, kend, dh, ld, team);
	if (KV2) {
		asm volatile("cp.async.commit_group;\n" ::: "memory");
		attn_causal_stage(vbuf, q + 2 * W, stride, krows, kend, dh, ld, team);
		asm volatile("cp.async.commit_group;\n" ::: "memory");
	}

	/* A fragments of Q (rows g and g+8, columns 2c.. and 2c+8.. of each
	 * k16 step) while K is in flight. */
	uint32_t qf[KK][4];
#pragma unroll
	for (int kk = 0; kk < KK; kk++) {
		const int col = kk * 16 + 2 * c;
		const bool lo = kk < nkk, hi = kk * 16 + 8 < dh;
		const uint32_t *q0p = reinterpret_cast<const uint32_t *>(q + r0 * stride + col);
		const uint32_t *q1p = reinterpret_cast<const uint32_t *>(q + r1 * stride + col);
		qf[kk][0] = lo && r0 < T ? __ldg(q0p) : 0u;
		qf[kk][1] = lo && r1 < T ? __ldg(q1p) : 0u;
		qf[kk][2] = hi && r0 < T ? __ldg(q0p + 4) : 0u;
		qf[kk][3] = hi && r1 < T ? __ldg(q1p + 4) : 0u;
	}
	if (KV2) {
		asm volatile("cp.async.wait_group 1;\n" ::: "memory");	/* K; V may still be in flight */
		team_sync(team);
	} else {
		attn_causal_wait(team);
	}
	MMF_PROBE_MARK(team, 0);	/* K has landed */

	/* S = Q K^T, 16 keys (two n8 tiles) a step. */
	float s[KS][2][4];
#pragma unroll
	for (int ks = 0; ks < KS; ks++) {
#pragma unroll
		for (int t = 0; t < 2; t++)
#pragma unroll
			for (int e = 0; e < 4; e++)
				s[ks][t][e] = 0.f;
		if (ks < nks) {
			const __half *kp = buf + (ks * 16 + (lane & 7) + ((lane >> 4) << 3)) * ld + ((lane >> 3) & 1) * 8;
#pragma unroll
			for (int kk = 0; kk < KK; kk++)
				if (kk < nkk) {
					uint32_t kf[4];
					attn_causal_ldsm_x4(kf, kp + kk * 16);
					attn_causal_mma(s[ks][0], qf[kk], kf[0], kf[1]);
					attn_causal_mma(s[ks][1], qf[kk], kf[2], kf[3]);
				}
		}
	}

	/* Causal mask (the diagonal step only) and exact softmax over the
	 * registers; a row's values live in the 4 threads of a quad. */
	float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
	for (int ks = 0; ks < KS; ks++)
		if (ks < nks)
#pragma unroll
			for (int t = 0; t < 2; t++) {
				float *v = s[ks][t];
				if (ks == nks - 1) {
					const int key = ks * 16 + t * 8 + 2 * c;
					v[0] = key <= r0 ? v[0] : -INFINITY;
					v[1] = key < r0 ? v[1] : -INFINITY;
					v[2] = key <= r1 ? v[2] : -INFINITY;
					v[3] = key < r1 ? v[3] : -INFINITY;
				}
				m0 = fmaxf(m0, fmaxf(v[0], v[1]));
				m1 = fmaxf(m1, fmaxf(v[2], v[3]));
			}
#pragma unroll
	for (int o = 1; o < 4; o <<= 1) {
		m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, o));
		m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, o));
	}
	/* p = 2^((s - max) * log2(e)/sqrt(dh)); P as A fragments: the
	 * accumulators of two adjacent n8 tiles are exactly the A layout of
	 * one k16 step. */
	const float scale = 1.44269504088896341f * rsqrtf((float)dh), ms0 = m0 * scale, ms1 = m1 * scale;
	float l0 = 0.f, l1 = 0.f;
	uint32_t pf[KS][4];
#pragma unroll
	for (int ks = 0; ks < KS; ks++) {
		pf[ks][0] = pf[ks][1] = pf[ks][2] = pf[ks][3] = 0u;
		if (ks < nks) {
			float e[2][4];
#pragma unroll
			for (int t = 0; t < 2; t++) {
				e[t][0] = attn_causal_exp2(fmaf(s[ks][t][0], scale, -ms0));
				e[t][1] = attn_causal_exp2(fmaf(s[ks][t][1], scale, -ms0));
				e[t][2] = attn_causal_exp2(fmaf(s[ks][t][2], scale, -ms1));
				e[t][3] = attn_causal_exp2(fmaf(s[ks][t][3], scale, -ms1));
				l0 += e[t][0] + e[t][1];
				l1 += e[t][2] + e[t][3];
			}
			pf[ks][0] = attn_causal_pack(e[0][0], e[0][1]);
			pf[ks][1] = attn_causal_pack(e[0][2], e[0][3]);
			pf[ks][2] = attn_causal_pack(e[1][0], e[1][1]);
			pf[ks][3] = attn_causal_pack(e[1][2], e[1][3]);
		}
	}
#pragma unroll
	for (int o = 1; o < 4; o <<= 1) {
		l0 += __shfl_xor_sync(0xffffffffu, l0, o);
		l1 += __shfl_xor_sync(0xffffffffu, l1, o);
	}

	MMF_PROBE_MARK(team, 1);	/* softmax done */
	if (KV2) {
		attn_causal_wait(team);	/* V */
	} else {
		team_sync(team);	/* both warps are done with K */
		attn_causal_stage(buf, q + 2 * W, stride, krows, kend, dh, ld, team);
		attn_causal_wait(team);
	}

	/* O = P V, two n8 column tiles of V a step where dh/8 allows. */
	float o[ND][4];
#pragma unroll
	for (int n = 0; n < ND; n++)
		o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
#pragma unroll
	for (int ks = 0; ks < KS; ks++)
		if (ks < nks) {
			const __half *vp = vbuf + (ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * ld;
#pragma unroll
			for (int n = 0; n < ND; n += 2) {
				if (n + 1 < nd) {
					uint32_t vf[4];
					attn_causal_ldsm_x4_trans(vf, vp + n * 8 + (lane >> 4) * 8);
					attn_causal_mma(o[n], pf[ks], vf[0], vf[1]);
					attn_causal_mma(o[n + 1], pf[ks], vf[2], vf[3]);
				} else if (n < nd) {
					uint32_t vf[2];
					attn_causal_ldsm_x2_trans(vf, vp + n * 8);
					attn_causal_mma(o[n], pf[ks], vf[0], vf[1]);
				}
			}
		}

	MMF_PROBE_MARK(team, 2);	/* O = P V done */
	const float i0 = 1.f / l0, i1 = 1.f / l1;
	__half *out = static_cast<__half *>(p.out) + (size_t)b * T * W + h * dh + 2 * c;
#pragma unroll
	for (int n = 0; n < ND; n++)
		if (n < nd) {
			if (r0 < T)
				*reinterpret_cast<__half2 *>(out + (size_t)r0 * W + n * 8) =
					__floats2half2_rn(o[n][0] * i0, o[n][1] * i0);
			if (r1 < T)
				*reinterpret_cast<__half2 *>(out + (size_t)r1 * W + n * 8) =
					__floats2half2_rn(o[n][2] * i1, o[n][3] * i1);
		}
}

/* The team-contract tile, either size. A fused kernel that calls it holds
 * both sizes' registers (128); one that knows attn_causal_small holds can
 * call attn_causal_tile_fit<5, 4> alone. */
__device__ inline void attn_causal_tile(const attn_causal_params &p, int tile, const mmf_team &team)
{
	if (attn_causal_small(p))
		attn_causal_tile_fit<5, 4>(p, tile, team);
	else
		attn_causal_tile_fit<ATTN_CAUSAL_MAX_TOKENS / 16, ATTN_CAUSAL_MAX_DH / 16>(p, tile, team);
}

/* The fp32 SIMT tile, the fp32 baseline of the analysis report: fp32 in,
 * out and math, on the CUDA cores. A tile is (sample, head, block of 16
 * query rows) for a team of four warps, 4 rows a warp: CLIP's 77 tokens
 * give 5 tiles a head, 40 at batch 1 with 8 heads; the last block sees the
 * most keys and is handed out first.
 *  - Q's 16 rows are staged once. K, for the keys the block can see, then
 *    comes through one shared buffer 32 keys at a time: lane l scores key
 *    32c + l of chunk c against the warp's 4 rows at once, per 4 dims one
 *    float4 of K (rows padded to dh + 4 floats, so the 8 lanes of each
 *    shared-memory phase hit distinct banks for any dh % 8 == 0) and 4
 *    broadcast float4s of Q for 16 FMAs. Scores, pre-scaled by
 *    log2(e)/sqrt(dh), go to the row's array in shared memory, -inf past
 *    the diagonal.
 *  - Exact two-pass softmax of each row by its warp (max, then exp2 and
 *    sum, with shuffles); the normalised probabilities go back in place,
 *    zero past the diagonal, so P V needs no mask.
 *  - V then comes through the same buffer, 32 keys at a time: lane l owns
 *    output dims l, l + 32, ... of the warp's 4 rows and reads the p of 4
 *    keys as one broadcast float4 a row.
 * Staging zero-fills rows past the visible keys (past T for Q); rows of a
 * block past T are computed and never stored. Shared memory: 16*dh (Q) +
 * 32*(dh + 4) (one K or V chunk) + 16*round32(T) (scores) floats: 18.5 KB
 * at T = 77, dh = 64, and 32.5 KB at the limits T = 128, dh = 128. The
 * chunks keep that under 48 KB: a whole K is 128 x 132 floats, 66 KB, at
 * the limits, and 32 query rows a tile would take 48.5 KB. team.smem must
 * be 16-byte aligned. */
constexpr int ATTN_CAUSAL_F32_TEAM = 128;	/* four warps */
constexpr int ATTN_CAUSAL_F32_ROWS = 16;	/* query rows a tile */
constexpr int ATTN_CAUSAL_F32_WROWS = ATTN_CAUSAL_F32_ROWS / (ATTN_CAUSAL_F32_TEAM / 32);	/* a warp's rows */
constexpr int ATTN_CAUSAL_F32_KEYS = 32;	/* keys a staged chunk, one a lane */

__host__ __device__ static inline int attn_causal_f32_tiles(const attn_causal_params &p)
{
	return p.batch * p.heads * ((p.tokens + ATTN_CAUSAL_F32_ROWS - 1) / ATTN_CAUSAL_F32_ROWS);
}

__host__ __device__ static inline int attn_causal_f32_smem_bytes(const attn_causal_params &p)
{
	const int dh = p.width / p.heads;
	return (ATTN_CAUSAL_F32_ROWS * dh + ATTN_CAUSAL_F32_KEYS * (dh + 4) +
		ATTN_CAUSAL_F32_ROWS * ((p.tokens + 31) & ~31)) * (int)sizeof(float);
}

/* Copies rows [0, rows) of one head's Q, K or V (row r at src + r *
 * stride, dh floats) into buf, ld floats a row; rows from `valid` on are
 * zeros. */
__device__ __forceinline__ void attn_causal_f32_stage(float *buf, int ld, const float *src, int stride, int rows,
						      int valid, int dh, const mmf_team &team)
{
	const int n4 = dh / 4;
	for (int e = team.tid; e < rows * n4; e += ATTN_CAUSAL_F32_TEAM) {
		const int r = e / n4, c = e - r * n4;
		const float4 v = r < valid ? __ldg(reinterpret_cast<const float4 *>(src + r * stride) + c)
					   : make_float4(0.f, 0.f, 0.f, 0.f);
		*reinterpret_cast<float4 *>(buf + r * ld + 4 * c) = v;
	}
}

__device__ inline void attn_causal_f32_tile(const attn_causal_params &p, int tile, const mmf_team &team)
{
	constexpr int RW = ATTN_CAUSAL_F32_WROWS, KC = ATTN_CAUSAL_F32_KEYS;
	constexpr int ND = ATTN_CAUSAL_MAX_DH / 32;	/* output dims a lane */
	const int T = p.tokens, W = p.width, dh = W / p.heads, ldk = dh + 4, lds = (T + 31) & ~31;
	const int nqb = (T + ATTN_CAUSAL_F32_ROWS - 1) / ATTN_CAUSAL_F32_ROWS;
	const int qb = nqb - 1 - tile % nqb;	/* heaviest block first */
	const int h = (tile / nqb) % p.heads, b = tile / nqb / p.heads;
	const int q0 = qb * ATTN_CAUSAL_F32_ROWS, kend = min(T, q0 + ATTN_CAUSAL_F32_ROWS);
	const int nch = (kend + KC - 1) / KC;
	const int stride = 3 * W;	/* a sample is below 2^31 floats: T <= 128, W checked */
	const float *q = static_cast<const float *>(p.qkv) + (size_t)b * T * stride + h * dh;
	const int warp = team.tid >> 5, lane = team.tid & 31;
	const int r0 = q0 + RW * warp, nrows = min(RW, T - r0);	/* this warp's rows (nrows may be <= 0) */
	const int wend = nrows > 0 ? r0 + nrows : 0;	/* keys the warp needs: j < wend */
	const int nk = (wend + 3) & ~3;	/* keys P V reads, 4 at a time */
	float *qs = reinterpret_cast<float *>(team.smem);	/* [16][dh] */
	float *kv = qs + ATTN_CAUSAL_F32_ROWS * dh;	/* [32][ldk]: one chunk of K or V */
	float *sw = kv + KC * ldk + RW * warp * lds;	/* the warp's rows of [16][lds] scores */
	const float *qw = qs + RW * warp * dh;
	const float scale = 1.44269504088896341f * rsqrtf((float)dh);

	team_sync(team);	/* the previous tile is done with shared memory */
	attn_causal_f32_stage(qs, dh, q + q0 * stride, stride, ATTN_CAUSAL_F32_ROWS, T - q0, dh, team);
	for (int c = 0; c < nch; c++) {
		if (c > 0)
			team_sync(team);	/* every warp is done with the previous chunk */
		attn_causal_f32_stage(kv, ldk, q + W + c * KC * stride, stride, KC, kend - c * KC, dh, team);
		team_sync(team);
		if (c * KC >= wend)
			continue;
		float acc[RW];
#pragma unroll
		for (int r = 0; r < RW; r++)
			acc[r] = 0.f;
		const float *kr = kv + lane * ldk;
		/* Not unrolled: unrolled 2 or 4 times, this loop spills
		 * at the 72 registers of 7 teams an SM. */
#pragma unroll 1
		for (int d = 0; d < dh; d += 4) {
			const float4 k4 = *reinterpret_cast<const float4 *>(kr + d);
#pragma unroll
			for (int r = 0; r < RW; r++) {
				const float4 q4 = *reinterpret_cast<const float4 *>(qw + r * dh + d);
				acc[r] = fmaf(q4.w, k4.w, fmaf(q4.z, k4.z, fmaf(q4.y, k4.y, fmaf(q4.x, k4.x, acc[r]))));
			}
		}
		const int j = c * KC + lane;
#pragma unroll
		for (int r = 0; r < RW; r++)
			sw[r * lds + j] = j <= r0 + r ? acc[r] * scale : -INFINITY;
	}

	/* Each lane reads and writes only its own keys j = lane + 32k here. */
#pragma unroll
	for (int r = 0; r < RW; r++) {
		if (r < nrows) {
			float *sr = sw + r * lds;
			const int i = r0 + r;
			float m = -INFINITY, l = 0.f;
			for (int j = lane; j <= i; j += 32)
				m = fmaxf(m, sr[j]);
#pragma unroll
			for (int o = 16; o > 0; o >>= 1)
				m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
			for (int j = lane; j < nk; j += 32) {
				const float e = j <= i ? exp2f(sr[j] - m) : 0.f;
				sr[j] = e;
				l += e;
			}
#pragma unroll
			for (int o = 16; o > 0; o >>= 1)
				l += __shfl_xor_sync(0xffffffffu, l, o);
			const float inv = 1.f / l;
			for (int j = lane; j <= i; j += 32)
				sr[j] *= inv;
		}
	}

	float o[RW][ND];
#pragma unroll
	for (int r = 0; r < RW; r++)
#pragma unroll
		for (int n = 0; n < ND; n++)
			o[r][n] = 0.f;
	for (int c = 0; c < nch; c++) {
		team_sync(team);	/* every warp is done with K (the probabilities are written) or the last V chunk */
		attn_causal_f32_stage(kv, ldk, q + 2 * W + c * KC * stride, stride, KC, kend - c * KC, dh, team);
		team_sync(team);
		const int j1 = min(c * KC + KC, nk);
		for (int j = c * KC; j < j1; j += 4) {
			float4 pr[RW];
#pragma unroll
			for (int r = 0; r < RW; r++)
				pr[r] = *reinterpret_cast<const float4 *>(sw + r * lds + j);
			const float *vr = kv + (j - c * KC) * ldk + lane;
#pragma unroll
			for (int n = 0; n < ND; n++)
				if (lane + 32 * n < dh) {
					const float v0 = vr[32 * n], v1 = vr[ldk + 32 * n], v2 = vr[2 * ldk + 32 * n],
						    v3 = vr[3 * ldk + 32 * n];
#pragma unroll
					for (int r = 0; r < RW; r++)
						o[r][n] = fmaf(pr[r].w, v3, fmaf(pr[r].z, v2, fmaf(pr[r].y, v1, fmaf(pr[r].x, v0, o[r][n]))));
				}
		}
	}

	float *out = static_cast<float *>(p.out) + (size_t)b * T * W + h * dh;
#pragma unroll
	for (int r = 0; r < RW; r++)
		if (r < nrows)
#pragma unroll
			for (int n = 0; n < ND; n++)
				if (lane + 32 * n < dh)
					out[(size_t)(r0 + r) * W + lane + 32 * n] = o[r][n];
}

/* Turns an fp16 attn_causal descriptor into its fp32 form (this tile):
 * 0, or -EINVAL for a descriptor that is not a valid attn_causal one. */
extern "C" int mmf_attn_causal_to_f32(mmf_opdesc *d);

#endif
