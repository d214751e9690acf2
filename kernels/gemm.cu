/* gemm launchers: one plain kernel per configuration (one team per block,
 * grid-stride over tiles) and the exported C entry point that checks the
 * descriptor before launching. */
#include <cuda_fp16.h>
#include <errno.h>

#include "check.h"
#include "gemm.cuh"
#include "mmf_kernels.h"

template <class Cfg, bool TR, bool Q8>
__global__ void __launch_bounds__(Cfg::THREADS) gemm_kernel(gemm_params p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_team team = team_whole_block<TR>(smem);
	int tiles = gemm_tiles<Cfg>(p);
	for (int t = blockIdx.x; t < tiles; t += gridDim.x)
		gemm_tile<Cfg, Q8>(p, t, team);
	mmf_kernel_end<TR>(trace);
}

template <class Cfg, bool TR>
__global__ void __launch_bounds__(Cfg::THREADS) gemm_simt_kernel(gemm_params p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_team team = team_whole_block<TR>(smem);
	int tiles = gemm_tiles<Cfg>(p);
	for (int t = blockIdx.x; t < tiles; t += gridDim.x)
		gemm_simt_tile<Cfg>(p, t, team);
	mmf_kernel_end<TR>(trace);
}

/* The fp32 SIMT form: small enough shared memory for the default limit. */
template <class Cfg>
static int gemm_simt_launch(const gemm_params &p, int grid, cudaStream_t stream)
{
	int tiles = gemm_tiles<Cfg>(p);
	if (grid <= 0 || grid > tiles)
		grid = tiles;
	MMF_CUDA_CHECK(mmf_launch_traced(gemm_simt_kernel<Cfg, true>, gemm_simt_kernel<Cfg, false>, grid, Cfg::THREADS,
					 Cfg::SMEM, stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* Whether clusters of `splits` blocks (Cfg's block and shared memory) fit
 * on `stream`'s SMs (mmf_cluster_fits), asked once per stream and size. */
template <class Cfg, bool Q8>
static bool cluster_fits(int splits, cudaStream_t stream)
{
	static mmf_cluster_cache cache;
	return mmf_cluster_fits(gemm_kernel<Cfg, false, Q8>, Cfg::THREADS, Cfg::SMEM, (unsigned)splits, stream, &cache);
}

template <class Cfg>
static int gemm_launch(const gemm_params &p, int grid, cudaStream_t stream)
{
	static bool attr_set = false;	/* per configuration; set once before first launch */
	if (!attr_set) {
		MMF_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel<Cfg, false, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel<Cfg, true, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel<Cfg, false, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel<Cfg, true, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM));
		attr_set = true;
	}
	int tiles = gemm_tiles<Cfg>(p);
	if (grid <= 0 || grid > tiles)
		grid = tiles;
	auto launch = [&](const gemm_params &q, unsigned cluster) {
		return q.bscale ? mmf_launch_traced(gemm_kernel<Cfg, true, true>, gemm_kernel<Cfg, false, true>, grid, Cfg::THREADS,
						    Cfg::SMEM, stream, q, 1, cluster)
				: mmf_launch_traced(gemm_kernel<Cfg, true, false>, gemm_kernel<Cfg, false, false>, grid, Cfg::THREADS,
						    Cfg::SMEM, stream, q, 1, cluster);
	};
	/* Split-K through clusters where the device has them (mmf_set_cluster),
	 * one tile per block (an explicit smaller grid keeps the ticket). A
	 * cluster launch refused after all (a configuration error, not sticky)
	 * falls back to the ticket. */
	if (p.splits > 1 && p.splits <= mmf_cluster_max && grid == tiles &&
	    (p.bscale ? cluster_fits<Cfg, true>(p.splits, stream) : cluster_fits<Cfg, false>(p.splits, stream))) {
		gemm_params c = p;
		c.cluster = 1;
		if (launch(c, (unsigned)p.splits) == cudaSuccess)
			return 0;
		(void)cudaGetLastError();
	}
	MMF_CUDA_CHECK(launch(p, 0));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* The configurations by id: tensor-core form, fp32 SIMT form (same tile). */
#define GEMM_CFGS(X)                                                                               \
	X(MMF_GEMM_L, gemm_cfg_l, gemm_simt_l) X(MMF_GEMM_M, gemm_cfg_m, gemm_simt_m)                \
	X(MMF_GEMM_S, gemm_cfg_s, gemm_simt_s) X(MMF_GEMM_W, gemm_cfg_w, gemm_simt_w)                \
	X(MMF_GEMM_N, gemm_cfg_n, gemm_simt_n)

static int to_params(const mmf_gemm *g, gemm_params *p)
{
	if (!g->A || !g->B || !g->C || g->M < 1 || g->N < 2 || g->K < 8 || g->K % 8 || g->N % 2 || (g->f32 && g->bscale))
		return -EINVAL;
	if (((uintptr_t)g->A | (uintptr_t)g->B | (uintptr_t)g->C | (uintptr_t)g->R) % 16)
		return -EINVAL;
	if (g->act < GEMM_ACT_NONE || g->act > GEMM_ACT_GELU)
		return -EINVAL;
	gemm_params q = {};
	q.A = g->A, q.B = g->B, q.R = g->R;
	q.bias = g->bias, q.C = g->C;
	q.bscale = g->bscale;	/* B is then packed int8 (mmf_gemm_pack_int8) */
	q.ldb = (int)mmf_gemm_int8_ldb(g->K);
	q.M = g->M, q.N = g->N, q.K = g->K, q.act = g->act;
	q.splits = g->splits > 1 ? g->splits : 1;
	if (q.splits > 1 && (!g->ws || !g->counters || q.splits > (g->K + GEMM_BK - 1) / GEMM_BK))
		return -EINVAL;
	q.ws = g->ws, q.counters = g->counters;
	if (g->conv) {
		if (g->cin % 8 || g->kh < 1 || g->kw < 1 || g->stride < 1 || g->K != g->kh * g->kw * g->cin ||
		    g->oh < 1 || g->ow < 1 || g->M % (g->oh * g->ow))
			return -EINVAL;
		q.amode = GEMM_A_CONV;
		q.H = g->h, q.W = g->w, q.Cin = g->cin, q.kh = g->kh, q.kw = g->kw;
		q.stride = g->stride, q.pad = g->pad, q.OH = g->oh, q.OW = g->ow;
	} else {
		if (g->rps < 1 || g->lda < g->K || g->lda % 8 || g->sstride % 8 || g->M % g->rps)
			return -EINVAL;
		q.amode = GEMM_A_ROWS;
		q.rps = g->rps, q.lda = g->lda, q.sstride = g->sstride;
	}
	*p = q;
	return 0;
}

extern "C" long long mmf_gemm_int8_ldb(int K) { return (K + GEMM_BK - 1) / GEMM_BK * (long long)GEMM_BK; }

/* Physical byte of logical k within a 32-byte slice (gemm.cuh: lane t's
 * fragments for both k16 halves are 8 consecutive bytes). */
static int pack_pos(int r)
{
	int g = r / 16, w = r % 16, t = (w % 8) / 2, j = (w / 8) * 2 + w % 2;
	return 8 * t + 4 * g + j;
}

extern "C" void mmf_gemm_pack_int8(const int8_t *q, int rows, int K, uint8_t *out)
{
	long long ldb = mmf_gemm_int8_ldb(K);
	for (int n = 0; n < rows; n++)
		for (long long k = 0; k < ldb; k++)
			out[n * ldb + (k / GEMM_BK) * GEMM_BK + pack_pos((int)(k % GEMM_BK))] =
				(uint8_t)((k < K ? q[(long long)n * K + k] : 0) + 128);
}

/* Workspace floats for the split-K partials of configuration Cfg (either
 * form: a tile's partials are BM x BN floats). */
template <class Cfg>
static long long ws_floats(const gemm_params &p)
{
	return p.splits > 1 ? (long long)gemm_tiles<Cfg>(p) * Cfg::MI * Cfg::NI * 4 * Cfg::THREADS : 0;
}

extern "C" int mmf_gemm_workspace(const mmf_gemm *g, int cfg, long long *ws_bytes, int *counters)
{
	mmf_gemm h = *g;
	gemm_params p;
	/* Validate the shape only: the buffers are what the caller is sizing. */
	h.ws = (float *)16, h.counters = (int *)16;
	if (to_params(&h, &p) < 0)
		return -EINVAL;
	long long f;
	int tiles;
	switch (cfg) {
#define CASE(ID, CFG, SIMT) case ID: f = ws_floats<CFG>(p), tiles = gemm_tiles<CFG>(p); break;
	GEMM_CFGS(CASE)
#undef CASE
	default: return -EINVAL;
	}
	*ws_bytes = f * 4;
	*counters = p.splits > 1 ? tiles / p.splits : 0;
	return 0;
}

extern "C" int mmf_gemm_info(const mmf_gemm *g, int cfg, int *tiles, int *threads, int *smem)
{
	mmf_gemm h = *g;
	gemm_params p;
	h.ws = (float *)16, h.counters = (int *)16;
	if (to_params(&h, &p) < 0)
		return -EINVAL;
	switch (cfg) {
#define CASE(ID, CFG, SIMT)                                                                               \
	case ID:                                                                                          \
		*tiles = gemm_tiles<CFG>(p), *threads = g->f32 ? SIMT::THREADS : CFG::THREADS;            \
		*smem = g->f32 ? SIMT::SMEM : CFG::SMEM;                                                  \
		return 0;
	GEMM_CFGS(CASE)
#undef CASE
	default: return -EINVAL;
	}
}

extern "C" int mmf_gemm_desc(const mmf_gemm *g, int cfg, mmf_opdesc *d)
{
	gemm_params p;
	if (to_params(g, &p) < 0)
		return -EINVAL;
	int tiles, threads, smem;
	if (mmf_gemm_info(g, cfg, &tiles, &threads, &smem) < 0)
		return -EINVAL;
	mmf_desc_pack(d, MMF_OP_GEMM_L + cfg, p, tiles, threads, smem);
	d->f32 = g->f32 != 0;
	return 0;
}

/* Configuration cfg of either form, with grid blocks (0: one per tile). */
static int launch_cfg(const gemm_params &p, int cfg, int f32, int grid, cudaStream_t s)
{
	switch (cfg) {
#define CASE(ID, CFG, SIMT) \
	case ID: return f32 ? gemm_simt_launch<SIMT>(p, grid, s) : gemm_launch<CFG>(p, grid, s);
	GEMM_CFGS(CASE)
#undef CASE
	default: return -EINVAL;
	}
}

extern "C" int mmf_gemm_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	return launch_cfg(*reinterpret_cast<const gemm_params *>(d->params), d->kind - MMF_OP_GEMM_L, d->f32, 0,
			  (cudaStream_t)stream);
}

extern "C" int mmf_gemm_f16(const mmf_gemm *g, int cfg, int grid, mmf_stream stream)
{
	gemm_params p;
	if (to_params(g, &p) < 0)
		return -EINVAL;
	return launch_cfg(p, cfg, g->f32, grid, (cudaStream_t)stream);
}
