/* pool_fold: plain launches and C entry points of the folded attention pool
 * (pool_fold.cuh). */
#include <cuda_fp16.h>
#include <limits.h>
#include <math.h>

#include "check.h"
#include "mmf_ops.h"
#include "pool_fold.cuh"

extern "C" int mmf_pool_qk_desc(const void *q, const void *wk, float *qt, int batch, int width, int heads,
				mmf_opdesc *d)
{
	if (!q || !wk || !qt || batch < 1 || heads < 1 || width < 8 || width > POOL_FOLD_MAX_WIDTH || width % heads)
		return -EINVAL;
	const int dh = width / heads;
	if (dh % 8 || ((uintptr_t)q | (uintptr_t)wk | (uintptr_t)qt) % 16)
		return -EINVAL;
	pool_qk_params p = {q, wk, qt, batch, width, heads, 1.f / sqrtf((float)dh)};
	if ((int64_t)batch * heads * ((width + POOL_QK_COLS - 1) / POOL_QK_COLS) > INT_MAX)
		return -EINVAL;
	return mmf_desc_pack(d, MMF_OP_POOL_QK, p, pool_qk_tiles(p), POOL_QK_TEAM, pool_qk_smem_bytes(p));
}

extern "C" int mmf_pool_fold_desc(const void *x, const float *qt, const void *wv, const float *bv, void *out, int batch,
				  int tokens, int width, int heads, mmf_opdesc *d)
{
	if (!x || !qt || !wv || !out || batch < 1 || tokens < 1 || tokens > POOL_FOLD_MAX_TOKENS || heads < 1 ||
	    width < 8 || width > POOL_FOLD_MAX_WIDTH || width % heads)
		return -EINVAL;
	if ((width / heads) % 8 || ((uintptr_t)x | (uintptr_t)qt | (uintptr_t)wv | (uintptr_t)out) % 16)
		return -EINVAL;
	if ((int64_t)batch * heads > INT_MAX)
		return -EINVAL;
	pool_fold_params p = {x, qt, wv, bv, out, batch, tokens, width, heads, 0};
	return mmf_desc_pack(d, MMF_OP_POOL_FOLD, p, pool_fold_tiles(p), POOL_FOLD_TEAM, pool_fold_smem_bytes(p));
}

extern "C" int mmf_pool_qk_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_qk_params &p = *reinterpret_cast<const pool_qk_params *>(d->params);
	if (d->f32)
		return -EINVAL;
	MMF_CUDA_CHECK((mmf_plain_launch<pool_qk_params, pool_qk_tile, pool_qk_tiles, POOL_QK_TEAM>(p, pool_qk_smem_bytes(p),
												  (cudaStream_t)stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* The quartered form (pool_fold.cuh): a cluster of POOL_FOLDQ blocks a
 * (sample, head). */
template <bool TR>
__global__ void __launch_bounds__(POOL_FOLDQ_THREADS) pool_foldq_kernel(pool_fold_params p, mmf_trace_rec *trace)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	extern __shared__ __align__(16) char smem[];
	const mmf_team team = team_whole_block<TR>(smem);
	const pool_foldq_layout l = pool_foldq_smem(p);
	const int q = blockIdx.x % POOL_FOLDQ, bh = blockIdx.x / POOL_FOLDQ, b = bh / p.heads, h = bh - b * p.heads;
	const int T = p.tokens, Cq = p.width / POOL_FOLDQ, lane = team.tid & 31, warp = team.tid >> 5;
	float *sp = reinterpret_cast<float *>(smem + l.sp), *sc = reinterpret_cast<float *>(smem + l.sc);
	float *xf = reinterpret_cast<float *>(smem + l.xf);
	pool_foldq_stage_x(p, b, h, q, smem, l, team.tid);
	pool_foldq_stage_w(p, h, q, smem, l, team.tid);
	asm volatile("cp.async.wait_group 1;\n" ::: "memory");	/* the tokens and qt; Wv may still be in flight */
	team_sync(team);
	pool_foldq_scores(p, smem, l, sp + q * T, warp, lane);
	mmf_cluster_sync();	/* every quarter's partial scores */
	const uint32_t sp_s = (uint32_t)__cvta_generic_to_shared(sp), xf_s = (uint32_t)__cvta_generic_to_shared(xf);
	for (int j = team.tid; j < T; j += POOL_FOLDQ_THREADS) {
		float v = 0.f;
		for (int r = 0; r < POOL_FOLDQ; r++) {
			float w;
			asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(w) : "r"(mmf_dsmem_map(sp_s + (uint32_t)(r * T + j) * 4, r))
				     : "memory");
			v = r ? v + w : w;
		}
		sc[j] = v;
	}
	team_sync(team);
	float mx, inv;
	pool_fold_stats(sc, T, lane, &mx, &inv);
	pool_foldq_xbar(p, smem, l, mx, inv, xf + q * Cq, team);
	mmf_cluster_sync();	/* every quarter of xbar */
	for (int i = team.tid; i < POOL_FOLDQ * Cq / 4; i += POOL_FOLDQ_THREADS) {
		const int r = i / (Cq / 4);
		if (r != q)
			*reinterpret_cast<uint4 *>(xf + i * 4) = mmf_dsmem_ld4(mmf_dsmem_map(xf_s + (uint32_t)i * 16, r));
	}
	mmf_cluster_arrive();	/* done reading the others' shared memory */
	asm volatile("cp.async.wait_group 0;\n" ::: "memory");
	team_sync(team);
	pool_foldq_rows(p, b, h, q, smem, l, team);
	mmf_cluster_wait();	/* the others are done reading this block's */
	mmf_kernel_end<TR>(trace);
#endif
}

/* The same arithmetic from one block a (sample, head), quarter after
 * quarter (no clusters, or one that does not fit the stream's SMs). */
template <bool TR>
__global__ void __launch_bounds__(POOL_FOLDQ_THREADS) pool_foldq_seq_kernel(pool_fold_params p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	const mmf_team team = team_whole_block<TR>(smem);
	const pool_foldq_layout l = pool_foldq_smem(p);
	const int bh = blockIdx.x, b = bh / p.heads, h = bh - b * p.heads;
	const int T = p.tokens, Cq = p.width / POOL_FOLDQ, lane = team.tid & 31, warp = team.tid >> 5;
	float *sp = reinterpret_cast<float *>(smem + l.sp), *sc = reinterpret_cast<float *>(smem + l.sc);
	float *xf = reinterpret_cast<float *>(smem + l.xf);
	for (int q = 0; q < POOL_FOLDQ; q++) {
		pool_foldq_stage_x(p, b, h, q, smem, l, team.tid);
		asm volatile("cp.async.wait_group 0;\n" ::: "memory");
		team_sync(team);
		pool_foldq_scores(p, smem, l, sp + q * T, warp, lane);
		team_sync(team);	/* before the next quarter's copy */
	}
	for (int j = team.tid; j < T; j += POOL_FOLDQ_THREADS) {
		float v = 0.f;
		for (int r = 0; r < POOL_FOLDQ; r++)
			v = r ? v + sp[r * T + j] : sp[r * T + j];
		sc[j] = v;
	}
	team_sync(team);
	float mx, inv;
	pool_fold_stats(sc, T, lane, &mx, &inv);
	for (int q = 0; q < POOL_FOLDQ; q++) {
		pool_foldq_stage_x(p, b, h, q, smem, l, team.tid);
		asm volatile("cp.async.wait_group 0;\n" ::: "memory");
		team_sync(team);
		pool_foldq_xbar(p, smem, l, mx, inv, xf + q * Cq, team);
	}
	for (int q = 0; q < POOL_FOLDQ; q++) {
		pool_foldq_stage_w(p, h, q, smem, l, team.tid);
		asm volatile("cp.async.wait_group 0;\n" ::: "memory");
		team_sync(team);
		pool_foldq_rows(p, b, h, q, smem, l, team);
		team_sync(team);	/* before the next quarter's copy */
	}
	mmf_kernel_end<TR>(trace);
}

extern "C" int mmf_pool_foldq_desc(const void *x, const float *qt, const void *wv, const float *bv, void *out, int batch,
				   int tokens, int width, int heads, mmf_opdesc *d)
{
	int rc = mmf_pool_fold_desc(x, qt, wv, bv, out, batch, tokens, width, heads, d);
	if (rc < 0)
		return rc;
	pool_fold_params p = *reinterpret_cast<const pool_fold_params *>(d->params);
	p.quarters = POOL_FOLDQ;
	if (width % (POOL_FOLDQ * 8) || (width / heads) % POOL_FOLDQ || pool_foldq_smem_bytes(p) > mmf_smem_optin() ||
	    ((uintptr_t)qt % 16) || (int64_t)batch * heads * POOL_FOLDQ > INT_MAX)
		return -EINVAL;
	return mmf_desc_pack(d, MMF_OP_POOL_FOLD, p, batch * heads * POOL_FOLDQ, POOL_FOLDQ_THREADS, pool_foldq_smem_bytes(p));
}

/* The quartered form: a cluster where clusters are on (mmf_set_cluster)
 * and fit the stream's SMs, else one block a head; force_seq for tests. */
static int pool_foldq_launch(const pool_fold_params &p, cudaStream_t s, bool force_seq)
{
	const int smem = pool_foldq_smem_bytes(p);
	static int attr_smem = 0;	/* the largest set so far */
	if (smem > attr_smem) {
		MMF_CUDA_CHECK(cudaFuncSetAttribute(pool_foldq_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(pool_foldq_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(pool_foldq_seq_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(pool_foldq_seq_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		attr_smem = smem;
	}
	static mmf_cluster_cache cache;
	const int heads = p.batch * p.heads;
	if (!force_seq && mmf_cluster_max >= POOL_FOLDQ &&
	    mmf_cluster_fits(pool_foldq_kernel<false>, POOL_FOLDQ_THREADS, smem, POOL_FOLDQ, s, &cache)) {
		if (mmf_launch_traced(pool_foldq_kernel<true>, pool_foldq_kernel<false>, heads * POOL_FOLDQ, POOL_FOLDQ_THREADS, smem,
				      s, p, 1, POOL_FOLDQ) == cudaSuccess)
			return 0;
		(void)cudaGetLastError();	/* refused after all: not sticky */
	}
	MMF_CUDA_CHECK(mmf_launch_traced(pool_foldq_seq_kernel<true>, pool_foldq_seq_kernel<false>, heads, POOL_FOLDQ_THREADS,
					 smem, s, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_pool_foldq_seq_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_fold_params &p = *reinterpret_cast<const pool_fold_params *>(d->params);
	if (d->kind != MMF_OP_POOL_FOLD || d->f32 || p.quarters != POOL_FOLDQ)
		return -EINVAL;
	return pool_foldq_launch(p, (cudaStream_t)stream, true);
}

extern "C" int mmf_pool_fold_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_fold_params &p = *reinterpret_cast<const pool_fold_params *>(d->params);
	if (d->f32)
		return -EINVAL;	/* fp16 only */
	if (p.quarters)
		return pool_foldq_launch(p, (cudaStream_t)stream, false);
	MMF_CUDA_CHECK((mmf_plain_launch<pool_fold_params, pool_fold_tile, pool_fold_tiles, POOL_FOLD_TEAM>(
		p, pool_fold_smem_bytes(p), (cudaStream_t)stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}
