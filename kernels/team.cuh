/* team.cuh: the team contract that makes any two ops fusable (see
 * DESIGN.md). An op's device code is a tile function
 *
 *     __device__ void op_tile(const Params &p, int tile, mmf_team team);
 *
 * run by a team of threads: it learns its thread index in the team, the team
 * size and a named barrier id, synchronises only with team_sync() (never
 * __syncthreads(), which would stall a second team sharing the block), and
 * touches only its own shared-memory slice. A plain kernel is one team per
 * block with barrier 0; the fusion strategies place two teams in one block
 * (barriers 1 and 2) or run two tile functions back to back. */
#ifndef MMF_TEAM_CUH
#define MMF_TEAM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

struct mmf_team {
	int tid;	/* thread index within the team */
	int size;	/* threads in the team, a multiple of 32 */
	int barrier;	/* named barrier id (0..15) */
	char *smem;	/* this team's shared-memory slice */
};

/* bar.sync with an explicit thread count waits for exactly this team's
 * warps, which is what lets two teams share a block. */
__device__ __forceinline__ void team_sync(const mmf_team &t)
{
	asm volatile("bar.sync %0, %1;" ::"r"(t.barrier), "r"(t.size) : "memory");
}

/* The team of a plain (unfused) launch: the whole block, barrier 0. */
__device__ __forceinline__ mmf_team team_whole_block(char *smem)
{
	mmf_team t;
	t.tid = threadIdx.x;
	t.size = blockDim.x;
	t.barrier = 0;
	t.smem = smem;
	return t;
}

/* Sum over the team; scratch holds one float per warp of the team. */
__device__ __forceinline__ float team_sum(const mmf_team &t, float v, float *scratch)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	int warp = t.tid >> 5, lane = t.tid & 31, nwarps = t.size >> 5;
	team_sync(t);	/* scratch may still be read from a previous call */
	if (lane == 0)
		scratch[warp] = v;
	team_sync(t);
	float s = 0;
	for (int w = 0; w < nwarps; w++)
		s += scratch[w];
	return s;
}

#endif
