/* plan: which image op runs fused with which text op. The planner
 * characterises every op on the current GPU partition (time alone, FLOP/s
 * and GB/s against the measured roofline, a limiting-resource class),
 * measures candidate fused pairs (complementary classes first, near each
 * other in their chains, only pairs that fit a block), and aligns the two
 * chains by dynamic programming keeping each chain's order: at every step
 * the next image op alone, the next text op alone, or both fused with their
 * best measured strategy. Plans are cached as JSON keyed by model hash, GPU
 * name, SM count and batch. */
#ifndef MMF_PLAN_H
#define MMF_PLAN_H

#include <cuda_runtime.h>
#include <stdio.h>

#include "err.h"
#include "gpu.h"
#include "kernels/mmf_fuse.h"
#include "trace.h"

typedef enum op_class { CLASS_COMPUTE, CLASS_MEMORY, CLASS_LATENCY, op_class_max } op_class;

typedef struct op_char {
	double us;		/* alone, this partition */
	double tflops, gbs;	/* achieved */
	double pct_compute, pct_memory;	/* of the measured roofline */
	op_class cls;
} op_char;

typedef struct plan_step {
	int img, txt;		/* op indices; -1 when the step runs one op alone */
	mmf_fuse fuse;		/* when both */
	double pred_us;		/* measured alone or fused during planning */
} plan_step;

typedef struct gpu_plan {
	plan_step *steps;
	int nsteps, nimg, ntxt;
	double pred_us;		/* sum over steps */
	double alone_us;	/* every op alone, summed (the sequential prediction) */
	int pairs_measured;
	char model_hash[17];
	char gpu[128];
	int sms, batch, strategy;	/* strategy: -1 for auto */
} gpu_plan;

typedef struct plan_opts {
	int strategy;		/* -1 auto, else MMF_FUSE_* only */
	double band;		/* candidate pairs within this fraction of the chains (0.12) */
	int per_op;		/* candidates measured per image op (8) */
	double roof_tflops, roof_gbs;	/* this partition's measured roofline */
	FILE *progress;		/* progress lines, or NULL */
} plan_opts;

const char *op_class_name(op_class c);
const char *fuse_strategy_name(int s);
/* Parses inter, intra-block, intra-thread or auto (-1). */
int fuse_strategy_parse(const char *s);

/* Times op i of a tower alone on stream s: microseconds per launch in a
 * back-to-back batch, median of `iters` batches. */
int plan_time_op(gpu_tower *t, int i, cudaStream_t s, int iters, double *us);
int plan_characterise(gpu_tower *t, cudaStream_t s, const plan_opts *o, op_char *out, mmf_err *err);

int plan_build(gpu_tower *img, gpu_tower *txt, cudaStream_t s, int sms, int batch, const char *gpu,
	       const char *model_hash, const plan_opts *o, gpu_plan **out, mmf_err *err);
/* Enqueues the plan's steps on s (one stream). */
int plan_enqueue(const gpu_plan *p, gpu_tower *img, gpu_tower *txt, cudaStream_t s);
/* The launches plan_enqueue makes, in order, for attributing block records
 * (trace.h): each step's fused pair or single op; with p NULL, the towers'
 * own kernels (trace_launches_chains). Returns how many, with *out
 * malloc'd, or -ENOMEM. */
int plan_trace_launches(const gpu_plan *p, const chain *img, const chain *txt, trace_launch **out);
void plan_print(const gpu_plan *p, gpu_tower *img, gpu_tower *txt, FILE *fp);
void plan_free(gpu_plan *p);

/* JSON cache. plan_load checks the keys against `want` (model hash, GPU,
 * SMs, batch, strategy, op counts), that every op appears once in chain
 * order and, given the towers (img and txt, or both NULL), that they can run
 * its fused steps (plan_check_towers); any mismatch is an error whose
 * message says why (stale or corrupt). */
int plan_save(const gpu_plan *p, const char *path, mmf_err *err);
/* The cache file of the plan keyed like `want` (model hash, GPU, SMs,
 * batch, strategy) under dir. */
void plan_cache_path(const char *dir, const gpu_plan *want, char *buf, size_t len);
/* The plan as the JSON object plan_save writes (a new reference). */
struct json_t;
struct json_t *plan_to_json(const gpu_plan *p);
/* This partition's measured ceilings for the planner: a streaming copy of
 * `bytes` (pick it well above the L2) and a 4096^3 GEMM through our own
 * tensor-core kernel. */
int plan_roofline(int sms, size_t bytes, cudaStream_t s, double *tflops, double *gbs, mmf_err *err);
int plan_load(const char *path, const gpu_plan *want, const gpu_tower *img, const gpu_tower *txt, gpu_plan **out,
	      mmf_err *err);
/* Whether every fused step of p can run on these towers' ops as they are
 * now built (an op lowered to a kernel the fused kernels do not take, as
 * the attention pool's folded ops or the matrix-vector tile, makes a cached
 * plan stale): 0, or
 * -ESTALE with the first step that cannot. */
int plan_check_towers(const gpu_plan *p, const gpu_tower *img, const gpu_tower *txt, mmf_err *err);
/* FNV-1a of a safetensors file's size and header: changes with any tensor's
 * name, shape, dtype or offset; each precision (CLIP_PREC_*) gives another
 * hash, so fp16, int8 and fp32 plans are cached apart. */
int model_file_hash(const char *path, int prec, char out[17], mmf_err *err);

#endif
