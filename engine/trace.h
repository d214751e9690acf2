/* trace: per-block GPU timelines. With tracing on, every kernel's blocks
 * write a record (kernels/mmf_trace.h: %globaltimer start and end, %smid,
 * block, grid, which part of a fused kernel) into the slots its launcher
 * handed out in host enqueue order, so the records come launch by launch,
 * each launch's count known from its grid, whatever the streams.
 *
 * From them: SM utilisation (the fraction of SM-time covered by blocks, in
 * total and per tower) and a Chrome trace-event JSON (Perfetto) with one
 * row per SM and one row of launches. */
#ifndef MMF_TRACE_HOST_H
#define MMF_TRACE_HOST_H

#include <cuda_runtime.h>

#include "chain.h"
#include "err.h"
#include "kernels/mmf_trace.h"

enum { TRACE_IMAGE = 0, TRACE_TEXT = 1, TRACE_BOTH = 2 };

typedef struct trace_launch {
	char name[96];		/* "layer1.0.conv2" or "layer1.0.conv2 + block3.attn" */
	int tower;		/* TRACE_IMAGE, TRACE_TEXT, or TRACE_BOTH for a fused kernel */
	int per_block;		/* records each block writes: 2 for intra-block fusion, else 1 */
} trace_launch;

typedef struct trace_util {
	double total, image, text;	/* fractions of nsm x span */
	double span_us;			/* first block start to last block end */
	int records, sms_seen;
} trace_util;

typedef struct gpu_trace gpu_trace;

int gpu_trace_new(unsigned cap, gpu_trace **out, mmf_err *err);
void gpu_trace_free(gpu_trace *t);
/* A trace of records already on the host (no GPU involved): for tests and
 * for records read back some other way. */
int gpu_trace_from_records(const mmf_trace_rec *r, unsigned n, gpu_trace **out, mmf_err *err);
/* Waits for s and turns recording on in every kernel (the launchers hand
 * out slots from 0). */
int gpu_trace_on(gpu_trace *t, cudaStream_t s, mmf_err *err);
/* Waits for s, turns recording off and copies the records to the host. */
int gpu_trace_off(gpu_trace *t, cudaStream_t s, mmf_err *err);
/* Attributes the records (in slot order) to the nl launches of the
 * iteration (in host enqueue order) and computes utilisation over nsm SMs.
 * -EINVAL (message says where) when the records do not match the launches. */
int gpu_trace_analyse(gpu_trace *t, const trace_launch *l, int nl, int nsm, trace_util *u, mmf_err *err);
/* The launches of the towers' own kernels in host enqueue order: every op
 * of img, then every op of txt (either may be NULL), or with two_streams
 * in turn as gpu_towers_enqueue2 enqueues them (chain_turn). Returns how
 * many, with *out malloc'd, or -ENOMEM. (A fusion plan's:
 * plan_trace_launches.) */
int trace_launches_chains(const chain *img, const chain *txt, int two_streams, trace_launch **out);
/* An extra interval for the Chrome trace, on the block records' clock
 * (%globaltimer ns): a host runtime call (TRACE_ROW_HOST, row = thread)
 * or a kernel as the driver saw it (TRACE_ROW_STREAM, row = stream), e.g.
 * from CUPTI. */
enum { TRACE_ROW_HOST = 3, TRACE_ROW_STREAM = 4 };
typedef struct trace_extra {
	int group;		/* TRACE_ROW_HOST or TRACE_ROW_STREAM */
	unsigned row;
	char name[64];
	unsigned long long t0, t1;
} trace_extra;
/* One analysed trace with its launches (read only here). */
typedef struct trace_step {
	const gpu_trace *t;
	const trace_launch *l;
	int nl;
} trace_step;
/* Several steps (one per engine step, in time order) as one Chrome
 * trace-event JSON document (malloc'd), or NULL with err set. */
char *gpu_trace_chrome_steps(const trace_step *st, int n, const char *title, mmf_err *err);
/* The records as they are: in slot order after gpu_trace_off, sorted by
 * start after gpu_trace_analyse. */
const mmf_trace_rec *gpu_trace_records(const gpu_trace *t, unsigned *n);
/* After gpu_trace_analyse: launch i's first block start in *start, for
 * aligning other clocks with the records. Returns 0, or -1 when the
 * launch has no record. */
int gpu_trace_launch_start(const gpu_trace *t, int i, unsigned long long *start);
/* After gpu_trace_analyse: the Chrome trace-event JSON, with the nx extra
 * intervals x (may be NULL) in their own rows. */
int gpu_trace_write_chrome(const gpu_trace *t, const trace_launch *l, int nl, const trace_extra *x, int nx,
			   const char *title, const char *path, mmf_err *err);

#endif
