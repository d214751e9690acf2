/* gpu_part: SM partitions of one GPU through CUDA green contexts, so that a
 * big GPU (H100/H200) can stand in for a small Jetson: `--sms 8` runs
 * everything on 8 SMs. Only SMs are partitioned; L2 and DRAM bandwidth stay
 * those of the whole GPU (docs/PARTITIONS.md).
 *
 * The device's SMs are split exactly once, at gpu_parts_open, into equal
 * groups of the smallest size the architecture allows (the granularity: 8 on
 * Hopper and Blackwell, 4 on Ampere/Orin). A partition of N SMs is the first
 * N/granularity groups; N = 0 ("all") is the whole GPU through the primary
 * context. Partitions therefore nest (the 8-SM one is inside the 16-SM one):
 * they emulate one small device at a time and are not meant to run side by
 * side.
 *
 * Driver functions are looked up through the CUDA runtime
 * (cudaGetDriverEntryPointByVersion), so nothing links libcuda and a machine
 * without a driver gets -ENODEV from gpu_parts_open instead of a loader
 * error.
 *
 * Not thread-safe: open, get and create streams from one thread (setup);
 * the streams themselves may then be used from any thread. */
#ifndef MMF_GPU_PART_H
#define MMF_GPU_PART_H

#include <stddef.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *mmf_stream;	/* a cudaStream_t, as in kernels/mmf_kernels.h */

typedef struct gpu_parts gpu_parts;	/* one device, split once */
typedef struct gpu_part gpu_part;	/* one partition, owned by its gpu_parts */

#define GPU_PART_MAX_STREAMS 4

/* Initialises the driver, reads the SM resource of CUDA device `device` and
 * splits it. Errors: -ENODEV (no driver, no such device), -ENOTSUP (driver
 * or device without green contexts), -EIO and others for driver failures;
 * the message names the driver call and its CUresult. */
int gpu_parts_open(int device, gpu_parts **out, mmf_err *err);
/* Destroys every partition and stream made from p (waiting for their work),
 * then p. NULL is fine. */
void gpu_parts_close(gpu_parts *p);

const char *gpu_parts_device_name(const gpu_parts *p);	/* "NVIDIA H200" */
int gpu_parts_total_sms(const gpu_parts *p);
/* SMs per group; every partition is a multiple of it. */
int gpu_parts_granularity(const gpu_parts *p);
/* Groups the split made; the largest partition has groups x granularity SMs. */
int gpu_parts_groups(const gpu_parts *p);
/* SMs left over by the split (132 = 16 x 8 + 4 on an H200); they belong to
 * no partition but do run "all". */
int gpu_parts_remainder_sms(const gpu_parts *p);
/* The valid sizes, as the error messages list them:
 * "8, 16, 24, ..., 128, or 'all'". Returns the length it wanted to write. */
int gpu_parts_valid_list(const gpu_parts *p, char *buf, size_t len);

/* 0 if `sms` names a partition (0 = all), else -EINVAL with a message that
 * lists the valid values:
 * "--sms 12: on NVIDIA H200 (132 SMs) partitions come in multiples of 8:
 *  8, 16, 24, ..., 128, or 'all'". */
int gpu_parts_check(const gpu_parts *p, int sms, mmf_err *err);

/* Parses a list such as "8,16,32,all" into SM counts (0 for all), checking
 * each against the device as gpu_parts_check does. Returns the count (>= 1)
 * or -EINVAL (bad or empty item, invalid size) / -E2BIG (more than max). */
int gpu_parts_parse_list(const gpu_parts *p, const char *list, int *sms, int max, mmf_err *err);

/* The partition of exactly `sms` SMs (0: the whole GPU), created on first
 * request as a green context over the first sms/granularity groups; the same
 * sms returns the same partition. */
int gpu_part_get(gpu_parts *p, int sms, gpu_part **out, mmf_err *err);

/* The complement of partition `sms` (not 0): a green context over every
 * group it does not use plus the remainder SMs, for work that must stay off
 * the partition's SMs (gpu_dram.h). Same caching as gpu_part_get; its
 * gpu_part_sms is the SMs it got. */
int gpu_part_get_rest(gpu_parts *p, int sms, gpu_part **out, mmf_err *err);

/* SMs [first, first + sms) of the split's groups, for work that runs beside
 * other work on disjoint SMs (mmf-bench's graph-split mode): first and
 * first + sms must be partition sizes (group boundaries); sms = 0 means
 * every SM from `first` on, the remainder included (gpu_part_get_rest);
 * first = 0 is gpu_part_get. Same caching as gpu_part_get. */
int gpu_part_get_span(gpu_parts *p, int first, int sms, gpu_part **out, mmf_err *err);

/* Non-blocking stream idx (0 .. GPU_PART_MAX_STREAMS-1) of the partition,
 * created on first use and owned by it. Kernels launched on it with <<<>>>
 * or cudaLaunchKernel, and graphs captured on it, run on the partition's
 * SMs; memory from cudaMalloc works on it (docs/PARTITIONS.md). */
int gpu_part_stream(gpu_part *p, int idx, mmf_stream *out, mmf_err *err);

/* SMs the partition really has (the driver's count for a green context). */
int gpu_part_sms(const gpu_part *p);
/* Whether it is the whole GPU (no green context). */
int gpu_part_is_whole(const gpu_part *p);
/* "8 SMs" or "all 132 SMs". */
const char *gpu_part_name(const gpu_part *p);

#ifdef __cplusplus
}
#endif

#endif
