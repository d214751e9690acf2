/* gpu_dram: a DRAM-bandwidth limit for an SM partition. Green contexts
 * partition SMs only, so an 8-SM partition of an H100 still reads DRAM at
 * ~770 GB/s where an Orin Nano has 68 GB/s (docs/PARTITIONS.md). While a
 * gpu_dram runs, a hog on every SM outside the partition reads scattered
 * DRAM (the pattern that hurts the partition most, of four measured), paced
 * by a sleep calibrated so that the partition's own
 * streaming copy (the roofline's) measures about the target bandwidth.
 *
 * The limit is an emulation, not a partition: it holds for traffic like the
 * calibration copy's, the partition's latency to DRAM rises with it, the hog
 * also evicts the partition's L2 lines (like a small Jetson's 4 MB L2
 * would), and work outside the partition (the whole-GPU context) shares the
 * GPU with the hog. Only one gpu_dram at a time. */
#ifndef MMF_GPU_DRAM_H
#define MMF_GPU_DRAM_H

#include <stdio.h>

#include "err.h"
#include "gpu_part.h"

typedef struct gpu_dram gpu_dram;

typedef struct gpu_dram_info {
	int sms;		/* the partition */
	int hog_sms;		/* SMs running the hog */
	double target_gbs;	/* asked for */
	double free_gbs;	/* the partition's copy with no hog */
	double floor_gbs;	/* with the hog never sleeping: the lowest reachable */
	double gbs;		/* at the chosen sleep, measured after calibration */
	int mode;		/* the hog's access pattern (mmf_hog_launch), gpu_dram_mode_name */
	unsigned sleep_ns;	/* the hog's pause after each 4 KiB chunk a block reads */
} gpu_dram_info;

/* "scattered reads", "sequential reads and writes", ... */
const char *gpu_dram_mode_name(int mode);

/* Starts the hog for partition `sms` (not 0: the whole GPU leaves no SMs for
 * it) of p and calibrates it to target_gbs, printing each step to progress
 * (may be NULL). Errors: -EINVAL (bad target, whole GPU), -ERANGE (the
 * target is outside what this GPU can emulate for the partition: the
 * message gives the reachable range), -ENOMEM, -EIO. */
int gpu_dram_start(gpu_parts *p, int sms, double target_gbs, FILE *progress, gpu_dram **out, mmf_err *err);
const gpu_dram_info *gpu_dram_get(const gpu_dram *d);
/* 0 while the hog runs, else the negative errno it stopped with (message
 * in err). */
int gpu_dram_check(const gpu_dram *d, mmf_err *err);
/* Stops the hog, waits for its last launch and frees everything. NULL is
 * fine. */
void gpu_dram_stop(gpu_dram *d);

#endif
