/* mmf_fuse.h: horizontal fusion of two ops (kernels/fuse.cu). */
#ifndef MMF_FUSE_H
#define MMF_FUSE_H

#include "mmf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { MMF_FUSE_INTER = 0, MMF_FUSE_INTRA_BLOCK = 1, MMF_FUSE_INTRA_THREAD = 2, MMF_FUSE_STRATEGIES = 3 };

typedef struct mmf_fuse {
	int strategy;
	int teams_a, teams_b;	/* intra-block: teams of each op in a block (split nA:nB) */
	int grid_a, grid_b;	/* inter-block: blocks for each op (0: one per tile);
				 * intra-block / intra-thread: grid_a caps the grid (0: enough
				 * blocks for one tile per team) */
} mmf_fuse;

/* Threads per block and shared bytes the fused launch needs; -E2BIG when it
 * cannot fit a block (512 threads, the device's shared memory), -EINVAL for
 * a bad configuration. */
int mmf_fuse_check(const mmf_opdesc *a, const mmf_opdesc *b, const mmf_fuse *f, int *threads, int *smem);
/* Runs a and b as one kernel. Outputs are bitwise those of two plain launches. */
int mmf_fused_launch(const mmf_opdesc *a, const mmf_opdesc *b, const mmf_fuse *f, mmf_stream stream);
/* Registers per thread and local-memory bytes of a strategy's kernel. */
int mmf_fused_attrs(int strategy, int *regs, int *local_bytes);
/* Resident blocks per SM of the fused launch (theoretical occupancy). */
int mmf_fused_occupancy(const mmf_opdesc *a, const mmf_opdesc *b, const mmf_fuse *f, int *blocks_per_sm);

#ifdef __cplusplus
}
#endif

#endif
