/* embed: plain launch and C entry point; the op itself is in embed.cuh. */
#include <cuda_fp16.h>
#include <limits.h>

#include "check.h"
#include "embed.cuh"
#include "mmf_ops.h"

template <typename T>
static int embed_launch(const embed_params &p, cudaStream_t stream)
{
	MMF_CUDA_CHECK((mmf_plain_launch<embed_params, embed_tile<T>, embed_tiles, EMBED_TEAM, 16>(p, embed_smem_bytes(p), stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_embed_desc(const int32_t *ids, void *y, const void *tok_emb, const void *pos, int batch,
			     int tokens, int width, int vocab, mmf_opdesc *d)
{
	if (!ids || !y || !tok_emb || !pos || batch < 1 || tokens < 1 || width < 8 || width % 8 || vocab < 1)
		return -EINVAL;
	if ((uintptr_t)ids % 4 || ((uintptr_t)y | (uintptr_t)tok_emb | (uintptr_t)pos) % 16)
		return -EINVAL;
	if ((int64_t)batch * tokens > INT_MAX)
		return -EINVAL;
	embed_params p = {ids, tok_emb, pos, y, batch, tokens, width, vocab};
	return mmf_desc_pack(d, MMF_OP_EMBED, p, embed_tiles(p), EMBED_TEAM, embed_smem_bytes(p));
}

extern "C" int mmf_embed_f16(const int32_t *ids, void *y, const void *tok_emb, const void *pos, int batch,
			     int tokens, int width, int vocab, mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_embed_desc(ids, y, tok_emb, pos, batch, tokens, width, vocab, &d);
	return rc < 0 ? rc : embed_launch<__half>(*reinterpret_cast<const embed_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_embed_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const embed_params &p = *reinterpret_cast<const embed_params *>(d->params);
	return d->f32 ? embed_launch<float>(p, (cudaStream_t)stream)
		      : embed_launch<__half>(p, (cudaStream_t)stream);
}
