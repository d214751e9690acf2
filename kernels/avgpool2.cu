/* avgpool2: plain launch and C entry point; the op itself is in
 * avgpool2.cuh. */
#include <cuda_fp16.h>
#include <limits.h>

#include "avgpool2.cuh"
#include "check.h"
#include "mmf_ops.h"

template <typename T>
static int avgpool2_launch(const avgpool2_params &p, cudaStream_t stream)
{
	MMF_CUDA_CHECK((mmf_plain_launch<avgpool2_params, avgpool2_tile<T>, avgpool2_tiles, AVGPOOL2_TEAM, 8>(p, avgpool2_smem_bytes(p), stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_avgpool2_desc(const void *x, void *y, int batch, int h, int w, int channels, mmf_opdesc *d)
{
	if (!x || !y || batch < 1 || h < 2 || w < 2 || h % 2 || w % 2 || channels < 8 || channels % 8)
		return -EINVAL;
	if (((uintptr_t)x | (uintptr_t)y) % 16)
		return -EINVAL;
	avgpool2_params p = {x, y, batch, h, w, channels};
	if (avgpool2_chunks(p) > INT_MAX - AVGPOOL2_TEAM)
		return -EINVAL;
	return mmf_desc_pack(d, MMF_OP_AVGPOOL2, p, avgpool2_tiles(p), AVGPOOL2_TEAM, avgpool2_smem_bytes(p));
}

extern "C" int mmf_avgpool2_f16(const void *x, void *y, int batch, int h, int w, int channels, mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_avgpool2_desc(x, y, batch, h, w, channels, &d);
	return rc < 0 ? rc : avgpool2_launch<__half>(*reinterpret_cast<const avgpool2_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_avgpool2_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const avgpool2_params &p = *reinterpret_cast<const avgpool2_params *>(d->params);
	return d->f32 ? avgpool2_launch<float>(p, (cudaStream_t)stream)
		      : avgpool2_launch<__half>(p, (cudaStream_t)stream);
}
