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

extern "C" int mmf_pool_fold_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_fold_params &p = *reinterpret_cast<const pool_fold_params *>(d->params);
	if (d->f32)
		return -EINVAL;	/* fp16 only */
	MMF_CUDA_CHECK((mmf_plain_launch<pool_fold_params, pool_fold_tile, pool_fold_tiles, POOL_FOLD_TEAM>(
		p, pool_fold_smem_bytes(p), (cudaStream_t)stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}
