/* pool_tokens: plain launch and C entry point; the op itself is in
 * pool_tokens.cuh. */
#include <cuda_fp16.h>
#include <limits.h>

#include "check.h"
#include "mmf_ops.h"
#include "pool_tokens.cuh"

template <typename T>
static int pool_tokens_launch(const pool_tokens_params &p, cudaStream_t stream)
{
	MMF_CUDA_CHECK((mmf_plain_launch<pool_tokens_params, pool_tokens_tile<T>, pool_tokens_tiles, POOL_TOKENS_TEAM, 8>(p, pool_tokens_smem_bytes(p), stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_pool_tokens_desc(const void *x, void *y, const void *pos, int batch, int hw, int channels,
				   mmf_opdesc *d)
{
	if (!x || !y || !pos || batch < 1 || hw < 1 || hw == INT_MAX || channels < 8 || channels % 8)
		return -EINVAL;
	if (((uintptr_t)x | (uintptr_t)y | (uintptr_t)pos) % 16)
		return -EINVAL;
	if ((int64_t)batch * ((channels + 63) / 64) > INT_MAX)
		return -EINVAL;
	pool_tokens_params p = {x, pos, y, batch, hw, channels};
	return mmf_desc_pack(d, MMF_OP_POOL_TOKENS, p, pool_tokens_tiles(p), POOL_TOKENS_TEAM, pool_tokens_smem_bytes(p));
}

extern "C" int mmf_pool_tokens_f16(const void *x, void *y, const void *pos, int batch, int hw, int channels,
				   mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_pool_tokens_desc(x, y, pos, batch, hw, channels, &d);
	return rc < 0 ? rc : pool_tokens_launch<__half>(*reinterpret_cast<const pool_tokens_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_pool_tokens_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const pool_tokens_params &p = *reinterpret_cast<const pool_tokens_params *>(d->params);
	return d->f32 ? pool_tokens_launch<float>(p, (cudaStream_t)stream)
		      : pool_tokens_launch<__half>(p, (cudaStream_t)stream);
}
