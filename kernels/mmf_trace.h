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
#define MMF_PROBE_N 4

typedef struct mmf_trace_rec {
	unsigned long long t0, t1;
	unsigned int sm, block, part, grid;
#ifdef MMF_PROBE
	/* Probe builds only (-DMMF_PROBE, host and kernels alike): ns from the
	 * block's start to t0 (the wait for its predecessor), and from t0 to
	 * each of a plain kernel's MMF_PROBE_MARK points (0: not reached). */
	unsigned int wait_ns;
	unsigned int ph[MMF_PROBE_N];
#endif
} mmf_trace_rec;

/* A launch's grid * per_block records follow the previous launch's in the
 * buffer: the launcher (mmf_launch_traced, team.cuh) hands its traced
 * kernel instance a pointer to its first, counted on the host. */
typedef struct mmf_trace_ctl {
	mmf_trace_rec *buf;	/* device memory, cap records; NULL: off */
	unsigned int cap;
} mmf_trace_ctl;

/* Turns the launchers' choice of traced instances on (buf non-NULL: the
 * records go there, counted from 0) or off. Returns 0. */
int mmf_trace_set(const mmf_trace_ctl *c);
/* Slots handed out since mmf_trace_set turned tracing on. */
unsigned int mmf_trace_slots(void);

#ifdef __cplusplus
}
#endif

#endif
