/* gpu_bench: the CUDA half of mmf-bench: execution modes x SM partitions,
 * per-op roofline table, JSON. */
#ifndef MMF_GPU_BENCH_H
#define MMF_GPU_BENCH_H

#include <stdio.h>

#include "engine/chain.h"
#include "engine/model.h"

#define GPU_BENCH_MAX_SPLITS 16	/* --split-sms counts */

typedef struct gpu_bench_opts {
	const char *sms;	/* "8,16,32,all" */
	const char *modes;	/* "seq,streams,graph,graph-streams" */
	int batch, iters, warmup, ops, tune;
	const char *tune_graph;	/* partitions ("8,all") whose GEMMs are tuned again against the whole graph's time; NULL: none */
	unsigned long long seed;
	const char *model_name;
	const char *commit, *date;
	const char *model_path;	/* for the plan cache's model hash */
	int strategy;		/* -1 auto, else MMF_FUSE_* for every fused pair */
	int show_plan;		/* print the plan of each partition */
	int pairs;		/* run the pair microbenchmark too */
	int tune_sms;		/* tune GEMM shapes on a partition of this many SMs (0: the one run on) */
	int split_sms[GPU_BENCH_MAX_SPLITS];	/* graph-split: image SM counts to try */
	int nsplit_sms;		/* how many; 0: half the partition and two groups either side */
	const char *profile;	/* seq or fused: one iteration between cudaProfilerStart/Stop */
	const char *profile_ops;	/* where to write that iteration's kernel -> op list (CSV) */
	const char *trace;	/* Chrome trace of the first partition's fused (else seq) iteration; NULL: no tracing */
	const char *trace_mode;	/* seq, streams or fused: the iteration written to trace instead; NULL: default */
	FILE *json;		/* may be NULL */
	int precision;		/* CLIP_PREC_* (clip_model_load_w) */
	double dram_gbs;	/* > 0: limit each partition's DRAM bandwidth to about this (engine/gpu_dram.h) */
} gpu_bench_opts;

/* Returns 0 when every check passed, 1 when a check failed, 2 for bad
 * options (message printed), -errno for a run-time error (message printed). */
int gpu_bench_run(const gpu_bench_opts *o, clip_model *m, chain *const ch[2]);

#endif
