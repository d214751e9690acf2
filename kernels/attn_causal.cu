/* attn_causal: plain launches and C entry points, both forms; the op itself
 * is in attn_causal.cuh. */
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

/* The fp32 tile: 7 blocks an SM caps it at 72 registers, which it fits
 * without spills (ptxas's own choice, 64 to 80 depending on the
 * architecture, spilled up to 24 bytes). */
template <bool TR>
__global__ void __launch_bounds__(ATTN_CAUSAL_F32_TEAM, 7) attn_causal_f32_kernel(attn_causal_params p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_team team = team_whole_block<TR>(smem);
	const int tiles = attn_causal_f32_tiles(p);
	for (int t = blockIdx.x; t < tiles; t += gridDim.x)
		attn_causal_f32_tile(p, t, team);
	mmf_kernel_end<TR>(trace);
}

static int attn_causal_launch(const attn_causal_params &p, int f32, cudaStream_t stream)
{
	const int tiles = f32 ? attn_causal_f32_tiles(p) : attn_causal_tiles(p), grid = tiles < 65535 ? tiles : 65535;
	const int smem = f32 ? attn_causal_f32_smem_bytes(p) : attn_causal_smem_bytes(p);
	if (f32)
		MMF_CUDA_CHECK(mmf_launch_traced(attn_causal_f32_kernel<true>, attn_causal_f32_kernel<false>, grid,
					  ATTN_CAUSAL_F32_TEAM, smem, stream, p));
	else if (attn_causal_small(p))
		MMF_CUDA_CHECK(mmf_launch_traced(attn_causal_kernel<5, 4, 10, true>, attn_causal_kernel<5, 4, 10, false>,
					  grid, ATTN_CAUSAL_TEAM, smem, stream, p));
	else
		MMF_CUDA_CHECK(mmf_launch_traced(attn_causal_kernel<ATTN_CAUSAL_MAX_TOKENS / 16, ATTN_CAUSAL_MAX_DH / 16, 8, true>, attn_causal_kernel<ATTN_CAUSAL_MAX_TOKENS / 16, ATTN_CAUSAL_MAX_DH / 16, 8, false>,
					  grid, ATTN_CAUSAL_TEAM, smem, stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* The limits both tiles share (0 or -EINVAL); rows: a tile's query rows. */
static int attn_causal_check(const attn_causal_params &p, int rows)
{
	if (!p.qkv || !p.out || p.batch < 1 || p.tokens < 1 || p.tokens > ATTN_CAUSAL_MAX_TOKENS || p.heads < 1 ||
	    p.width < 1 || p.width % p.heads)
		return -EINVAL;
	const int dh = p.width / p.heads;
	if (dh % 8 || dh > ATTN_CAUSAL_MAX_DH)
		return -EINVAL;
	if (((uintptr_t)p.qkv | (uintptr_t)p.out) % 16)
		return -EINVAL;
	if ((int64_t)p.batch * p.heads * ((p.tokens + rows - 1) / rows) > INT_MAX ||
	    (int64_t)p.tokens * 3 * p.width > INT_MAX)
		return -EINVAL;
	return 0;
}

extern "C" int mmf_attn_causal_desc(const void *qkv, void *out, int batch, int tokens, int width, int heads,
				   mmf_opdesc *d)
{
	attn_causal_params p = {qkv, out, batch, tokens, width, heads};
	int rc = attn_causal_check(p, ATTN_CAUSAL_ROWS);
	return rc < 0 ? rc
		      : mmf_desc_pack(d, MMF_OP_ATTN_CAUSAL, p, attn_causal_tiles(p), ATTN_CAUSAL_TEAM,
				      attn_causal_smem_bytes(p));
}

extern "C" int mmf_attn_causal_to_f32(mmf_opdesc *d)
{
	if (d->kind != MMF_OP_ATTN_CAUSAL)
		return -EINVAL;
	const attn_causal_params &p = *reinterpret_cast<const attn_causal_params *>(d->params);
	int rc = attn_causal_check(p, ATTN_CAUSAL_F32_ROWS);
	if (rc < 0)
		return rc;
	d->f32 = 1;
	d->tiles = attn_causal_f32_tiles(p), d->team = ATTN_CAUSAL_F32_TEAM, d->smem = attn_causal_f32_smem_bytes(p);
	return 0;
}

extern "C" int mmf_attn_causal_f16(const void *qkv, void *out, int batch, int tokens, int width, int heads,
				   mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_attn_causal_desc(qkv, out, batch, tokens, width, heads, &d);
	return rc < 0 ? rc : attn_causal_launch(*reinterpret_cast<const attn_causal_params *>(d.params), 0, (cudaStream_t)stream);
}

extern "C" int mmf_attn_causal_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	return attn_causal_launch(*reinterpret_cast<const attn_causal_params *>(d->params), d->f32, (cudaStream_t)stream);
}
