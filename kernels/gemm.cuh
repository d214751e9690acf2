/* gemm: C[M][N] = act(A[M][K] . B[N][K]^T + bias[N] (+ R[M][N])) on tensor
 * cores (mma.sync m16n8k16, fp16 in, fp32 accumulate), for both the
 * convolutions (implicit GEMM) and the linears of the two towers.
 *
 * Layouts. B is a weight matrix [N][K], K contiguous: a linear's [out][in] or
 * a convolution's OHWI filter flattened to [cout][kh*kw*cin]. C and R are
 * dense [M][N] (NHWC for convolutions, [rows][features] for linears). A is
 * read through one of two address maps:
 *   - rows:  row m of sample s = m / rps at A + s*sstride + (m % rps)*lda,
 *            which covers dense rows and the attention pool's "token 0 of
 *            every sample" (rps = 1, sstride = tokens*C);
 *   - conv:  row m is output pixel (s, oy, ox) of an NHWC input, column k is
 *            (ky, kx, ci); out-of-image taps read as zero.
 * Both need K % 8 == 0 and 16-byte aligned rows, so that every 16-byte chunk
 * of 8 k-values is one cp.async (the stem's 3 input channels are padded to 8
 * by the engine).
 *
 * Shape. A tile is BM x BN of C; a team of WM x WN warps computes it, each
 * warp a (BM/WM) x (BN/WN) block of m16n8 fragments. The K loop is a
 * STAGES-deep cp.async pipeline of BK=32 slices; ldmatrix feeds the
 * fragments from shared rows padded by 16 bytes, which makes both the
 * 16-byte cp.async stores and the ldmatrix reads bank-conflict free. The
 * epilogue adds bias (fp32), the residual, applies the activation and
 * stores fp16 pairs.
 *
 * INT8 weights (gemm_tile<Cfg, true>, bscale set). B holds int8 weights
 * with one fp32 scale per output channel n, packed by mmf_gemm_pack_int8():
 * rows of ldb = K rounded up to 32 bytes, each byte q + 128, and within
 * every 32-byte k-slice the bytes ordered so that lane l of a warp finds
 * its m16n8k16 B fragments for both k16 halves at bytes 8*(l%4)..+7 (k =
 * 2t, 2t+1, 2t+8, 2t+9, then the same + 16, for t = l%4). The loader
 * copies 8-byte chunks (half the bytes of fp16) into 32-byte shared rows;
 * each lane reads its 8 bytes with one conflict-free 64-bit load per n8
 * fragment and k-slice and widens them to fp16 exactly (|q| <= 128) with
 * four byte permutes and four HSUB2. The accumulators hold A . q^T; the
 * epilogue multiplies by bscale[n] before the bias. Split-K partials are
 * unscaled, so the reduction is unchanged.
 *
 * Split-K. Small-M GEMMs (batch-1 layer4 convolutions: 49 rows; the text
 * tower: 77) have too few output tiles to fill the SMs, so the K loop can be
 * split: tile t*splits+s accumulates k-slices [s*KT/splits, (s+1)*KT/splits)
 * and writes its fp32 partial to a workspace; the block that takes the last
 * ticket of that output tile (an atomic counter) sums the partials in split
 * order 0..splits-1, whichever block finished first, so results do not
 * depend on timing, and applies the epilogue; it then resets the counter
 * for the next launch (and for graph replays). On sm_90+ a plain launch
 * (mmf_set_cluster) instead runs the splits of each output tile as one
 * thread-block cluster that sums the partials over distributed shared
 * memory, in the same order (gemm_cluster_reduce). All synchronisation is team_sync() on the team's
 * barrier, and shared memory is the team's slice, so a tile can run beside
 * another op's tile in one block (fusion). */
#ifndef MMF_GEMM_CUH
#define MMF_GEMM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

enum { GEMM_ACT_NONE = 0, GEMM_ACT_RELU = 1, GEMM_ACT_QUICKGELU = 2, GEMM_ACT_GELU = 3 };
enum { GEMM_A_ROWS = 0, GEMM_A_CONV = 1 };

struct gemm_params {
	const void *A, *B, *R;	/* fp16, or fp32 for the SIMT tile (B: int8 with bscale) */
	const float *bias;	/* [N] or NULL */
	void *C;
	int M, N, K;
	int amode;
	/* GEMM_A_ROWS */
	int rps, lda;
	long long sstride;
	/* GEMM_A_CONV: input H x W x Cin, filter kh x kw, output OH x OW */
	int H, W, Cin, kh, kw, stride, pad, OH, OW;
	int act;
	int splits;		/* >= 1 */
	float *ws;		/* splits > 1: tiles*splits*BM*BN floats */
	int *counters;		/* splits > 1: one per output tile, zero between launches */
	/* Non-NULL: B holds int8 weights (symmetric, per output channel),
	 * packed (mmf_gemm_pack_int8, rows of ldb bytes), and
	 * C = act(bscale[n] * (A . q^T) + bias + R): the main loop widens the
	 * int8 values to fp16 in registers (exact) and the scale is applied
	 * once, in the epilogue. */
	const float *bscale;
	int ldb;
	/* splits > 1, set by the plain launcher only (never in a fused
	 * descriptor): the launch runs in clusters of `splits` blocks, one
	 * per split of an output tile, one tile per block, and the partials
	 * are summed through distributed shared memory (sm_90+) instead of
	 * ws and counters. */
	int cluster;
};

#define GEMM_BK 32
#define GEMM_LDS (GEMM_BK + 8)	/* padded row, in halves */
#define GEMM_LDSQ GEMM_BK	/* int8 B: a shared row of one k-slice, in bytes (packed: see below) */

template <int BM_, int BN_, int WM_, int WN_, int STAGES_>
struct gemm_cfg {
	static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, STAGES = STAGES_;
	static constexpr int THREADS = WM * WN * 32;
	static constexpr int MI = BM / WM / 16, NI = BN / WN / 8;
	static constexpr int SMEM = STAGES * (BM + BN) * GEMM_LDS * 2;
	/* Double-buffered fragments (gemm_tile) for the S, W and N tiles. Not
	 * L (126 -> 170 registers: one block an SM instead of two, 8 SMs 11%
	 * slower) nor M (92 -> 118: four blocks an SM instead of five; the
	 * image tower at 8 SMs 1.6% slower, the whole GPU the same). */
	static constexpr bool FRAG2 = !(BM == 128 && BN == 128) && !(BM == 64 && BN == 64);
	static_assert(BM % (WM * 16) == 0 && BN % (WN * 16) == 0, "warp tile must be whole m16 x n16 blocks");
	static_assert(MI * NI * 4 * THREADS * 4 <= SMEM, "split-K through the cluster keeps a tile's partials in shared memory");
};

/* The configurations the engine chooses from (see gemm.cu): large square
 * tiles for big GEMMs, tall ones for the narrow early convolutions (N = 32
 * or 64 over thousands of pixels), small ones for few-row GEMMs. Stages:
 * L and W went from 3 to 4 (H100, 8 SMs: image tower -2.5%, both towers
 * -1.5%); 5 for L, M at 5, S at 8 and N at 5 measured no better
 * (bench/results/gemm-stages-h100-2026-11-26.json). At 4 stages two L or
 * W blocks still fit an Orin SM (164 KB). */
typedef gemm_cfg<128, 128, 2, 4, 4> gemm_cfg_l;	/* 256 threads, 80 KB */
typedef gemm_cfg<64, 64, 2, 2, 4> gemm_cfg_m;	/* 128 threads, 40 KB */
typedef gemm_cfg<32, 64, 1, 4, 6> gemm_cfg_s;	/* 128 threads, 46 KB: deep, few rows */
typedef gemm_cfg<128, 64, 4, 2, 4> gemm_cfg_w;	/* 256 threads, 60 KB */
typedef gemm_cfg<128, 32, 4, 1, 4> gemm_cfg_n;	/* 128 threads, 50 KB */

template <class Cfg>
__host__ __device__ inline int gemm_tiles(const gemm_params &p)
{
	return ((p.M + Cfg::BM - 1) / Cfg::BM) * ((p.N + Cfg::BN - 1) / Cfg::BN) * p.splits;
}

__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
	return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, bool valid)
{
	int n = valid ? 16 : 0;	/* src-size 0 fills the 16 bytes with zeros */
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
/* 8-byte copy (int8 weights: 8 k-values; rows are only 8-byte aligned). */
__device__ __forceinline__ void cp_async8(uint32_t dst, const void *src, bool valid)
{
	int n = valid ? 8 : 0;
	asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}

/* Two biased int8 bytes of v (q + 128, selected by sel: 0x4140 bytes 0-1,
 * 0x4342 bytes 2-3) to an fp16 pair, exactly: the byte becomes the low
 * mantissa bits of 1024.0 (0x6400) and 1152 = 1024 + 128 is subtracted
 * back. One byte permute and one HSUB2 instead of two integer-to-float
 * conversions. */
template <int SEL>
__device__ __forceinline__ uint32_t u8x2_to_h2(uint32_t v)
{
	uint32_t x = __byte_perm(v, 0x64646464u, SEL);
	__half2 h = __hsub2(*reinterpret_cast<__half2 *>(&x), __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480)));
	return *reinterpret_cast<uint32_t *>(&h);
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3)
{
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
		     : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
		     : "r"(addr));
}

__device__ __forceinline__ void mma16816(float *d, const uint32_t *a, uint32_t b0, uint32_t b1)
{
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
		     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
		     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float gemm_act(int act, float x)
{
	switch (act) {
	case GEMM_ACT_RELU: return fmaxf(x, 0.f);
	case GEMM_ACT_QUICKGELU: return x / (1.f + __expf(-1.702f * x));
	case GEMM_ACT_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
	default: return x;
	}
}

/* Where a thread's A rows start: for the rows map a pointer, for the conv
 * map the sample's input base and the top-left input coordinate, plus the
 * (ky, kx, ci) of the thread's current k, advanced by BK per k-slice without
 * divisions (the loader would otherwise be bound by integer arithmetic). */
template <typename T>
struct gemm_arow {
	const T *base;
	int iy, ix;	/* conv only */
	int ky, kx, ci;	/* conv only: tap and channel of the current k */
	bool valid;
};

template <typename T>
__device__ __forceinline__ gemm_arow<T> gemm_a_row(const gemm_params &p, int m)
{
	gemm_arow<T> r;
	const T *A = static_cast<const T *>(p.A);
	r.valid = m < p.M;
	if (!r.valid)
		m = 0;
	if (p.amode == GEMM_A_ROWS) {
		r.base = A + (long long)(m / p.rps) * p.sstride + (long long)(m % p.rps) * p.lda;
		r.iy = r.ix = 0;
	} else {
		int hw = p.OH * p.OW, s = m / hw, rem = m - s * hw, oy = rem / p.OW, ox = rem - oy * p.OW;
		r.base = A + (long long)s * p.H * p.W * p.Cin;
		r.iy = oy * p.stride - p.pad;
		r.ix = ox * p.stride - p.pad;
	}
	return r;
}

/* Sets the conv tap state for k (one division, at the start of a K range). */
template <typename T>
__device__ __forceinline__ void gemm_a_seek(const gemm_params &p, gemm_arow<T> &r, int k)
{
	if (p.amode != GEMM_A_CONV)
		return;
	int tap = k / p.Cin;
	r.ci = k - tap * p.Cin;
	r.ky = tap / p.kw;
	r.kx = tap - r.ky * p.kw;
}

/* Moves the conv tap state on by one k-slice of BK values. */
template <int BK, typename T>
__device__ __forceinline__ void gemm_a_step(const gemm_params &p, gemm_arow<T> &r)
{
	if (p.amode != GEMM_A_CONV)
		return;
	r.ci += BK;
	while (r.ci >= p.Cin) {
		r.ci -= p.Cin;
		if (++r.kx == p.kw) {
			r.kx = 0;
			r.ky++;
		}
	}
}

/* Global address of the A values at (row, k..k+7), or NULL for zeros. */
template <typename T>
__device__ __forceinline__ const T *gemm_a_src(const gemm_params &p, const gemm_arow<T> &r, int k)
{
	if (!r.valid || k >= p.K)
		return nullptr;
	if (p.amode == GEMM_A_ROWS)
		return r.base + k;
	int y = r.iy + r.ky, x = r.ix + r.kx;
	if (y < 0 || y >= p.H || x < 0 || x >= p.W)
		return nullptr;
	return r.base + ((long long)y * p.W + x) * p.Cin + r.ci;
}

/* Split-K (splits > 1): stores this tile's E fp32 partials per thread
 * (acc, in register order: element e of thread tid at e*THREADS + tid,
 * coalesced), and returns whether this block took the output tile's last
 * ticket; that block then holds in acc the sum of all splits' partials, in
 * split order 0..splits-1 whichever finished first, and resets the counter.
 * Every thread of the team must call it. */
template <int E, int THREADS>
__device__ __forceinline__ bool gemm_split_reduce(const gemm_params &p, int tile, int mn, const mmf_team &team, float *acc)
{
	const int tid = team.tid;
	float *part = p.ws + (size_t)tile * E * THREADS;
#pragma unroll
	for (int e = 0; e < E; e++)
		__stcg(part + e * THREADS + tid, acc[e]);
	__threadfence();
	team_sync(team);
	int *flag = reinterpret_cast<int *>(team.smem);
	if (tid == 0)
		*flag = atomicAdd(p.counters + mn, 1) == p.splits - 1;
	team_sync(team);
	int last = *flag;
	team_sync(team);	/* the flag's bytes are the next tile's stage 0 */
	if (!last)
		return false;
	__threadfence();
	const float *all = p.ws + (size_t)mn * p.splits * E * THREADS;
	/* Split-major: every load of one split is independent, so a thread
	 * has E loads in flight, not one. */
#pragma unroll
	for (int e = 0; e < E; e++)
		acc[e] = 0.f;
	for (int sp = 0; sp < p.splits; sp++) {
		const float *ps = all + (size_t)sp * E * THREADS + tid;
#pragma unroll
		for (int e = 0; e < E; e++)
			acc[e] += __ldcg(ps + e * THREADS);
	}
	if (tid == 0)
		p.counters[mn] = 0;
	return true;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
/* Split-K through the cluster (p.cluster; sm_90+): the `splits` blocks of
 * one output tile form a cluster, block `split` holding split `split`'s
 * partial. Each block stores its E partials per thread in its own shared
 * memory as pairs (pair q of thread tid at q*THREADS + tid: one 8-byte
 * access per pair, conflict free), and after the cluster barrier sums a
 * share of the tile, the pairs [*pair0, *pair1) of every thread, over the splits' shared memory in
 * split order 0..splits-1 from 0.f: the same additions, in the same order,
 * as gemm_split_reduce, so both paths give the same bits. Its epilogue
 * then writes only those pairs: the reduction and the epilogue's loads and
 * stores are spread over the cluster's blocks instead of one block
 * reading every split's partial back from L2 after a fence and a ticket.
 * The block then signals that it has finished reading its peers; it must
 * call mmf_cluster_wait() before it exits (its own shared memory is being
 * read until every peer has arrived). Every thread of the block calls it. */
template <int E, int THREADS>
__device__ __forceinline__ void gemm_cluster_reduce(const gemm_params &p, int split, const mmf_team &team, float *acc,
						    int *pair0, int *pair1)
{
	constexpr int PAIRS = E / 2;
	const int tid = team.tid;
	float2 *mine = reinterpret_cast<float2 *>(team.smem);	/* pair q of thread tid at q*THREADS + tid */
	/* The last k step's ldmatrix reads of the stages finish first. */
	team_sync(team);
#pragma unroll
	for (int q = 0; q < PAIRS; q++)
		mine[q * THREADS + tid] = make_float2(acc[2 * q], acc[2 * q + 1]);
	mmf_cluster_sync();
	const int p0 = split * PAIRS / p.splits, p1 = (split + 1) * PAIRS / p.splits;
	/* A runtime loop over this block's pairs: the sums go back to this
	 * block's own slots of those pairs (the peers read only theirs) and
	 * are loaded into acc afterwards. */
	const uint32_t own = smem_u32(mine + tid);
	for (int q = p0; q < p1; q++) {
		float2 sum = make_float2(0.f, 0.f);
		for (int sp = 0; sp < p.splits; sp++) {
			float2 v = mmf_dsmem_ld2(mmf_dsmem_map(own + (uint32_t)(q * THREADS * 8), sp));
			sum.x += v.x, sum.y += v.y;
		}
		mine[q * THREADS + tid] = sum;
	}
	/* Every pair, owned or not (the others are unused): acc is dead
	 * during the loop above, which keeps its registers free. */
#pragma unroll
	for (int q = 0; q < PAIRS; q++) {
		float2 sum = mine[q * THREADS + tid];
		acc[2 * q] = sum.x, acc[2 * q + 1] = sum.y;
	}
	mmf_cluster_arrive();
	*pair0 = p0, *pair1 = p1;
}
#endif

/* One output tile (tile = output tile * splits + split). FRAG = false
 * keeps one fragment buffer even where Cfg::FRAG2 says two: the same bits,
 * for the fused kernels (fuse.cu), whose compile time the double-buffered
 * main loops tripled (ptxas, sm_90: 10.4 -> 3.2 minutes without). */
template <class Cfg, bool Q8 = false, bool FRAG = true>
__device__ void gemm_tile(const gemm_params &p, int tile, const mmf_team &team)
{
	constexpr int ES = Q8 ? 1 : 2;	/* bytes per B element */
	constexpr int BM = Cfg::BM, BN = Cfg::BN, STAGES = Cfg::STAGES, MI = Cfg::MI, NI = Cfg::NI;
	constexpr int CHUNKS_A = BM * GEMM_BK / 8, CHUNKS_B = BN * GEMM_BK / 8;
	constexpr int A_PER = (CHUNKS_A + Cfg::THREADS - 1) / Cfg::THREADS;
	constexpr int B_PER = (CHUNKS_B + Cfg::THREADS - 1) / Cfg::THREADS;
	__half *sA = reinterpret_cast<__half *>(team.smem);
	__half *sB = sA + STAGES * BM * GEMM_LDS;
	int8_t *sBq = reinterpret_cast<int8_t *>(sB);	/* Q8: rows of GEMM_LDSQ bytes */

	const int tiles_n = (p.N + BN - 1) / BN;
	const int split = tile % p.splits, mn = tile / p.splits;
	const int m0 = (mn / tiles_n) * BM, n0 = (mn % tiles_n) * BN;
	const int tid = team.tid, warp = tid >> 5, lane = tid & 31;
	const int wm = warp / Cfg::WN, wn = warp % Cfg::WN;

	/* Each thread loads fixed rows (and fixed 8-wide k columns) of the A
	 * and B slices at every k step: resolve the row addresses once. */
	gemm_arow<__half> arow[A_PER];
	int acol[A_PER];
	const char *brow[B_PER];
	int bcol[B_PER];
#pragma unroll
	for (int i = 0; i < A_PER; i++) {
		int c = tid + i * Cfg::THREADS, r = c / (GEMM_BK / 8);
		acol[i] = (c % (GEMM_BK / 8)) * 8;
		arow[i] = gemm_a_row<__half>(p, m0 + r);
		if (c >= CHUNKS_A)
			arow[i].valid = false;
	}
#pragma unroll
	for (int i = 0; i < B_PER; i++) {
		int c = tid + i * Cfg::THREADS, r = c / (GEMM_BK / 8), n = n0 + r;
		bcol[i] = (c % (GEMM_BK / 8)) * 8;
		brow[i] = (c < CHUNKS_B && n < p.N) ? reinterpret_cast<const char *>(p.B) + (long long)n * (Q8 ? p.ldb : p.K) * ES : nullptr;
	}

	auto load_stage = [&](int stage, int k0) {
#pragma unroll
		for (int i = 0; i < A_PER; i++) {
			int c = tid + i * Cfg::THREADS;
			if (c < CHUNKS_A) {
				int r = c / (GEMM_BK / 8);
				const __half *src = gemm_a_src(p, arow[i], k0 + acol[i]);
				cp_async16(smem_u32(sA + (stage * BM + r) * GEMM_LDS + acol[i]), src ? src : p.B, src != nullptr);
				gemm_a_step<GEMM_BK>(p, arow[i]);
			}
		}
#pragma unroll
		for (int i = 0; i < B_PER; i++) {
			int c = tid + i * Cfg::THREADS;
			if (c < CHUNKS_B) {
				int r = c / (GEMM_BK / 8), k = k0 + bcol[i];
				bool ok = brow[i] && k < (Q8 ? p.ldb : p.K);	/* int8 rows are padded to whole slices */
				const void *src = ok ? static_cast<const void *>(brow[i] + (long long)k * ES) : p.B;
				if (Q8)
					cp_async8(smem_u32(sBq + (stage * BN + r) * GEMM_LDSQ + bcol[i]), src, ok);
				else
					cp_async16(smem_u32(sB + (stage * BN + r) * GEMM_LDS + bcol[i]), src, ok);
			}
		}
	};

	float acc[MI][NI][4];
#pragma unroll
	for (int i = 0; i < MI; i++)
#pragma unroll
		for (int j = 0; j < NI; j++)
#pragma unroll
			for (int q = 0; q < 4; q++)
				acc[i][j][q] = 0.f;

	const int KT_ALL = (p.K + GEMM_BK - 1) / GEMM_BK;
	const int kt0 = (int)((long long)KT_ALL * split / p.splits), KT = (int)((long long)KT_ALL * (split + 1) / p.splits) - kt0;
	/* Slices are loaded in order from kt0, so each thread's tap state
	 * starts there and steps by BK. */
#pragma unroll
	for (int i = 0; i < A_PER; i++)
		gemm_a_seek(p, arow[i], kt0 * GEMM_BK + acol[i]);
	/* The previous tile's epilogue may still read nothing from shared
	 * memory, but its last k step's ldmatrix reads must finish before this
	 * tile's first cp.async overwrites stage 0. */
	team_sync(team);
#pragma unroll
	for (int s = 0; s < STAGES - 1; s++) {
		if (s < KT)
			load_stage(s, (kt0 + s) * GEMM_BK);
		cp_async_commit();
	}
	/* Step kk's fragments from a stage's A tile (a) and fp16 B tile (b), and
	 * its MI x NI mma. */
	auto ldm_a = [&](uint32_t (&f)[MI][4], const __half *a, int kk) {
#pragma unroll
		for (int i = 0; i < MI; i++) {
			int row = wm * (BM / Cfg::WM) + i * 16 + (lane & 15), col = kk + (lane >> 4) * 8;
			ldmatrix_x4(smem_u32(a + row * GEMM_LDS + col), f[i][0], f[i][1], f[i][2], f[i][3]);
		}
	};
	auto ldm_b = [&](uint32_t (&f)[NI][2], const __half *b, int kk) {
#pragma unroll
		for (int j = 0; j < NI; j += 2) {
			int mat = lane >> 3, n = wn * (BN / Cfg::WN) + j * 8 + (mat >> 1) * 8 + (lane & 7), col = kk + (mat & 1) * 8;
			ldmatrix_x4(smem_u32(b + n * GEMM_LDS + col), f[j][0], f[j][1], f[j + 1][0], f[j + 1][1]);
		}
	};
	auto mma_step = [&](const uint32_t (&fa)[MI][4], const uint32_t (&fb)[NI][2]) {
#pragma unroll
		for (int i = 0; i < MI; i++)
#pragma unroll
			for (int j = 0; j < NI; j++)
				mma16816(acc[i][j], fa[i], fb[j][0], fb[j][1]);
	};
	if constexpr (!Q8 && Cfg::FRAG2 && FRAG) {
		/* Fragments double-buffered across k16 steps and across slices:
		 * the next step's ldmatrix loads are issued before this step's
		 * mma, and the next slice's first ones (after its barrier) before
		 * this slice's last mma, so shared-memory latency and the barrier
		 * overlap tensor-core work. The mma sequence per accumulator is
		 * unchanged: the same bits as one buffer. */
		constexpr int KS = GEMM_BK / 16;
		uint32_t af[2][MI][4], bf[2][NI][2];
		auto load_frag = [&](int buf, int st, int kk) {
			ldm_a(af[buf], sA + st * BM * GEMM_LDS, kk);
			ldm_b(bf[buf], sB + st * BN * GEMM_LDS, kk);
		};
		if (KT > 0) {
			cp_async_wait<STAGES - 2>();
			team_sync(team);
			MMF_PROBE_MARK(team, 0);	/* the first slice has landed */
			load_frag(0, 0, 0);
		}
		for (int kt = 0; kt < KT; kt++) {
			/* Every thread finished reading the stage this refills
			 * (slice kt-1's) before the barrier that made slice kt
			 * visible. */
			int nk = kt + STAGES - 1;
			if (nk < KT)
				load_stage(nk % STAGES, (kt0 + nk) * GEMM_BK);
			cp_async_commit();
			const int st = kt % STAGES;
#pragma unroll
			for (int ks = 0; ks < KS; ks++) {
				const int cur = ks & 1;	/* KS is even: slice kt starts in buffer 0 */
				if (ks + 1 < KS) {
					load_frag(cur ^ 1, st, (ks + 1) * 16);
				} else if (kt + 1 < KT) {
					cp_async_wait<STAGES - 2>();
					team_sync(team);
					load_frag(cur ^ 1, (kt + 1) % STAGES, 0);
				}
				mma_step(af[cur], bf[cur]);
			}
		}
	} else {
		/* One fragment buffer: the L and M tiles (Cfg::FRAG2), int8
		 * weights (one 8-byte load per lane per slice gives both k16
		 * steps' B fragments) and the fused kernels (FRAG). */
		for (int kt = 0; kt < KT; kt++) {
			cp_async_wait<STAGES - 2>();
			team_sync(team);
#ifdef MMF_PROBE
			if (kt == 0)
				MMF_PROBE_MARK(team, 0);
#endif
			int nk = kt + STAGES - 1;
			if (nk < KT)
				load_stage(nk % STAGES, (kt0 + nk) * GEMM_BK);
			cp_async_commit();
			const int st = kt % STAGES;
			const __half *a = sA + st * BM * GEMM_LDS, *b = sB + st * BN * GEMM_LDS;
			uint2 bq[Q8 ? NI : 1];	/* Q8: each lane's 8 bytes of the slice, per n8 fragment */
			if (Q8) {
				const int8_t *b8 = sBq + st * BN * GEMM_LDSQ;
#pragma unroll
				for (int j = 0; j < NI; j++)
					bq[j] = *reinterpret_cast<const uint2 *>(b8 + (wn * (BN / Cfg::WN) + j * 8 + (lane >> 2)) * GEMM_LDSQ +
										  (lane & 3) * 8);
			}
#pragma unroll
			for (int kk = 0; kk < GEMM_BK; kk += 16) {
				uint32_t af[MI][4], bf[NI][2];
				ldm_a(af, a, kk);
				if (Q8) {
					/* The packed slice gives lane its m16n8k16 B fragments
					 * of both k16 halves in one 8-byte load: word kk/16,
					 * bytes 0-1 = k 2*(lane%4)+{0,1}, bytes 2-3 the same + 8. */
#pragma unroll
					for (int j = 0; j < NI; j++) {
						uint32_t w = kk ? bq[j].y : bq[j].x;
						bf[j][0] = u8x2_to_h2<0x4140>(w);
						bf[j][1] = u8x2_to_h2<0x4342>(w);
					}
				} else {
					ldm_b(bf, b, kk);
				}
				mma_step(af, bf);
			}
		}
	}
	cp_async_wait<0>();
	MMF_PROBE_MARK(team, 1);	/* the main loop is done */

	/* The accumulator pairs this block writes: all of them, unless the
	 * cluster shares the tile out. */
	int pair0 = 0, pair1 = MI * NI * 2;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	if (p.splits > 1 && p.cluster)
		gemm_cluster_reduce<MI * NI * 4, Cfg::THREADS>(p, split, team, &acc[0][0][0], &pair0, &pair1);
	else
#endif
	if (p.splits > 1 && !gemm_split_reduce<MI * NI * 4, Cfg::THREADS>(p, tile, mn, team, &acc[0][0][0]))
		return;
	MMF_PROBE_MARK(team, 2);	/* split-K partials summed */

	/* Epilogue straight from the accumulators: lane holds rows lane/4 and
	 * lane/4+8 of each fragment, columns 2*(lane%4) and +1 (pair
	 * (i*NI + j)*2 + h of the accumulators, h the row half). */
#pragma unroll
	for (int i = 0; i < MI; i++)
#pragma unroll
		for (int j = 0; j < NI; j++) {
			int n = n0 + wn * (BN / Cfg::WN) + j * 8 + (lane & 3) * 2;
			const int pp = (i * NI + j) * 2;
			if (n >= p.N || pp + 1 < pair0 || pp >= pair1)
				continue;
			float b0 = p.bias ? p.bias[n] : 0.f, b1 = p.bias ? p.bias[n + 1] : 0.f;
			float s0 = Q8 ? p.bscale[n] : 1.f, s1 = Q8 ? p.bscale[n + 1] : 1.f;
#pragma unroll
			for (int h = 0; h < 2; h++) {
				int m = m0 + wm * (BM / Cfg::WM) + i * 16 + (lane >> 2) + h * 8;
				if (m >= p.M || pp + h < pair0 || pp + h >= pair1)
					continue;
				float v0 = (Q8 ? acc[i][j][2 * h] * s0 : acc[i][j][2 * h]) + b0;
				float v1 = (Q8 ? acc[i][j][2 * h + 1] * s1 : acc[i][j][2 * h + 1]) + b1;
				long long off = (long long)m * p.N + n;
				if (p.R) {
					float2 r = __half22float2(*reinterpret_cast<const __half2 *>(static_cast<const __half *>(p.R) + off));
					v0 += r.x, v1 += r.y;
				}
				*reinterpret_cast<__half2 *>(static_cast<__half *>(p.C) + off) =
					__floats2half2_rn(gemm_act(p.act, v0), gemm_act(p.act, v1));
			}
		}
	MMF_PROBE_MARK(team, 3);	/* epilogue stored */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	if (p.splits > 1 && p.cluster)
		mmf_cluster_wait();	/* every peer has read this block's partials */
#endif
}

/* The fp32 SIMT form (mmf_gemm.f32): A, B, R and C float, the same address
 * maps, split-K, epilogue and output tiles as the tensor-core form (each
 * configuration keeps its BM x BN, so tile counts, split-K workspace and the
 * engine's choices carry over), computed with FFMA on the CUDA cores: the
 * fp32 baseline that shows what the tensor cores buy. The K loop walks
 * slices of GEMM_SIMT_BK = 8 values; each thread fetches its 16-byte pieces
 * of the next slice into registers while the team computes the current one
 * from shared memory, then stores them transposed (k-major, rows padded by 4
 * floats) into the other of two stages, one barrier a slice. A thread owns
 * TM x TN values of C in groups of 4 x 4: rows ty*4.. of each of the TM/4
 * row bands, columns tx*4.. of each of the TN/4 column bands, so that a
 * warp's float4 reads of a k-row are consecutive (conflict-free) or
 * broadcasts. */
#define GEMM_SIMT_BK 8

template <int BM_, int BN_, int TM_, int TN_>
struct gemm_simt_cfg {
	static constexpr int BM = BM_, BN = BN_, TM = TM_, TN = TN_;
	static constexpr int THREADS = BM * BN / (TM * TN);
	static constexpr int LDA = BM + 4, LDB = BN + 4;	/* floats a shared k-row */
	static constexpr int SMEM = 2 * GEMM_SIMT_BK * (LDA + LDB) * 4;
	static_assert(TM % 4 == 0 && TN % 4 == 0 && THREADS % 32 == 0, "float4 reads, whole warps");
};
/* Same BM x BN as gemm_cfg_l, _m, _s, _w and _n. */
typedef gemm_simt_cfg<128, 128, 8, 8> gemm_simt_l;	/* 256 threads, 16.9 KB */
typedef gemm_simt_cfg<64, 64, 4, 8> gemm_simt_m;	/* 128 threads, 8.7 KB */
typedef gemm_simt_cfg<32, 64, 4, 4> gemm_simt_s;	/* 128 threads, 6.4 KB */
typedef gemm_simt_cfg<128, 64, 8, 4> gemm_simt_w;	/* 256 threads, 12.8 KB */
typedef gemm_simt_cfg<128, 32, 8, 4> gemm_simt_n;	/* 128 threads, 10.5 KB */

/* Stores a thread's fetched pieces of one operand's slice transposed:
 * piece c (row c / 2, k 4 * (c % 2) .. + 3) to rows k of the k-major stage. */
template <int PER, int CHUNKS, int THREADS, int LD>
__device__ __forceinline__ void gemm_simt_stash(const float4 (&r)[PER], float *stage, int tid)
{
#pragma unroll
	for (int i = 0; i < PER; i++) {
		int c = tid + i * THREADS;
		if (c < CHUNKS) {
			float *d = stage + (c % 2) * 4 * LD + c / 2;
			d[0] = r[i].x, d[LD] = r[i].y, d[2 * LD] = r[i].z, d[3 * LD] = r[i].w;
		}
	}
}

template <class Cfg>
__device__ void gemm_simt_tile(const gemm_params &p, int tile, const mmf_team &team)
{
	constexpr int BK = GEMM_SIMT_BK, BM = Cfg::BM, BN = Cfg::BN, TM = Cfg::TM, TN = Cfg::TN;
	constexpr int LDA = Cfg::LDA, LDB = Cfg::LDB, THREADS = Cfg::THREADS;
	constexpr int CHUNKS_A = BM * BK / 4, CHUNKS_B = BN * BK / 4;	/* float4 pieces of a slice */
	constexpr int A_PER = (CHUNKS_A + THREADS - 1) / THREADS, B_PER = (CHUNKS_B + THREADS - 1) / THREADS;
	float *sA = reinterpret_cast<float *>(team.smem);	/* [2][BK][LDA] */
	float *sB = sA + 2 * BK * LDA;				/* [2][BK][LDB] */
	const float *B = static_cast<const float *>(p.B);

	const int tiles_n = (p.N + BN - 1) / BN;
	const int split = tile % p.splits, mn = tile / p.splits;
	const int m0 = (mn / tiles_n) * BM, n0 = (mn % tiles_n) * BN;
	const int tid = team.tid, tx = tid % (BN / TN), ty = tid / (BN / TN);

	/* Piece c of a slice: row c / 2, k offset 4 * (c % 2). */
	gemm_arow<float> arow[A_PER];
	const float *brow[B_PER];
#pragma unroll
	for (int i = 0; i < A_PER; i++) {
		int c = tid + i * THREADS;
		arow[i] = gemm_a_row<float>(p, m0 + c / 2);
		if (c >= CHUNKS_A)
			arow[i].valid = false;
	}
#pragma unroll
	for (int i = 0; i < B_PER; i++) {
		int c = tid + i * THREADS, n = n0 + c / 2;
		brow[i] = c < CHUNKS_B && n < p.N ? B + (long long)n * p.K + (c % 2) * 4 : nullptr;
	}
	float4 ra[A_PER], rb[B_PER];
	const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
	auto fetch = [&](int k0) {
#pragma unroll
		for (int i = 0; i < A_PER; i++) {
			const float *src = gemm_a_src(p, arow[i], k0 + ((tid + i * THREADS) % 2) * 4);
			ra[i] = src ? __ldg(reinterpret_cast<const float4 *>(src)) : zero;
			gemm_a_step<BK>(p, arow[i]);
		}
#pragma unroll
		for (int i = 0; i < B_PER; i++)
			rb[i] = brow[i] && k0 < p.K ? __ldg(reinterpret_cast<const float4 *>(brow[i] + k0)) : zero;
	};
	auto stash = [&](int st) {
		gemm_simt_stash<A_PER, CHUNKS_A, THREADS, LDA>(ra, sA + st * BK * LDA, tid);
		gemm_simt_stash<B_PER, CHUNKS_B, THREADS, LDB>(rb, sB + st * BK * LDB, tid);
	};

	float acc[TM * TN];
#pragma unroll
	for (int e = 0; e < TM * TN; e++)
		acc[e] = 0.f;
	const int KT_ALL = (p.K + BK - 1) / BK;
	const int kt0 = (int)((long long)KT_ALL * split / p.splits), KT = (int)((long long)KT_ALL * (split + 1) / p.splits) - kt0;
#pragma unroll
	for (int i = 0; i < A_PER; i++)
		gemm_a_seek(p, arow[i], kt0 * BK + ((tid + i * THREADS) % 2) * 4);
	team_sync(team);	/* the previous tile is done with both stages */
	if (KT > 0) {
		fetch(kt0 * BK);
		stash(0);
	}
	team_sync(team);
	for (int kt = 0; kt < KT; kt++) {
		const int st = kt & 1;
		if (kt + 1 < KT)
			fetch((kt0 + kt + 1) * BK);
		const float *a = sA + st * BK * LDA + ty * 4, *b = sB + st * BK * LDB + tx * 4;
#pragma unroll
		for (int k = 0; k < BK; k++) {
			float av[TM], bv[TN];
#pragma unroll
			for (int i = 0; i < TM; i += 4)
				*reinterpret_cast<float4 *>(av + i) = *reinterpret_cast<const float4 *>(a + k * LDA + i / 4 * (BM * 4 / TM));
#pragma unroll
			for (int j = 0; j < TN; j += 4)
				*reinterpret_cast<float4 *>(bv + j) = *reinterpret_cast<const float4 *>(b + k * LDB + j / 4 * (BN * 4 / TN));
#pragma unroll
			for (int i = 0; i < TM; i++)
#pragma unroll
				for (int j = 0; j < TN; j++)
					acc[i * TN + j] = fmaf(av[i], bv[j], acc[i * TN + j]);
		}
		/* The other stage was last read before the previous barrier. */
		if (kt + 1 < KT)
			stash(st ^ 1);
		team_sync(team);
	}

	if (p.splits > 1 && !gemm_split_reduce<TM * TN, THREADS>(p, tile, mn, team, acc))
		return;

	const float *R = static_cast<const float *>(p.R);
	float *C = static_cast<float *>(p.C);
#pragma unroll
	for (int i = 0; i < TM; i++) {
		int m = m0 + i / 4 * (BM * 4 / TM) + ty * 4 + i % 4;
		if (m >= p.M)
			continue;
#pragma unroll
		for (int j = 0; j < TN; j += 2) {
			int n = n0 + j / 4 * (BN * 4 / TN) + tx * 4 + j % 4;
			if (n >= p.N)	/* N is even: a pair is whole or out */
				continue;
			long long off = (long long)m * p.N + n;
			float v0 = acc[i * TN + j] + (p.bias ? p.bias[n] : 0.f), v1 = acc[i * TN + j + 1] + (p.bias ? p.bias[n + 1] : 0.f);
			if (R) {
				float2 r = *reinterpret_cast<const float2 *>(R + off);
				v0 += r.x, v1 += r.y;
			}
			*reinterpret_cast<float2 *>(C + off) = make_float2(gemm_act(p.act, v0), gemm_act(p.act, v1));
		}
	}
}

#endif
