/* l2norm: plain launch and C entry point; the op itself is in l2norm.cuh. */
#include <cuda_fp16.h>

#include "check.h"
#include "l2norm.cuh"
#include "mmf_ops.h"

template <typename T>
static int l2norm_launch(const l2norm_params &p, cudaStream_t stream)
{
	MMF_CUDA_CHECK((mmf_plain_launch<l2norm_params, l2norm_tile<T>, l2norm_tiles, L2NORM_TEAM, 8>(p, l2norm_smem_bytes(p), stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_l2norm_desc(const void *x, float *y, int rows, int width, mmf_opdesc *d)
{
	if (!x || !y || rows < 1 || width < 8 || width % 8)
		return -EINVAL;
	if (((uintptr_t)x | (uintptr_t)y) % 16)
		return -EINVAL;
	l2norm_params p = {x, y, rows, width};
	return mmf_desc_pack(d, MMF_OP_L2NORM, p, l2norm_tiles(p), L2NORM_TEAM, l2norm_smem_bytes(p));
}

extern "C" int mmf_l2norm_f16_f32(const void *x, float *y, int rows, int width, mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_l2norm_desc(x, y, rows, width, &d);
	return rc < 0 ? rc : l2norm_launch<__half>(*reinterpret_cast<const l2norm_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_l2norm_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const l2norm_params &p = *reinterpret_cast<const l2norm_params *>(d->params);
	return d->f32 ? l2norm_launch<float>(p, (cudaStream_t)stream)
		      : l2norm_launch<__half>(p, (cudaStream_t)stream);
}
