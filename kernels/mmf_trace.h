/* mmf_trace.h: per-block trace records that every kernel writes when
 * tracing is on (team.cuh), for per-SM timelines and SM utilisation. */
#ifndef MMF_TRACE_H
#define MMF_TRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* One block of one launch: %globaltimer (ns) at its start (after waiting for
 * its predecessor) and end, the SM it ran on, its index and grid, and part:
 * 0 a plain kernel, 1 / 2 the first / second op of a fused kernel, 3 both. */
typedef struct mmf_trace_rec {
	unsigned long long t0, t1;
	unsigned int sm, block, part, grid;
} mmf_trace_rec;

/* Records go to one slice of the buffer per SM (%smid), each with its own
 * counter: one counter for all blocks serialised every kernel's end on one
 * L2 atomic (measured: +5.8% on a whole H200). */
#define MMF_TRACE_SMS 256	/* %smid values the buffer has slices for */

typedef struct mmf_trace_ctl {
	mmf_trace_rec *buf;	/* device memory, MMF_TRACE_SMS x per_sm records; NULL: off */
	unsigned int per_sm;
	unsigned int *count;	/* device, MMF_TRACE_SMS counters of records claimed (may exceed per_sm) */
} mmf_trace_ctl;

/* Sets the control in every kernel translation unit. 0 or -EIO. */
int mmf_trace_set(const mmf_trace_ctl *c);

#ifdef __cplusplus
}
#endif

#endif
