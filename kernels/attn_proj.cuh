/* attn_proj: the text tower's causal attention and the out_proj linear
 * after it (+ bias + residual) in one kernel, for batch-1 latency: one
 * launch and one round trip of the attention's output fewer per layer.
 * sm_90 and later (thread-block clusters); plain launches only.
 *
 * A cluster is the `heads` blocks of one (sample, block of 32 query rows);
 * block h of it:
 *  1. starts copying rows h*dh..h*dh+dh-1 of Wo (the out_proj weight,
 *     [width][width]: the output columns this block will write) into
 *     shared memory with cp.async (warps 2-3), while
 *  2. warps 0-1 run the attention tile of head h (attn_causal.cuh, the
 *     small size) into shared memory: O_h, 32 rows x dh, fp16, as the
 *     plain attention writes it to global memory;
 *  3. after a cluster barrier, every block copies the other heads' O from
 *     their shared memory (DSMEM, 16-byte loads) beside its own: A, the
 *     32 x width attention output of its rows;
 *  4. then out[rows][h*dh..] = A Wo_h^T + bias + residual on the tensor
 *     cores (mma.sync m16n8k16, ldmatrix; 4 warps, 16 rows x 32 columns
 *     each), K in order, fp32 accumulation, fp16 out.
 * The attention's O is rounded to fp16 exactly as the two-op path rounds
 * it; the linear sums its K in another order than the GEMM tiles (no
 * split-K), so the two paths agree to rounding, not bitwise.
 *
 * Shapes: the attention's small size (tokens <= 80), dh = 64, heads <= 8
 * (a portable cluster). Shared memory per block: max(attention buffers,
 * A) + O_h + Wo_h = 33 + 4.5 + 66.5 KB at width 512, so two blocks an SM.
 * Where a stream's SMs cannot hold such a cluster (mmf_attn_proj_launch
 * asks once per stream), the same result comes from two launches: the
 * plain attention into `scratch`, then attn_proj_split_kernel (steps 1, 3
 * from global memory, and 4). */
#ifndef MMF_ATTN_PROJ_CUH
#define MMF_ATTN_PROJ_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "attn_causal.cuh"
#include "team.cuh"

struct attn_proj_params {
	attn_causal_params a;	/* a.out: scratch for the two-launch form */
	const void *wo;		/* [width][width] fp16, row n = output feature n */
	const float *bias;	/* [width] or NULL */
	const void *res;	/* [batch][tokens][width] fp16 or NULL */
	void *out;		/* [batch][tokens][width] fp16 */
};

constexpr int ATTN_PROJ_THREADS = 128;
constexpr int ATTN_PROJ_DH = 64;
constexpr int ATTN_PROJ_MAX_HEADS = 8;

__host__ __device__ static inline int attn_proj_ld(int width) { return width + 8; }	/* halves a staged row */

__host__ __device__ static inline int attn_proj_qblocks(const attn_proj_params &p)
{
	return (p.a.tokens + ATTN_CAUSAL_ROWS - 1) / ATTN_CAUSAL_ROWS;
}

/* Blocks: (sample, row block, head). */
__host__ __device__ static inline int attn_proj_blocks(const attn_proj_params &p)
{
	return p.a.batch * attn_proj_qblocks(p) * p.a.heads;
}

/* Byte offsets of the shared-memory regions: the attention's buffers,
 * later A (the region both take); O_h; Wo_h. */
__host__ __device__ static inline int attn_proj_a_bytes(const attn_proj_params &p)
{
	const int att = attn_causal_smem_bytes(p.a), a = ATTN_CAUSAL_ROWS * attn_proj_ld(p.a.width) * 2;
	return ((att > a ? att : a) + 15) & ~15;
}
__host__ __device__ static inline int attn_proj_o_bytes() { return ATTN_CAUSAL_ROWS * (ATTN_PROJ_DH + 8) * 2; }
__host__ __device__ static inline int attn_proj_w_bytes(const attn_proj_params &p)
{
	return ATTN_PROJ_DH * attn_proj_ld(p.a.width) * 2;
}
__host__ __device__ static inline int attn_proj_smem_bytes(const attn_proj_params &p)
{
	return attn_proj_a_bytes(p) + attn_proj_o_bytes() + attn_proj_w_bytes(p);
}

/* One 16-byte cp.async, zero-filled when !ok. */
__device__ __forceinline__ void attn_proj_cp16(void *dst, const void *src, bool ok)
{
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(attn_causal_saddr(dst)), "l"(src),
		     "r"(ok ? 16 : 0));
}

/* Starts copying Wo rows h*dh.. (all width columns) into w, by threads
 * tid of n (16-byte chunks, row-major: coalesced). */
__device__ __forceinline__ void attn_proj_stage_w(const attn_proj_params &p, int h, __half *w, int tid, int n)
{
	const int W = p.a.width, cpr = W / 8, ld = attn_proj_ld(W);
	const __half *src = static_cast<const __half *>(p.wo) + (size_t)h * ATTN_PROJ_DH * W;
	for (int i = tid; i < ATTN_PROJ_DH * cpr; i += n) {
		const int r = i / cpr, c = i - r * cpr;
		attn_proj_cp16(w + r * ld + c * 8, src + (size_t)r * W + c * 8, true);
	}
	asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Step 4: warp `warp` of 4 computes rows 16*(warp&1).. and columns
 * 32*(warp>>1).. of the block's 32 x dh output tile from A (32 rows of
 * width, ld attn_proj_ld) and Wo_h, then adds bias and residual and
 * stores the rows below T. */
__device__ __forceinline__ void attn_proj_gemm(const attn_proj_params &p, int b, int q0, int h, const __half *a,
					       const __half *w, int warp, int lane)
{
	const int W = p.a.width, T = p.a.tokens, ld = attn_proj_ld(W);
	const int wr = warp & 1, wc = warp >> 1, g = lane >> 2, c = lane & 3;
	float acc[4][4];
#pragma unroll
	for (int n = 0; n < 4; n++)
		acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
	const __half *ap = a + (wr * 16 + (lane & 15)) * ld + (lane >> 4) * 8;
	const __half *bp = w + (wc * 32 + (lane & 7) + ((lane >> 4) << 3)) * ld + ((lane >> 3) & 1) * 8;
	for (int k = 0; k < W; k += 16) {
		uint32_t af[4], b0[4], b1[4];
		attn_causal_ldsm_x4(af, ap + k);
		attn_causal_ldsm_x4(b0, bp + k);
		attn_causal_ldsm_x4(b1, bp + 16 * ld + k);
		attn_causal_mma(acc[0], af, b0[0], b0[1]);
		attn_causal_mma(acc[1], af, b0[2], b0[3]);
		attn_causal_mma(acc[2], af, b1[0], b1[1]);
		attn_causal_mma(acc[3], af, b1[2], b1[3]);
	}
	const int r0 = q0 + wr * 16 + g, r1 = r0 + 8;
	const __half *res = static_cast<const __half *>(p.res);
	__half *out = static_cast<__half *>(p.out);
#pragma unroll
	for (int n = 0; n < 4; n++) {
		const int col = h * ATTN_PROJ_DH + wc * 32 + n * 8 + 2 * c;
		const float bx = p.bias ? p.bias[col] : 0.f, by = p.bias ? p.bias[col + 1] : 0.f;
#pragma unroll
		for (int half = 0; half < 2; half++) {
			const int r = half ? r1 : r0;
			if (r >= T)
				continue;
			const size_t off = ((size_t)b * T + r) * W + col;
			float x = acc[n][2 * half] + bx, y = acc[n][2 * half + 1] + by;
			if (res) {
				const float2 rv = __half22float2(*reinterpret_cast<const __half2 *>(res + off));
				x += rv.x, y += rv.y;
			}
			*reinterpret_cast<__half2 *>(out + off) = __floats2half2_rn(x, y);
		}
	}
}

#endif
