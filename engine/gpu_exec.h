/* gpu_exec: how a server runs the two towers on the GPU. One step takes up
 * to max_batch images and up to max_batch texts (either may be none) and
 * runs them as one CUDA graph launch on an SM partition:
 *
 *  - towers are built at every batch size in {1, 2, 4, ..., max_batch}, so
 *    one request does not pay for a full batch;
 *  - image-only and text-only steps launch that tower's graph;
 *  - a step with both launches a graph of the two towers on two streams,
 *    or, where a fusion plan exists for that batch size and the executor
 *    chose it, the fused plan's graph (one stream, horizontally fused
 *    kernels).
 *
 * Fusion (GPU_FUSE_AUTO) loads or builds a plan per batch size, times the
 * fused graph against the two-stream graph, and keeps the faster one; ON
 * always uses the plan, OFF never plans. Graphs for (image batch, text
 * batch) combinations are captured on first use.
 *
 * Not thread-safe: one thread (the server's worker) drives it. */
#ifndef MMF_GPU_EXEC_H
#define MMF_GPU_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "err.h"
#include "trace.h"

typedef enum gpu_fuse_mode { GPU_FUSE_AUTO, GPU_FUSE_ON, GPU_FUSE_OFF, gpu_fuse_mode_max } gpu_fuse_mode;

typedef struct gpu_exec gpu_exec;

typedef struct gpu_exec_opts {
	int sms;		/* SM partition, 0 for the whole GPU */
	int max_batch;
	gpu_fuse_mode fuse;
	const char *model_path;	/* its header hash keys the plan cache */
	const char *plan_dir;	/* where plans are cached; NULL: plan every start */
	int precision;		/* CLIP_PREC_* (clip_model_load_w) */
	int util_every;		/* trace one step each time this many images+texts have run (0: never) */
	void (*progress)(const char *line);	/* setup progress, or NULL */
} gpu_exec_opts;

const char *gpu_fuse_mode_name(gpu_fuse_mode m);
/* "auto", "on" or "off"; -1 for anything else. */
int gpu_fuse_mode_parse(const char *s);

int gpu_exec_new(const chain *img, const chain *txt, const gpu_exec_opts *o, gpu_exec **out, mmf_err *err);
void gpu_exec_free(gpu_exec *g);

/* Embeds ni images (pixels [ni][3][S][S]) and nt texts (tokens
 * [nt][context]); 0 <= ni, nt <= max_batch. Writes L2-normalised
 * embeddings to img_emb / txt_emb and sets *fused to whether the step ran
 * fused kernels and *gpu_us to its GPU time (CUDA events). */
int gpu_exec_run(gpu_exec *g, const float *px, int ni, const int32_t *tok, int nt, float *img_emb, float *txt_emb,
		 int *fused, double *gpu_us, mmf_err *err);

/* SM utilisation, sampled: each time util_every images and texts have run
 * since the last sample, the next step runs its kernels traced (launched
 * one by one instead of as a graph, with per-block records: trace.h) and
 * its utilisation is kept. Returns how many samples were taken, with the
 * last in *last (zeros before the first). A sample that cannot be taken
 * (too many blocks for the record buffer) is skipped and said once through
 * the progress callback. */
int gpu_exec_util(const gpu_exec *g, trace_util *last);

/* A trace window: from gpu_exec_trace_begin (-EBUSY if one is open) every
 * step runs traced and is kept (up to 60000 block records; later steps run
 * untraced and *truncated is set) until gpu_exec_trace_end, which returns
 * the steps as one Chrome trace-event JSON document (malloc'd; NULL with
 * err set on failure) and closes the window. */
int gpu_exec_trace_begin(gpu_exec *g);
char *gpu_exec_trace_end(gpu_exec *g, unsigned *steps, unsigned long long *records, int *truncated, mmf_err *err);

/* "NVIDIA H200, all 132 SMs" */
const char *gpu_exec_device(const gpu_exec *g);
/* Device bytes this executor holds (weights and activation arenas). */
size_t gpu_exec_bytes(const gpu_exec *g);
/* Device memory in use by every process, from cudaMemGetInfo (0 if unknown). */
size_t gpu_exec_device_used(const gpu_exec *g);
/* What the executor does, as a JSON document (malloc'd; NULL on OOM):
 * device, partition, batch sizes and, per batch size, the execution chosen
 * with the timings that chose it and the fusion plan's steps. */
char *gpu_exec_plan_json(const gpu_exec *g);

#endif
