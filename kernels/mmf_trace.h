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

typedef struct mmf_trace_ctl {
	mmf_trace_rec *buf;	/* device memory, cap records; NULL: tracing off */
	unsigned int cap;
	unsigned int *count;	/* device counter of records claimed (may exceed cap) */
} mmf_trace_ctl;

/* Sets the control in every kernel translation unit. 0 or -EIO. */
int mmf_trace_set(const mmf_trace_ctl *c);

#ifdef __cplusplus
}
#endif

#endif
