/* embed: plain launch and C entry point; the op itself is in embed.cuh. */
#include <cuda_fp16.h>
#include <limits.h>

#include "check.h"
#include "embed.cuh"
#include "mmf_ops.h"

__global__ void __launch_bounds__(EMBED_TEAM, 16) embed_kernel(embed_params p)
{
	extern __shared__ __align__(16) char smem[];
	mmf_team team = team_whole_block(smem);
	const int tiles = embed_tiles(p);
	for (int t = blockIdx.x; t < tiles; t += gridDim.x)
		embed_tile(p, t, team);
	mmf_pdl_trigger();
}

static int embed_launch(const embed_params &p, cudaStream_t stream)
{
	const int tiles = embed_tiles(p);
	MMF_CUDA_CHECK(mmf_launch(embed_kernel, tiles < 65535 ? tiles : 65535, EMBED_TEAM, embed_smem_bytes(p), stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_embed_f16(const int32_t *ids, void *y, const void *tok_emb, const void *pos, int batch,
			     int tokens, int width, int vocab, mmf_stream stream)
{
	if (!ids || !y || !tok_emb || !pos || batch < 1 || tokens < 1 || width < 8 || width % 8 || vocab < 1)
		return -EINVAL;
	if ((uintptr_t)ids % 4 || ((uintptr_t)y | (uintptr_t)tok_emb | (uintptr_t)pos) % 16)
		return -EINVAL;
	if ((int64_t)batch * tokens > INT_MAX)
		return -EINVAL;
	embed_params p = {ids, (const __half *)tok_emb, (const __half *)pos, (__half *)y, batch, tokens, width, vocab};
	return embed_launch(p, (cudaStream_t)stream);
}
