/* gemv: C[M][N] = act(A . W^T + bias (+ R)) for a few rows (M <= 8), the
 * linears of one row a sample at batch 1 (the attention pool's q and c_proj,
 * the text projection), which stream their weights once and are bound by
 * DRAM latency, not by the tensor cores (the engine's default for fp16
 * models; MMF_GEMV=0 turns it off). W [N][K] fp16, K contiguous; A read
 * through the GEMM's rows map (row m at A + (m/rps)*sstride +
 * (m%rps)*lda); C and R dense [M][N] fp16; bias fp32 [N] or NULL; fp32
 * math.
 *
 * A tile is 8 output columns n (rows of W) for a team of 16 warps: 4 pairs
 * of rows times 4 interleaved quarters of K (warp w takes rows 2*(w%4) and
 * +1 and the 256-value pieces w/4, w/4+4, ...), each lane 16 bytes of both
 * rows a piece plus the M input rows' matching 16 bytes (cached: every
 * warp reads them). Many threads with few loads each, as ptxas keeps only
 * 2-3 loads of a thread in flight (pool_fold.cuh). Each warp sums by
 * shuffles; the quarters are added in order through shared memory (1 KB),
 * so the result has the same bits every run. */
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

constexpr int GEMV_TEAM = 512;
constexpr int GEMV_MAX_M = 8;
constexpr int GEMV_SEGS = 4;	/* interleaved quarters of K */
constexpr int GEMV_COLS = GEMV_TEAM / 32 / GEMV_SEGS * 2;	/* output columns a tile */

__host__ __device__ static inline int gemv_tiles(const gemv_params &p) { return (p.N + GEMV_COLS - 1) / GEMV_COLS; }

__host__ __device__ static inline int gemv_smem_bytes(const gemv_params &)
{
	return GEMV_SEGS * GEMV_COLS * GEMV_MAX_M * (int)sizeof(float);
}

__device__ inline void gemv_tile(const gemv_params &p, int tile, const mmf_team &team)
{
	constexpr int PAIRS = GEMV_COLS / 2;
	const int lane = team.tid & 31, warp = team.tid >> 5, pair = warp % PAIRS, seg = warp / PAIRS;
	const int n0 = tile * GEMV_COLS + pair * 2;
	const int n1 = n0 + 1 < p.N ? n0 + 1 : n0;
	float *part = reinterpret_cast<float *>(team.smem);	/* [seg][column][m] */
	float acc[GEMV_MAX_M][2];
#pragma unroll
	for (int m = 0; m < GEMV_MAX_M; m++)
		acc[m][0] = acc[m][1] = 0.f;
	team_sync(team);	/* the previous tile has read part */
	if (n0 < p.N) {
		const __half *w0 = static_cast<const __half *>(p.W) + (size_t)n0 * p.K;
		const __half *w1 = static_cast<const __half *>(p.W) + (size_t)n1 * p.K;
		const __half *A = static_cast<const __half *>(p.A);
		for (int k = (seg * 32 + lane) * 8; k < p.K; k += GEMV_SEGS * 256) {
			const uint4 r0 = __ldg(reinterpret_cast<const uint4 *>(w0 + k));
			const uint4 r1 = __ldg(reinterpret_cast<const uint4 *>(w1 + k));
			float f0[8], f1[8];
			mmf_unpack8(r0, f0);
			mmf_unpack8(r1, f1);
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
	}
#pragma unroll
	for (int m = 0; m < GEMV_MAX_M; m++) {
		if (m >= p.M)
			break;
#pragma unroll
		for (int j = 0; j < 2; j++) {
			const float v = mmf_warp_sum(acc[m][j]);
			if (lane == 0)
				part[(seg * GEMV_COLS + pair * 2 + j) * GEMV_MAX_M + m] = v;
		}
	}
	team_sync(team);
	/* One thread an output: the quarters in order, then the epilogue. */
	if (team.tid < GEMV_COLS * p.M) {
		const int col = team.tid / p.M, m = team.tid - col * p.M, n = tile * GEMV_COLS + col;
		if (n < p.N) {
			float v = 0.f;
			for (int sg = 0; sg < GEMV_SEGS; sg++)
				v += part[(sg * GEMV_COLS + col) * GEMV_MAX_M + m];
			v += p.bias ? p.bias[n] : 0.f;
			if (p.R)
				v += __half2float(static_cast<const __half *>(p.R)[(size_t)m * p.N + n]);
			static_cast<__half *>(p.C)[(size_t)m * p.N + n] = __float2half_rn(gemm_act(p.act, v));
		}
	}
}

#endif
