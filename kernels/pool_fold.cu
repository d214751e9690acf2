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
	pool_fold_params p = {x, qt, wv, bv, out, batch, tokens, width, heads};
	return mmf_desc_pack(d, MMF_OP_POOL_FOLD, p, pool_fold_tiles(p), POOL_FOLD_TEAM, pool_fold_smem_bytes(p));
}

/* The plain launch of either pass: one team per block (d->team threads), a block a
 * tile (up to 65535 blocks, grid-stride beyond). fp16 only. */
template <class P>
static int pool_fold_launch(void (*kt)(P, mmf_trace_rec *), void (*kp)(P, mmf_trace_rec *), const mmf_opdesc *d, int tiles,
			    int smem, mmf_stream stream)
{
	if (d->f32)
		return -EINVAL;
	const P &p = *reinterpret_cast<const P *>(d->params);
	MMF_CUDA_CHECK(mmf_launch_traced(kt, kp, tiles < 65535 ? tiles : 65535, d->team, smem, (cudaStream_t)stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_pool_qk_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_qk_params &p = *reinterpret_cast<const pool_qk_params *>(d->params);
	return pool_fold_launch(mmf_plain_kernel<pool_qk_params, pool_qk_tile, pool_qk_tiles, POOL_QK_TEAM, true>,
				mmf_plain_kernel<pool_qk_params, pool_qk_tile, pool_qk_tiles, POOL_QK_TEAM, false>, d,
				pool_qk_tiles(p), pool_qk_smem_bytes(p), stream);
}

extern "C" int mmf_pool_fold_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_fold_params &p = *reinterpret_cast<const pool_fold_params *>(d->params);
	return pool_fold_launch(mmf_plain_kernel<pool_fold_params, pool_fold_tile, pool_fold_tiles, POOL_FOLD_TEAM, true>,
				mmf_plain_kernel<pool_fold_params, pool_fold_tile, pool_fold_tiles, POOL_FOLD_TEAM, false>, d,
				pool_fold_tiles(p), pool_fold_smem_bytes(p), stream);
}
