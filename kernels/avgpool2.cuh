/* avgpool2: the ResNet tower's 2x2 average pool, stride 2, NHWC: x
 * [batch][h][w][channels] -> y [batch][h/2][w/2][channels], each output the
 * mean of its 2x2 window, summed in fp32. fp16 in and out, or fp32 (the
 * descriptor's fp32 form). h and w even, channels a multiple of 8.
 *
 * Purely memory-bound, so the output is flattened into chunks of 8 channels
 * (16 bytes in fp16, 32 in fp32) and a tile is 128 consecutive chunks, one
 * a thread: every thread loads 4 chunks and stores one, consecutive threads
 * touch consecutive chunks (the whole channel run of a pixel, then the next
 * pixel), and the tiles divide any shape evenly whatever C is (RN50's stem
 * has only 32 channels: 4 chunks a pixel). No shared memory, no barrier. */
#ifndef MMF_AVGPOOL2_CUH
#define MMF_AVGPOOL2_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct avgpool2_params {
	const void *x;		/* [batch][h][w][channels] */
	void *y;		/* [batch][h/2][w/2][channels] */
	int batch, h, w, channels;
};

constexpr int AVGPOOL2_TEAM = 128;

/* Output chunks of 8 channels; the entry point keeps this below 2^31. */
__host__ __device__ static inline int64_t avgpool2_chunks(const avgpool2_params &p)
{
	return (int64_t)p.batch * (p.h / 2) * (p.w / 2) * (p.channels / 8);
}

__host__ __device__ static inline int avgpool2_tiles(const avgpool2_params &p)
{
	return (int)((avgpool2_chunks(p) + AVGPOOL2_TEAM - 1) / AVGPOOL2_TEAM);
}

__host__ __device__ static inline int avgpool2_smem_bytes(const avgpool2_params &) { return 0; }

/* T: the tensors' element type, __half or float. */
template <typename T>
__device__ inline void avgpool2_tile(const avgpool2_params &p, int tile, const mmf_team &team)
{
	const int idx = tile * AVGPOOL2_TEAM + team.tid;
	if (idx >= (int)avgpool2_chunks(p))
		return;
	const int nc = p.channels / 8, ow = p.w / 2, oh = p.h / 2;
	const int c = idx % nc, px = idx / nc;	/* px: output pixel over the batch */
	const int ox = px % ow, oy = (px / ow) % oh, b = px / ow / oh;
	const size_t row = (size_t)p.w * p.channels;
	const T *a = static_cast<const T *>(p.x) + ((size_t)b * p.h + 2 * oy) * row + (size_t)2 * ox * p.channels + c * 8;
	float r[4][8], out[8];
	mmf_ldg8(a, r[0]);
	mmf_ldg8(a + p.channels, r[1]);
	mmf_ldg8(a + row, r[2]);
	mmf_ldg8(a + row + p.channels, r[3]);
#pragma unroll
	for (int i = 0; i < 8; i++) {
		float s = 0.f;
#pragma unroll
		for (int k = 0; k < 4; k++)
			s += r[k][i];
		out[i] = 0.25f * s;
	}
	mmf_store8(static_cast<T *>(p.y) + (size_t)idx * 8, out);
}

#endif
