/* gemv: plain launch and C entry point (gemv.cuh). */
#include <cuda_fp16.h>

#include "check.h"
#include "gemv.cuh"
#include "mmf_kernels.h"

extern "C" int mmf_gemv_desc(const mmf_gemm *g, mmf_opdesc *d)
{
	if (!g || !g->A || !g->B || !g->C || g->conv || g->f32 || g->bscale || g->M < 1 || g->M > GEMV_MAX_M || g->N < 1 ||
	    g->K < 8 || g->K % 8 || g->act < 0 || g->act > 3 || g->rps < 1 || g->lda % 8 || g->sstride % 8)
		return -EINVAL;
	if (((uintptr_t)g->A | (uintptr_t)g->B | (uintptr_t)g->C | (uintptr_t)g->R) % 16)
		return -EINVAL;
	gemv_params p = {g->A, g->B, g->R, g->bias, g->C, g->M, g->N, g->K, g->act, g->rps, g->lda, g->sstride};
	return mmf_desc_pack(d, MMF_OP_GEMV, p, gemv_tiles(p), GEMV_TEAM, gemv_smem_bytes(p));
}

extern "C" int mmf_gemv_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	if (d->f32)
		return -EINVAL;
	const gemv_params &p = *reinterpret_cast<const gemv_params *>(d->params);
	MMF_CUDA_CHECK((mmf_plain_launch<gemv_params, gemv_tile, gemv_tiles, GEMV_TEAM>(p, gemv_smem_bytes(p), (cudaStream_t)stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}
