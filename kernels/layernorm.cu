/* layernorm: y = (x - mean) / sqrt(var + 1e-5) * gamma + beta over each row
 * of a row-major matrix, statistics in fp32; tensors are fp16, or fp32 in a
 * descriptor's fp32 form (mmf_op_set_f32). A tile is one row; the team
 * reads it once, 8 elements a thread and load (16 bytes in fp16, 2 x 16 in
 * fp32), into registers when it fits (CLIP's text widths of 512..1280 are
 * 1..2 vectors per thread at 128 threads), reduces mean and variance in two
 * passes over those registers (exact, no E[x^2]-E[x]^2 cancellation), then
 * writes. Memory-bound: one read and one write of the row. */
#include <cuda_fp16.h>

#include "check.h"
#include "mmf_kernels.h"
#include "layernorm.cuh"

template <typename T, bool TR>
__global__ void __launch_bounds__(LN_THREADS) layernorm_kernel(layernorm_params p, mmf_trace_rec *trace)
{
	__shared__ float smem[layernorm_smem_bytes(LN_THREADS) / 4];
	/* gamma and beta do not depend on the kernel before this one: their
	 * lines are fetched into L1 as the block starts (before it waits for
	 * that kernel), so that the tile's last step, after the row's two
	 * reductions, finds them there instead of waiting on DRAM. */
	for (int c = threadIdx.x; c < p.width / 8; c += LN_THREADS) {
		asm volatile("prefetch.global.L1 [%0];" ::"l"(static_cast<const T *>(p.gamma) + 8 * c));
		asm volatile("prefetch.global.L1 [%0];" ::"l"(static_cast<const T *>(p.beta) + 8 * c));
	}
	mmf_team team = team_whole_block<TR>(reinterpret_cast<char *>(smem));
	for (int row = blockIdx.x; row < p.rows; row += gridDim.x)
		layernorm_tile<T>(p, row, team);
	mmf_kernel_end<TR>(trace);
}

template <typename T>
static int layernorm_launch(const layernorm_params &p, cudaStream_t stream)
{
	int grid = p.rows < 65535 ? p.rows : 65535;
	MMF_CUDA_CHECK(mmf_launch_traced(layernorm_kernel<T, true>, layernorm_kernel<T, false>, grid, LN_THREADS, 0, stream, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_layernorm_desc(const void *x, void *y, const void *gamma, const void *beta,
				 int rows, int width, mmf_opdesc *d)
{
	if (!x || !y || !gamma || !beta || rows < 1 || width < 8 || width % 8 ||
	    width > LN_THREADS * LN_MAX_VEC * 8)
		return -EINVAL;
	if (((uintptr_t)x | (uintptr_t)y | (uintptr_t)gamma | (uintptr_t)beta) % 16)
		return -EINVAL;
	layernorm_params p = {x, y, gamma, beta, rows, width};
	return mmf_desc_pack(d, MMF_OP_LAYERNORM, p, layernorm_tiles(p), LN_THREADS, layernorm_smem_bytes(LN_THREADS));
}

extern "C" int mmf_layernorm_f16(const void *x, void *y, const void *gamma, const void *beta,
				 int rows, int width, mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_layernorm_desc(x, y, gamma, beta, rows, width, &d);
	return rc < 0 ? rc : layernorm_launch<__half>(*reinterpret_cast<const layernorm_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_layernorm_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const layernorm_params &p = *reinterpret_cast<const layernorm_params *>(d->params);
	return d->f32 ? layernorm_launch<float>(p, (cudaStream_t)stream)
		      : layernorm_launch<__half>(p, (cudaStream_t)stream);
}
