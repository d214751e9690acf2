/* eot_gather: plain launch and C entry point; the op itself is in
 * eot_gather.cuh. */
#include <cuda_fp16.h>

#include "check.h"
#include "eot_gather.cuh"
#include "mmf_ops.h"

template <typename T>
static int eot_gather_launch(const eot_gather_params &p, cudaStream_t stream)
{
	MMF_CUDA_CHECK((mmf_plain_launch<eot_gather_params, eot_gather_tile<T>, eot_gather_tiles, EOT_GATHER_TEAM, 8>(p, eot_gather_smem_bytes(p), stream)));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_eot_gather_desc(const void *x, const int32_t *ids, void *y, int batch, int tokens, int width,
				  mmf_opdesc *d)
{
	if (!x || !ids || !y || batch < 1 || tokens < 1 || width < 8 || width % 8)
		return -EINVAL;
	if ((uintptr_t)ids % 4 || ((uintptr_t)x | (uintptr_t)y) % 16)
		return -EINVAL;
	eot_gather_params p = {x, ids, y, batch, tokens, width};
	return mmf_desc_pack(d, MMF_OP_EOT_GATHER, p, eot_gather_tiles(p), EOT_GATHER_TEAM, eot_gather_smem_bytes(p));
}

extern "C" int mmf_eot_gather_f16(const void *x, const int32_t *ids, void *y, int batch, int tokens, int width,
				  mmf_stream stream)
{
	mmf_opdesc d;
	int rc = mmf_eot_gather_desc(x, ids, y, batch, tokens, width, &d);
	return rc < 0 ? rc : eot_gather_launch<__half>(*reinterpret_cast<const eot_gather_params *>(d.params), (cudaStream_t)stream);
}

extern "C" int mmf_eot_gather_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	const eot_gather_params &p = *reinterpret_cast<const eot_gather_params *>(d->params);
	return d->f32 ? eot_gather_launch<float>(p, (cudaStream_t)stream)
		      : eot_gather_launch<__half>(p, (cudaStream_t)stream);
}
