/* gemv: C[M][N] = act(A . W^T + bias (+ R)) for a few rows (M <= 8), the
 * linears of one row a sample at batch 1 (the attention pool's q and c_proj,
 * the text projection), which stream their weights once and are bound by
 * DRAM latency, not by the tensor cores (experimental: the engine uses it
 * with MMF_GEMV=1). W [N][K] fp16, K contiguous; A read through the GEMM's
 * rows map (row m at A + (m/rps)*sstride + (m%rps)*lda); C and R dense
 * [M][N] fp16; bias fp32 [N] or NULL; fp32 math.
 *
 * A tile is 8 output columns n (rows of W) for a team of 4 warps, 2 a warp:
 * each lane reads 16 bytes of both weight rows per 256 k-values, 4 such
 * steps unrolled (8 loads of W in flight a lane), and the M input rows'
 * matching 16 bytes (cached: every warp reads them), then the warp sums by
 * shuffles. No shared memory, no barrier. */
#ifndef MMF_GEMV_CUH
#define MMF_GEMV_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "gemm.cuh"
#include "team.cuh"

struct gemv_params {
	const void *A, *W, *R;
	const float *bias;
	void *C;
	int M, N, K, act;
	int rps, lda;
	long long sstride;
};

constexpr int GEMV_TEAM = 128;
constexpr int GEMV_MAX_M = 8;
constexpr int GEMV_COLS = GEMV_TEAM / 32 * 2;	/* output columns a tile */

__host__ __device__ static inline int gemv_tiles(const gemv_params &p) { return (p.N + GEMV_COLS - 1) / GEMV_COLS; }

__host__ __device__ static inline int gemv_smem_bytes(const gemv_params &) { return 0; }

__device__ inline void gemv_tile(const gemv_params &p, int tile, const mmf_team &team)
{
	const int lane = team.tid & 31, warp = team.tid >> 5;
	const int n0 = tile * GEMV_COLS + warp * 2;
	if (n0 >= p.N)
		return;
	const int n1 = n0 + 1 < p.N ? n0 + 1 : n0;
	const __half *w0 = static_cast<const __half *>(p.W) + (size_t)n0 * p.K;
	const __half *w1 = static_cast<const __half *>(p.W) + (size_t)n1 * p.K;
	const __half *A = static_cast<const __half *>(p.A);
	float acc[GEMV_MAX_M][2];
#pragma unroll
	for (int m = 0; m < GEMV_MAX_M; m++)
		acc[m][0] = acc[m][1] = 0.f;
#pragma unroll 4
	for (int k = lane * 8; k < p.K; k += 256) {
		float f0[8], f1[8];
		mmf_ldg8(w0 + k, f0);
		mmf_ldg8(w1 + k, f1);
#pragma unroll
		for (int m = 0; m < GEMV_MAX_M; m++) {
			if (m >= p.M)
				break;
			float a[8];
			mmf_ldg8(A + (long long)(m / p.rps) * p.sstride + (long long)(m % p.rps) * p.lda + k, a);
#pragma unroll
			for (int i = 0; i < 8; i++) {
				acc[m][0] = fmaf(a[i], f0[i], acc[m][0]);
				acc[m][1] = fmaf(a[i], f1[i], acc[m][1]);
			}
		}
	}
#pragma unroll
	for (int m = 0; m < GEMV_MAX_M; m++) {
		if (m >= p.M)
			break;
#pragma unroll
		for (int j = 0; j < 2; j++) {
			float v = acc[m][j];
#pragma unroll
			for (int o = 16; o; o >>= 1)
				v += __shfl_xor_sync(0xffffffffu, v, o);
			const int n = j ? n1 : n0;
			if (lane == m * 2 + j && (j == 0 || n1 != n0)) {
				v += p.bias ? p.bias[n] : 0.f;
				if (p.R)
					v += __half2float(static_cast<const __half *>(p.R)[(size_t)m * p.N + n]);
				static_cast<__half *>(p.C)[(size_t)m * p.N + n] = __float2half_rn(gemm_act(p.act, v));
			}
		}
	}
}

#endif
