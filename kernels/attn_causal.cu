/* attn_causal: plain launch and C entry point; the op itself is in
 * attn_causal.cuh. */
#include <cuda_fp16.h>
#include <limits.h>

#include "attn_causal.cuh"
#include "check.h"
#include "mmf_ops.h"

/* One kernel per register budget (see attn_causal_small): naming the
 * blocks an SM should hold, 10 and 8, caps the registers at 65536 / (64 *
 * blocks), which both variants fit without spills (12 blocks, at 80
 * registers, spilled 20 bytes). */
template <int KS, int KK, int BLOCKS, bool TR>
__global__ void __launch_bounds__(ATTN_CAUSAL_TEAM, BLOCKS) attn_causal_kernel(attn_causal_params p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_team team = team_whole_block<TR>(smem);
	const int tiles = attn_causal_tiles(p);
	for (int t = blockIdx.x; t < tiles; t += gridDim.x)
		attn_causal_tile_fit<KS, KK>(p, t, team);
	mmf_kernel_end<TR>(trace);
}

static int attn_causal_launch(const attn_causal_params &p, cudaStream_t stream)
{
	const int tiles = attn_causal_tiles(p), grid = tiles < 65535 ? tiles : 65535, smem = attn_causal_smem_bytes(p);
	if (attn_causal_small(p))
		MMF_CUDA_CHECK(mmf_launch_traced(attn_causal_kernel<5, 4, 10, true>, attn_causal_kernel<5, 4, 10, false>,
					  grid, ATTN_CAUSAL_TEAM, smem, stream, p));
	else
		MMF_CUDA_CHECK(mmf_launch_traced(attn_causal_kernel<ATTN_CAUSAL_MAX_TOKENS / 16, ATTN_CAUSAL_MAX_DH / 16, 8, true>, attn_causal_kernel<ATTN_CAUSAL_MAX_TOKENS / 16, ATTN_CAUSAL_MAX_DH / 16, 8, false>,
					  grid, ATTN_CAUSAL_TEAM, smem, stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_attn_causal_desc(const void *qkv, void *out, int batch, int tokens, int width, int heads,
				   mmf_opdesc *d)
{
	if (!qkv || !out || batch < 1 || tokens < 1 || tokens > ATTN_CAUSAL_MAX_TOKENS || heads < 1 || width < 1 ||
	    width % heads)
		return -EINVAL;
	const int dh = width / heads;
	if (dh % 8 || dh > ATTN_CAUSAL_MAX_DH)
		return -EINVAL;
	if (((uintptr_t)qkv | (uintptr_t)out) % 16)
		return -EINVAL;
	if ((int64_t)batch * heads * ((tokens + ATTN_CAUSAL_ROWS - 1) / ATTN_CAUSAL_ROWS) > INT_MAX ||
	    (int64_t)tokens * 3 * width > INT_MAX)
		return -EINVAL;
	attn_causal_params p = {(const __half *)qkv, (__half *)out, batch, tokens, width, heads};
	return mmf_desc_pack(d, MMF_OP_ATTN_CAUSAL, p, attn_causal_tiles(p), ATTN_CAUSAL_TEAM, attn_causal_smem_bytes(p));
}

extern "C" int mmf_attn_causal_f16(const void *qkv, void *out, int batch, int tokens, int width, int heads,
				   mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_attn_causal_desc(qkv, out, batch, tokens, width, heads, &d);
	return rc < 0 ? rc : attn_causal_launch(*reinterpret_cast<const attn_causal_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_attn_causal_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	return attn_causal_launch(*reinterpret_cast<const attn_causal_params *>(d->params), (cudaStream_t)stream);
}
