/* attn_pool: plain launch and C entry point; the op itself is in
 * attn_pool.cuh. */
#include <cuda_fp16.h>
#include <limits.h>

#include "attn_pool.cuh"
#include "check.h"
#include "mmf_ops.h"

/* Naming 8 blocks an SM lets ptxas keep the unrolled loads in registers
 * (without it, ptxas for sm_87 spilled at 40 registers). */
template <typename T>
static int attn_pool_launch(const attn_pool_params &p, cudaStream_t stream)
{
	MMF_CUDA_CHECK((mmf_plain_launch<attn_pool_params, attn_pool_tile<T>, attn_pool_tiles, ATTN_POOL_TEAM, 8>(p, attn_pool_smem_bytes(p), stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_attn_pool_desc(const void *q, const void *kv, void *out, int batch, int tokens, int width,
				 int heads, mmf_opdesc *d)
{
	if (!q || !kv || !out || batch < 1 || tokens < 1 || tokens > ATTN_POOL_MAX_TOKENS || heads < 1 ||
	    width < 1 || width % heads)
		return -EINVAL;
	const int dh = width / heads;
	if (dh % 8 || dh > ATTN_POOL_MAX_DH)
		return -EINVAL;
	if (((uintptr_t)q | (uintptr_t)kv | (uintptr_t)out) % 16)
		return -EINVAL;
	if ((int64_t)batch * heads > INT_MAX)
		return -EINVAL;
	attn_pool_params p = {q, kv, out, batch, tokens, width, heads};
	return mmf_desc_pack(d, MMF_OP_ATTN_POOL, p, attn_pool_tiles(p), ATTN_POOL_TEAM, attn_pool_smem_bytes(p));
}

extern "C" int mmf_attn_pool_f16(const void *q, const void *kv, void *out, int batch, int tokens, int width,
				 int heads, mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_attn_pool_desc(q, kv, out, batch, tokens, width, heads, &d);
	return rc < 0 ? rc : attn_pool_launch<__half>(*reinterpret_cast<const attn_pool_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_attn_pool_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const attn_pool_params &p = *reinterpret_cast<const attn_pool_params *>(d->params);
	return d->f32 ? attn_pool_launch<float>(p, (cudaStream_t)stream)
		      : attn_pool_launch<__half>(p, (cudaStream_t)stream);
}
