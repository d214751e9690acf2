/* The CUDA half of mmf-bench. For each SM partition: measure the roofline
 * (a streaming copy and a large GEMM of our own), build both towers (GEMM
 * tile configurations tuned on that partition), check the embeddings
 * against the CPU backend, then time every execution mode for the image
 * tower alone, the text tower alone and both, and check that every mode's
 * outputs are bitwise equal. */
#include "config.h"
#include "engine/sortcmp.h"
#include "gpu_bench.h"
#include "cupti.h"

#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/cpu.h"
#include "engine/gpu.h"
#include "engine/gpu_dram.h"
#include "engine/gpu_part.h"
#include "engine/plan.h"
#include "engine/trace.h"
#include "engine/synth.h"
#include "kernels/mmf_kernels.h"

enum { MODE_SEQ, MODE_STREAMS, MODE_GRAPH, MODE_GRAPH_STREAMS, MODE_FUSED, MODE_FUSED_GRAPH, MODE_GRAPH_SPLIT, mode_max };
static const char *mode_names[mode_max] = {"seq", "streams", "graph", "graph-streams", "fused", "fused-graph", "graph-split"};
enum { WHAT_IMAGE, WHAT_TEXT, WHAT_BOTH, what_max };
static const char *what_names[what_max] = {"image", "text", "both"};

#define CUDA_OR(call, what)                                                                                 \
	do {                                                                                                \
		cudaError_t e_ = (call);                                                                    \
		if (e_ != cudaSuccess) {                                                                    \
			fprintf(stderr, "mmf-bench: %s: %s: %s\n", what, #call, cudaGetErrorString(e_));     \
			rc = -EIO;                                                                          \
			goto out;                                                                           \
		}                                                                                           \
	} while (0)

static float pctf(float *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, mmf_cmp_float);
	double idx = p * (n - 1);
	int lo = (int)idx;
	return lo + 1 < n ? (float)(v[lo] + (idx - lo) * (v[lo + 1] - v[lo])) : v[lo];
}

typedef struct run_ctx {
	gpu_tower *tw[2];
	cudaStream_t s[2];
	cudaEvent_t fork, join;
	gpu_plan *plan;
	/* graph-split, both towers: recorded where each tower's work ends
	 * (image on s[0], text on s[1]), before the join. */
	cudaEvent_t end[2];
} run_ctx;

/* Enqueues one iteration of (mode, what) on r->s[0] (forking to s[1] for
 * the two-stream modes). Graph modes are captured from this. */
static int enqueue(run_ctx *r, int mode, int what)
{
	int two = (mode == MODE_STREAMS || mode == MODE_GRAPH_STREAMS || mode == MODE_GRAPH_SPLIT) && what == WHAT_BOTH;
	int rc = 0;
	if (mode == MODE_FUSED || mode == MODE_FUSED_GRAPH)
		return plan_enqueue(r->plan, r->tw[0], r->tw[1], r->s[0]);
	if (what == WHAT_IMAGE)
		return gpu_tower_enqueue(r->tw[0], r->s[0]);
	if (what == WHAT_TEXT)
		return gpu_tower_enqueue(r->tw[1], r->s[0]);
	if (!two) {
		if ((rc = gpu_tower_enqueue(r->tw[0], r->s[0])) < 0)
			return rc;
		return gpu_tower_enqueue(r->tw[1], r->s[0]);
	}
	return gpu_towers_enqueue2(r->tw[0], r->tw[1], r->s[0], r->s[1], r->fork, r->join, r->end[0] ? r->end : NULL);
}

/* Captures one iteration of (mode, what) as a graph and instantiates it.
 * While tracing is on, the traced kernel instances are captured with their
 * record slots, so every replay rewrites the same records. graph-split's
 * graph spans two green contexts' streams (docs/PARTITIONS.md). */
static int capture(run_ctx *r, int mode, int what, cudaGraphExec_t *exec)
{
	cudaGraph_t graph = NULL;
	*exec = NULL;
	cudaError_t e = cudaStreamBeginCapture(r->s[0], cudaStreamCaptureModeThreadLocal);
	int rc = e == cudaSuccess ? enqueue(r, mode, what) : -EIO;
	if (e == cudaSuccess)
		e = cudaStreamEndCapture(r->s[0], &graph);
	if (rc < 0 || e != cudaSuccess) {
		fprintf(stderr, "mmf-bench: capturing %s/%s failed: %s\n", mode_names[mode], what_names[what], cudaGetErrorString(e));
		if (graph)
			cudaGraphDestroy(graph);
		return -EIO;
	}
	e = cudaGraphInstantiate(exec, graph, 0);
	cudaGraphDestroy(graph);
	if (e != cudaSuccess) {
		fprintf(stderr, "mmf-bench: instantiating %s/%s: %s\n", mode_names[mode], what_names[what], cudaGetErrorString(e));
		*exec = NULL;
		return -EIO;
	}
	return 0;
}

/* One iteration: a replay of exec when given, else (mode, what) enqueued. */
static int run_once(run_ctx *r, int mode, int what, cudaGraphExec_t exec)
{
	if (!exec)
		return enqueue(r, mode, what);
	cudaError_t e = cudaGraphLaunch(exec, r->s[0]);
	if (e != cudaSuccess) {
		fprintf(stderr, "mmf-bench: graph launch (%s/%s): %s\n", mode_names[mode], what_names[what], cudaGetErrorString(e));
		return -EIO;
	}
	return 0;
}

/* GPU time (events), and per iteration: kernel launches, host time spent
 * launching (enqueue or graph launch) and host wall time including the
 * synchronisation. */
typedef struct timing {
	float p10, p50, p90;
	int launches;
	double launch_us, wall_ms;
	float end50[2];	/* with run_ctx.end: median time to each tower's end */
} timing;

static double host_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int time_mode(run_ctx *r, int mode, int what, int warmup, int iters, timing *t)
{
	cudaGraphExec_t exec = NULL;
	cudaEvent_t a = NULL, b = NULL;
	float *ms = calloc((size_t)iters, sizeof *ms), *ends = calloc((size_t)iters * 2, sizeof *ends);
	double *lus = calloc((size_t)iters, sizeof *lus), *wus = calloc((size_t)iters, sizeof *wus);
	int rc = 0;
	if (!ms || !ends || !lus || !wus) {
		free(ms), free(ends), free(lus), free(wus);
		return -ENOMEM;
	}
	int ni = gpu_tower_nops(r->tw[0]), nt = gpu_tower_nops(r->tw[1]);
	t->launches = mode == MODE_FUSED || mode == MODE_FUSED_GRAPH ? r->plan->nsteps
		    : what == WHAT_IMAGE ? ni : what == WHAT_TEXT ? nt : ni + nt;
	if ((mode == MODE_GRAPH || mode == MODE_GRAPH_STREAMS || mode == MODE_FUSED_GRAPH || mode == MODE_GRAPH_SPLIT) &&
	    (rc = capture(r, mode, what, &exec)) < 0)
		goto out;
	CUDA_OR(cudaEventCreate(&a), "events");
	CUDA_OR(cudaEventCreate(&b), "events");
	for (int it = -warmup; it < iters; it++) {
		double h0 = host_us();
		CUDA_OR(cudaEventRecord(a, r->s[0]), "event");
		if ((rc = run_once(r, mode, what, exec)) < 0)
			goto out;
		double h1 = host_us();
		CUDA_OR(cudaEventRecord(b, r->s[0]), "event");
		CUDA_OR(cudaEventSynchronize(b), "run");
		double h2 = host_us();
		if (it >= 0) {
			CUDA_OR(cudaEventElapsedTime(&ms[it], a, b), "event time");
			lus[it] = h1 - h0, wus[it] = h2 - h0;
			for (int e = 0; e < 2 && r->end[0]; e++)
				CUDA_OR(cudaEventElapsedTime(&ends[e * iters + it], a, r->end[e]), "event time");
		}
	}
	for (int e = 0; e < 2 && r->end[0]; e++)
		t->end50[e] = pctf(ends + e * iters, iters, 0.5);
	t->p10 = pctf(ms, iters, 0.1);
	t->p50 = pctf(ms, iters, 0.5);
	t->p90 = pctf(ms, iters, 0.9);
	qsort(lus, (size_t)iters, sizeof *lus, mmf_cmp_double);
	qsort(wus, (size_t)iters, sizeof *wus, mmf_cmp_double);
	t->launch_us = lus[iters / 2];
	t->wall_ms = wus[iters / 2] / 1e3;
out:
	if (exec)
		cudaGraphExecDestroy(exec);
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
	free(ms), free(ends), free(lus), free(wus);
	return rc;
}

/* What --tune-graph did on one partition (or graph-split's towers). */
typedef struct graph_tune {
	int gemms, changed, timed;
	float before_ms, after_ms;
	double seconds;
} graph_tune;

/* --tune-graph: coordinate descent over both towers' GEMM shapes against
 * the time of one two-tower iteration of `mode` (graph-streams, or
 * graph-split on its own towers). For each GEMM in turn, every shape it may
 * take on its SMs (sms[tower]) is timed in the whole graph (median of TG_REPS
 * replays) after its current shape, timed again first; a candidate that
 * beats it by more than 0.3% is timed twice more against it, alternating,
 * and kept if it still wins on the sum by more than 0.2% (the min of a
 * dozen noisy medians is biased low; the second look is not). Up to TG_PASSES
 * passes over the GEMMs, fewer if one changes nothing. The per-GEMM tuner
 * times each GEMM alone, five launches back to back; here a shape is judged
 * by what it does to the chains it runs in. */
enum { TG_MAXC = 40, TG_REPS = 40, TG_PASSES = 2 };

/* Gives op i of tower t shape (c, s) and times the whole graph with it. */
static int tg_time(run_ctx *r, int mode, int t, int i, int c, int s, graph_tune *g, float *ms)
{
	mmf_err err = {0};
	timing tm = {0};
	int rc = gpu_tower_set_gemm(r->tw[t], i, c, s, &err);
	if (rc < 0) {
		fprintf(stderr, "mmf-bench: --tune-graph: %s\n", err.msg);
		return rc;
	}
	if ((rc = time_mode(r, mode, WHAT_BOTH, 2, TG_REPS, &tm)) < 0)
		return rc;
	g->timed++;
	*ms = tm.p50;
	return 0;
}

/* One GEMM's step of the descent: leaves op i of tower t in its best shape
 * among the n (cfg, sp); *changed says whether that is a new one. */
static int tg_step(run_ctx *r, int mode, int t, int i, const int *cfg, const int *sp, int n, graph_tune *g, int *changed)
{
	const int c0 = gpu_tower_op_cfg(r->tw[t], i), s0 = gpu_tower_op_splits(r->tw[t], i);
	int bc = c0, bs = s0, rc;
	float cur, best, v;
	if ((rc = tg_time(r, mode, t, i, c0, s0, g, &cur)) < 0)
		return rc;
	best = cur;
	for (int k = 0; k < n; k++)
		if (cfg[k] != c0 || sp[k] != s0) {
			if ((rc = tg_time(r, mode, t, i, cfg[k], sp[k], g, &v)) < 0)
				return rc;
			if (v < best)
				best = v, bc = cfg[k], bs = sp[k];
		}
	float sc = 0, sb = 0;	/* a second look, alternating */
	for (int rep = 0; rep < 2 && best < cur * 0.997f; rep++) {
		if ((rc = tg_time(r, mode, t, i, c0, s0, g, &v)) < 0)
			return rc;
		sc += v;
		if ((rc = tg_time(r, mode, t, i, bc, bs, g, &v)) < 0)
			return rc;
		sb += v;
	}
	*changed = best < cur * 0.997f && sb < sc * 0.998f;
	if (!*changed)
		bc = c0, bs = s0;
	mmf_err err = {0};
	if ((rc = gpu_tower_set_gemm(r->tw[t], i, bc, bs, &err)) < 0)
		fprintf(stderr, "mmf-bench: --tune-graph: %s\n", err.msg);
	return rc;
}

static int tune_graph(run_ctx *r, int mode, const int sms[2], graph_tune *g)
{
	timing tm = {0};
	int rc, cfg[TG_MAXC], sp[TG_MAXC];
	double t0 = host_us();
	memset(g, 0, sizeof *g);
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < gpu_tower_nops(r->tw[t]); i++)
			g->gemms += gpu_tower_gemm_choices(r->tw[t], i, sms[t], cfg, sp, TG_MAXC) > 1;
	if ((rc = time_mode(r, mode, WHAT_BOTH, 5, TG_REPS, &tm)) < 0)
		return rc;
	g->before_ms = tm.p50;
	for (int pass = 0, changed = 1; pass < TG_PASSES && changed; pass++) {
		int seen = 0;
		changed = 0;
		for (int t = 0; t < 2; t++)
			for (int i = 0; i < gpu_tower_nops(r->tw[t]); i++) {
				int n = gpu_tower_gemm_choices(r->tw[t], i, sms[t], cfg, sp, TG_MAXC), ch = 0;
				if (n < 2)
					continue;
				if ((rc = tg_step(r, mode, t, i, cfg, sp, n, g, &ch)) < 0)
					return rc;
				changed += ch;
				if (++seen % 20 == 0 || seen == g->gemms) {
					printf("   tune-graph pass %d: %d of %d GEMMs, %d shapes changed, %.0f s\n", pass + 1, seen, g->gemms,
					       changed, (host_us() - t0) / 1e6);
					fflush(stdout);
				}
			}
		g->changed += changed;
	}
	if ((rc = time_mode(r, mode, WHAT_BOTH, 5, TG_REPS, &tm)) < 0)
		return rc;
	g->after_ms = tm.p50;
	g->seconds = (host_us() - t0) / 1e6;
	printf("   tune-graph (%s): %d GEMMs, %d shape changes, %d graphs timed in %.0f s: %.3f -> %.3f ms (medians of %d)\n",
	       mode_names[mode], g->gemms, g->changed, g->timed, g->seconds, g->before_ms, g->after_ms, (int)TG_REPS);
	return 0;
}

/* g as a JSON object into b (n bytes, 160 are enough). */
static void json_graph_tune(char *b, size_t n, const graph_tune *g)
{
	snprintf(b, n, "{\"gemms\": %d, \"changed\": %d, \"shapes_timed\": %d, \"seconds\": %.1f, \"before_ms\": %.4f, \"after_ms\": %.4f}",
		 g->gemms, g->changed, g->timed, g->seconds, g->before_ms, g->after_ms);
}

typedef struct roof { double gbs, tflops; } roof;

/* Measured ceilings of this partition: a 1 GiB streaming copy (bytes read
 * plus written) and a 4096^3 GEMM through our own tensor-core kernel. */
static int measure_roofline(int sms, cudaStream_t s, roof *out)
{
	mmf_err err = {0};
	int rc = plan_roofline(sms, (size_t)1 << 30, s, &out->tflops, &out->gbs, &err);
	if (rc < 0)
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
	return rc;
}

static int parse_modes(const char *list, int *modes)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	int n = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k = -1;
		for (int i = 0; i < mode_max; i++)
			if (!strcmp(t, mode_names[i]))
				k = i;
		if (k < 0) {
			fprintf(stderr, "mmf-bench: --modes: unknown mode '%s' (expected seq, streams, graph, graph-streams, fused, "
				"fused-graph or graph-split)\n", t);
			return -1;
		}
		modes[n++] = k;
		if (n == mode_max)
			break;
	}
	return n;
}

static double cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;
	for (int i = 0; i < n; i++)
		ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
	return ab / (sqrt(aa * bb) + 1e-300);
}

/* Copies both towers' B embeddings (tower t's from stream s[t]) into got
 * and gives the smallest cosine against the CPU's ref. */
static int both_outputs(gpu_tower *const tw[2], const cudaStream_t s[2], int B, int E, float *const got[2],
			float *const ref[2], double *cmin)
{
	mmf_err err = {0};
	*cmin = 1;
	for (int t = 0; t < 2; t++) {
		int rc = gpu_tower_get_output(tw[t], got[t], B, s[t], &err);
		if (rc < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			return rc;
		}
		for (int i = 0; i < B; i++) {
			double cs = cosine(got[t] + (size_t)i * E, ref[t] + (size_t)i * E, E);
			*cmin = cs < *cmin ? cs : *cmin;
		}
	}
	return 0;
}

/* Op i's GEMM shape as "<tile>x<splits>" (e.g. "Sx4"), or "-" for an op
 * that is not a GEMM. */
static void shape_name(const gpu_tower *tw, int i, char *buf, size_t n)
{
	int c = gpu_tower_op_cfg(tw, i);
	if (c < 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%cx%d", "LMSWN"[c], gpu_tower_op_splits(tw, i));
}

/* The GEMM shapes the tuner picked for both towers (they can differ run to
 * run) as a JSON object: {"image": ["Sx4", "-", ...], "text": [...]}. */
static void json_shapes(FILE *f, gpu_tower *const tw[2])
{
	fputc('{', f);
	for (int t = 0; t < 2; t++) {
		fprintf(f, "%s\"%s\": [", t ? ", " : "", tower_name((tower)t));
		for (int i = 0; i < gpu_tower_nops(tw[t]); i++) {
			char sh[16];
			shape_name(tw[t], i, sh, sizeof sh);
			fprintf(f, "%s\"%s\"", i ? ", " : "", sh);
		}
		fputc(']', f);
	}
	fputc('}', f);
}

/* FLOPs and minimal bytes of the attention pool's two ops when folded
 * (kernels/pool_fold.cuh), which do other work than the chain's k/v linear
 * and attention: pool_qk reads Wk once against the query (C x C MACs) and
 * writes the folded query (heads x C floats); pool_fold scores and sums
 * the tokens per head (2 x heads x T x C MACs) and applies Wv (C x C). */
static void folded_cost(const chain *ch, int i, int kind, int batch, double *fl, double *by)
{
	const op *o = &ch->ops[i];
	if (kind == MMF_OP_POOL_QK) {
		int heads = 1;
		for (int j = i + 1; j < ch->nops; j++)
			if (ch->ops[j].kind == OP_ATTN_POOL && ch->ops[j].in2 == o->out)
				heads = ch->ops[j].heads;
		const double C = o->k_in;
		*fl = 2.0 * C * C * batch;
		*by = C * C * 2 + batch * C * 2 + (double)batch * heads * C * 4;
	} else if (kind == MMF_OP_POOL_FOLD) {
		const double C = o->width, T = o->tokens, H = o->heads;
		*fl = 2.0 * (2 * H * T * C + C * C) * batch;
		*by = C * C * 2 + batch * T * C * 2 + batch * H * C * 4 + batch * C * 2;
	}
}

static int per_op_table(run_ctx *r, const roof *rf, int batch, int iters, FILE *json)
{
	int rc = 0;
	cudaEvent_t a = NULL, b = NULL;
	CUDA_OR(cudaEventCreate(&a), "ops");
	CUDA_OR(cudaEventCreate(&b), "ops");
	printf("\n  per-op (seq, one stream, median of %d): %% of the measured roofline = time floor / time,\n"
	       "  floor = max(FLOPs / %.0f TFLOP/s, bytes / %.0f GB/s)\n", iters, rf->tflops, rf->gbs);
	printf("  %-6s %4s %-24s %-11s %6s %9s %9s %9s %7s  %s\n", "tower", "#", "op", "kind", "cfg", "us", "TFLOP/s",
	       "GB/s", "%roof", "bound");
	if (json)
		fprintf(json, ",\n      \"ops\": [\n");
	int firstop = 1;
	for (int t = 0; t < 2; t++) {
		gpu_tower *tw = r->tw[t];
		const chain *ch = gpu_tower_chain(tw);
		float *ms = calloc((size_t)iters, sizeof *ms);
		for (int i = 0; i < ch->nops; i++) {
			for (int it = -3; it < iters; it++) {
				CUDA_OR(cudaEventRecord(a, r->s[0]), "ops");
				if ((rc = gpu_tower_enqueue_op(tw, i, r->s[0])) < 0)
					goto out;
				CUDA_OR(cudaEventRecord(b, r->s[0]), "ops");
				CUDA_OR(cudaEventSynchronize(b), "ops");
				if (it >= 0)
					cudaEventElapsedTime(&ms[it], a, b);
			}
			const op *o = &ch->ops[i];
			const int kind = gpu_tower_desc(tw, i)->kind;
			double us = pctf(ms, iters, 0.5) * 1e3, fl = o->flops * batch, by = op_bytes(o, batch, 2);
			folded_cost(ch, i, kind, batch, &fl, &by);
			double tf = fl / (us * 1e-6) / 1e12, gb = by / (us * 1e-6) / 1e9;
			double tc = fl / (rf->tflops * 1e12), tb = by / (rf->gbs * 1e9);
			double floor = tc > tb ? tc : tb, pct = 100.0 * floor / (us * 1e-6);
			const char *bound = tc > tb ? "compute" : "memory";
			char cfgs[16];
			shape_name(tw, i, cfgs, sizeof cfgs);
			/* an op lowered to another kernel (pool_fold.cuh, gemv.cuh) is named by it */
			const char *kname = kind >= MMF_OP_POOL_QK ? mmf_op_kind_name(kind) : op_kind_name(o->kind);
			printf("  %-6s %4d %-24s %-11s %6s %9.2f %9.2f %9.1f %6.1f%%  %s\n", tower_name(ch->tower), i, o->name,
			       kname, cfgs, us, tf, gb, pct, bound);
			if (json)
				fprintf(json, "%s        {\"tower\": \"%s\", \"index\": %d, \"name\": \"%s\", \"kind\": \"%s\", \"gemm_cfg\": %d, \"splits\": %d, "
					"\"us\": %.3f, \"flops\": %.0f, \"bytes\": %.0f, \"tflops\": %.4f, \"gbs\": %.2f, \"pct_roofline\": %.2f, \"bound\": \"%s\"}",
					firstop ? "" : ",\n", tower_name(ch->tower), i, o->name, kname,
					gpu_tower_op_cfg(tw, i), gpu_tower_op_splits(tw, i), us, fl, by, tf, gb, pct, bound);
			firstop = 0;
		}
		free(ms);
	}
	if (json)
		fprintf(json, "\n      ]");
out:
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
	return rc;
}

/* ------------------------------------------------------------ --pairs */

#define PAIR_REPS 10

typedef struct pair_run {
	int mode;	/* 0 sequential, 1 two streams, 2 fused */
	gpu_tower *ta, *tb;
	int ia, ib;
	mmf_fuse f;
	run_ctx *r;
} pair_run;

static int pair_once(pair_run *p)
{
	cudaStream_t s0 = p->r->s[0], s1 = p->r->s[1];
	int rc = 0;
	if (p->mode == 1 && (cudaEventRecord(p->r->fork, s0) != cudaSuccess || cudaStreamWaitEvent(s1, p->r->fork, 0) != cudaSuccess))
		return -EIO;
	for (int k = 0; k < PAIR_REPS && rc == 0; k++) {
		if (p->mode == 2)
			rc = mmf_fused_launch(gpu_tower_desc(p->ta, p->ia), gpu_tower_desc(p->tb, p->ib), &p->f, (mmf_stream)s0);
		else if ((rc = gpu_tower_enqueue_op(p->ta, p->ia, s0)) == 0)
			rc = gpu_tower_enqueue_op(p->tb, p->ib, p->mode == 1 ? s1 : s0);
	}
	if (rc == 0 && p->mode == 1 && (cudaEventRecord(p->r->join, s1) != cudaSuccess || cudaStreamWaitEvent(s0, p->r->join, 0) != cudaSuccess))
		return -EIO;
	return rc;
}

/* Median microseconds per (A, B) over 25 batches of PAIR_REPS. */
static int pair_time(pair_run *p, double *us)
{
	cudaEvent_t a, b;
	float v[25];
	int rc = 0;
	cudaEventCreate(&a), cudaEventCreate(&b);
	for (int it = -3; it < 25 && rc == 0; it++) {
		cudaEventRecord(a, p->r->s[0]);
		rc = pair_once(p);
		cudaEventRecord(b, p->r->s[0]);
		if (rc == 0 && cudaEventSynchronize(b) != cudaSuccess)
			rc = -EIO;
		if (rc == 0 && it >= 0) {
			cudaEventElapsedTime(&v[it], a, b);
			v[it] *= 1e3f / PAIR_REPS;
		}
	}
	cudaEventDestroy(a), cudaEventDestroy(b);
	if (rc == 0)
		*us = pctf(v, 25, 0.5);
	return rc;
}

static int op_index(const chain *c, const char *name)
{
	for (int i = 0; i < c->nops; i++)
		if (!strcmp(c->ops[i].name, name))
			return i;
	return -1;
}

static op_class classify(gpu_tower *t, int i, cudaStream_t s, const roof *rf, double *us)
{
	const op *o = &gpu_tower_chain(t)->ops[i];
	plan_time_op(t, i, s, 15, us);
	double sec = *us * 1e-6, b = gpu_tower_batch(t);
	double pc = 100 * o->flops * b / sec / 1e12 / rf->tflops, pm = 100 * op_bytes(o, (int)b, 2) / sec / 1e9 / rf->gbs;
	return pc < 50 && pm < 50 ? CLASS_LATENCY : pc >= pm ? CLASS_COMPUTE : CLASS_MEMORY;
}

static int pairs_bench(run_ctx *r, gpu_tower *img2, const roof *rf, FILE *json)
{
	static const char *texts[] = {"block0.attn.qkv", "block0.mlp.fc", "block0.attn"};
	const chain *ci = gpu_tower_chain(r->tw[0]), *ct = gpu_tower_chain(r->tw[1]);
	int rc = 0, first = 1;
	printf("\n   pairs (us per A+B, median of 25 batches of %d): best strategy at its best split\n", PAIR_REPS);
	printf("   %-16s %-17s %-15s %8s %8s %8s %8s %8s  %-18s %6s %6s\n", "A (image)", "B", "classes", "seq", "2 streams",
	       "inter", "intra-b", "intra-t", "best", "x seq", "x strm");
	if (json)
		fprintf(json, ",\n      \"pairs\": [");
	for (int stage = 1; stage <= 4; stage++)
		for (int t = 0; t <= 3; t++) {
			char an[40], bn[40];
			snprintf(an, sizeof an, "layer%d.1.conv2", stage);
			if (t < 3)
				snprintf(bn, sizeof bn, "%s", texts[t]);
			else
				snprintf(bn, sizeof bn, "layer%d.2.conv2", stage);	/* the same-resource control */
			gpu_tower *tb = t < 3 ? r->tw[1] : img2;
			int ia = op_index(ci, an), ib = op_index(t < 3 ? ct : ci, bn);
			if (ia < 0 || ib < 0)
				continue;
			double ua, ub;
			op_class ca = classify(r->tw[0], ia, r->s[0], rf, &ua), cb = classify(tb, ib, r->s[0], rf, &ub);
			pair_run pr = {.ta = r->tw[0], .tb = tb, .ia = ia, .ib = ib, .r = r};
			double seq, strm, best_s[MMF_FUSE_STRATEGIES] = {INFINITY, INFINITY, INFINITY};
			mmf_fuse best_f[MMF_FUSE_STRATEGIES] = {{0}};
			pr.mode = 0;
			if ((rc = pair_time(&pr, &seq)) < 0)
				return rc;
			pr.mode = 1;
			if ((rc = pair_time(&pr, &strm)) < 0)
				return rc;
			static const int splits[][2] = {{1, 1}, {2, 1}, {1, 2}, {3, 1}, {1, 3}};
			mmf_fuse cands[7] = {{.strategy = MMF_FUSE_INTER}, {.strategy = MMF_FUSE_INTRA_THREAD}};
			for (int k = 0; k < 5; k++)
				cands[2 + k] = (mmf_fuse){.strategy = MMF_FUSE_INTRA_BLOCK, .teams_a = splits[k][0], .teams_b = splits[k][1]};
			for (int k = 0; k < 7; k++) {
				double us;
				pr.mode = 2, pr.f = cands[k];
				if (mmf_fuse_check(gpu_tower_desc(pr.ta, ia), gpu_tower_desc(tb, ib), &cands[k], NULL, NULL) < 0)
					continue;
				if ((rc = pair_time(&pr, &us)) < 0)
					return rc;
				if (us < best_s[cands[k].strategy])
					best_s[cands[k].strategy] = us, best_f[cands[k].strategy] = cands[k];
			}
			int bs = 0;
			for (int k = 1; k < MMF_FUSE_STRATEGIES; k++)
				if (best_s[k] < best_s[bs])
					bs = k;
			int occ = 0;
			mmf_fused_occupancy(gpu_tower_desc(pr.ta, ia), gpu_tower_desc(tb, ib), &best_f[bs], &occ);
			char bdesc[40];
			if (bs == MMF_FUSE_INTRA_BLOCK)
				snprintf(bdesc, sizeof bdesc, "intra-block %d:%d", best_f[bs].teams_a, best_f[bs].teams_b);
			else
				snprintf(bdesc, sizeof bdesc, "%s", fuse_strategy_name(bs));
			char cls[24];
			snprintf(cls, sizeof cls, "%s/%s", op_class_name(ca), op_class_name(cb));
			printf("   %-16s %-17s %-15s %8.2f %8.2f %8.2f %8.2f %8.2f  %-18s %6.2f %6.2f\n", an, bn, cls, seq, strm,
			       best_s[0], best_s[1], best_s[2], bdesc, seq / best_s[bs], strm / best_s[bs]);
			if (json)
				fprintf(json, "%s\n        {\"a\": \"%s\", \"b\": \"%s\", \"class_a\": \"%s\", \"class_b\": \"%s\", "
					"\"a_alone_us\": %.3f, \"b_alone_us\": %.3f, \"seq_us\": %.3f, \"streams_us\": %.3f, "
					"\"inter_us\": %.3f, \"intra_block_us\": %.3f, \"intra_thread_us\": %.3f, \"best\": \"%s\", "
					"\"best_blocks_per_sm\": %d, \"speedup_vs_seq\": %.3f, \"speedup_vs_streams\": %.3f}",
					first ? "" : ",", an, bn, op_class_name(ca), op_class_name(cb), ua, ub, seq, strm, best_s[0],
					best_s[1], best_s[2], bdesc, occ, seq / best_s[bs], strm / best_s[bs]);
			first = 0;
		}
	if (json)
		fprintf(json, "\n      ]");
	return 0;
}

/* One iteration of seq or fused between cudaProfilerStart/Stop, for
 * tools/ncu_metrics.sh, and the list of what each launch ran, in order. */
static int profile_once(const gpu_bench_opts *o, run_ctx *r)
{
	int fused = !strcmp(o->profile, "fused");
	FILE *fp = fopen(o->profile_ops, "w");
	if (!fp) {
		fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", o->profile_ops, strerror(errno));
		return -errno;
	}
	const chain *ci = gpu_tower_chain(r->tw[0]), *ct = gpu_tower_chain(r->tw[1]);
	fprintf(fp, "launch,mode,image_op,text_op,name,flops,bytes\n");
	int n = 0, B = gpu_tower_batch(r->tw[0]);
	if (fused) {
		for (int k = 0; k < r->plan->nsteps; k++) {
			const plan_step *st = &r->plan->steps[k];
			const op *a = st->img >= 0 ? &ci->ops[st->img] : NULL, *b = st->txt >= 0 ? &ct->ops[st->txt] : NULL;
			fprintf(fp, "%d,fused,%d,%d,%s%s%s,%.0f,%.0f\n", n++, st->img, st->txt, a ? a->name : "", a && b ? "+" : "",
				b ? b->name : "", (a ? a->flops * B : 0) + (b ? b->flops * B : 0),
				(a ? op_bytes(a, B, 2) : 0) + (b ? op_bytes(b, B, 2) : 0));
		}
	} else {
		for (int t = 0; t < 2; t++) {
			const chain *c = t ? ct : ci;
			for (int i = 0; i < c->nops; i++)
				fprintf(fp, "%d,seq,%d,%d,%s,%.0f,%.0f\n", n++, t ? -1 : i, t ? i : -1, c->ops[i].name,
					c->ops[i].flops * B, op_bytes(&c->ops[i], B, 2));
		}
	}
	fclose(fp);
	int rc = 0;
	cudaDeviceSynchronize();
	cudaProfilerStart();
	rc = enqueue(r, fused ? MODE_FUSED : MODE_SEQ, WHAT_BOTH);
	cudaDeviceSynchronize();
	cudaProfilerStop();
	printf("   profiled one %s iteration: %d launches, listed in %s\n", o->profile, n, o->profile_ops);
	return rc;
}

/* One more traced iteration of mode with CUPTI recording the host side:
 * runtime calls per thread and kernels per stream, moved onto the block
 * records' clock by the median offset between each kernel's CUPTI start
 * and its first block's start (kernels and launches pair up in order on
 * one stream). Leaves gt analysed for this iteration. Returns how many
 * extra intervals *out holds (0 and a note without CUPTI). */
typedef struct host_stats {
	int calls, threads, kernels, aligned;
	double launch_us, sync_us;
	long long offset_ns, spread_ns;
} host_stats;

static int host_side(run_ctx *r, int mode, gpu_trace *gt, const trace_launch *l, int nl, int nsm, trace_extra **out,
		     host_stats *hs)
{
	mmf_err err = {0};
	cupti_ev *api = NULL, *kern = NULL;
	int napi = 0, nk = 0, rc, n = 0;
	trace_util u;
	*out = NULL;
	if (cupti_begin(&err) < 0) {
		printf("   host side: not recorded (%s)\n", err.msg);
		return 0;
	}
	if ((rc = gpu_trace_on(gt, r->s[0], &err)) == 0) {
		rc = enqueue(r, mode, WHAT_BOTH);
		if (gpu_trace_off(gt, r->s[0], &err) < 0 && rc == 0)
			rc = -EIO;
	}
	if (cupti_end(&api, &napi, &kern, &nk, &err) < 0 || rc < 0 || gpu_trace_analyse(gt, l, nl, nsm, &u, &err) < 0) {
		printf("   host side: not recorded (%s)\n", err.msg[0] ? err.msg : "the traced iteration failed");
		free(api), free(kern);
		return rc < 0 ? rc : 0;
	}
	long long *d = malloc((size_t)(nk ? nk : 1) * sizeof *d), off = 0;
	int nd = 0;
	for (int k = 0; d && k < nk && k < nl; k++) {
		unsigned long long st;
		if (gpu_trace_launch_start(gt, k, &st) == 0)
			d[nd++] = (long long)st - (long long)kern[k].t0;
	}
	if (nd) {
		qsort(d, (size_t)nd, sizeof *d, mmf_cmp_ll);
		off = d[nd / 2];
	}
	trace_extra *x = calloc((size_t)(napi + nk + 1), sizeof *x);
	unsigned threads[64];
	int nthreads = 0;
	double launch_us = 0, sync_us = 0;
	for (int i = 0; x && i < napi; i++) {
		int row = 0;
		while (row < nthreads && threads[row] != api[i].id)
			row++;
		if (row == nthreads && nthreads < 64)
			threads[nthreads++] = api[i].id;
		x[n] = (trace_extra){TRACE_ROW_HOST, (unsigned)row, "", api[i].t0 + off, api[i].t1 + off};
		snprintf(x[n].name, sizeof x[n].name, "%s", api[i].name);
		n++;
		double us = (api[i].t1 - api[i].t0) / 1e3;
		if (api[i].sync)
			sync_us += us;
		else if (strstr(api[i].name, "Launch"))
			launch_us += us;
	}
	for (int k = 0; x && k < nk; k++) {
		x[n] = (trace_extra){TRACE_ROW_STREAM, kern[k].id, "", kern[k].t0 + off, kern[k].t1 + off};
		snprintf(x[n].name, sizeof x[n].name, "%s", nk == nl ? l[k].name : kern[k].name);
		n++;
	}
	*hs = (host_stats){napi, nthreads, nk, nd, launch_us, sync_us, off, nd ? d[nd - 1] - d[0] : 0LL};
	printf("   host side (CUPTI): %d runtime calls on %d thread%s (launch calls %.1f us, waiting in synchronisation "
	       "%.1f us), %d kernels; clocks aligned by the median of %d kernel starts (offset %lld ns, spread %lld ns)\n",
	       napi, nthreads, nthreads == 1 ? "" : "s", launch_us, sync_us, nk, nd, off, hs->spread_ns);
	free(d), free(api), free(kern);
	*out = x;
	return x ? n : 0;
}

/* One traced iteration of seq, streams, graph-streams and (with a plan)
 * fused: SM utilisation of each, the cost of tracing, and for the first
 * partition the Chrome trace of the fused iteration (seq without a plan;
 * or the mode --trace-mode names). graph-streams is the two-stream
 * iteration captured as a graph with tracing on and replayed: the towers
 * overlap as in the timed mode, without the host's launch pace (its
 * Chrome trace has no host side: one graph launch). */
static int trace_run(const gpu_bench_opts *o, run_ctx *r, int nsm, int first_part, const char *gpu)
{
	mmf_err err = {0};
	gpu_trace *gt = NULL;
	host_stats hs = {0};	/* recorded with the Chrome trace (calls > 0) */
	trace_launch *l = NULL;
	cudaEvent_t a = NULL, b = NULL;
	cudaGraphExec_t gtraced = NULL, gplain = NULL;	/* graph-streams, captured with and without tracing */
	int rc = gpu_trace_new(1 << 20, &gt, &err);
	if (rc < 0)
		goto fail;
	if (o->json)
		fprintf(o->json, ",\n      \"trace\": {");
	static const int tmodes[4] = {MODE_SEQ, MODE_STREAMS, MODE_GRAPH_STREAMS, MODE_FUSED};
	for (int ti = 0; ti < 4; ti++) {
		int mode = tmodes[ti], fused = mode == MODE_FUSED, graph = mode == MODE_GRAPH_STREAMS, nl;
		const char *mname = mode_names[mode];
		if (fused && !r->plan)
			break;
		trace_util u;
		free(l);
		l = NULL;
		const chain *ci = gpu_tower_chain(r->tw[0]), *ct = gpu_tower_chain(r->tw[1]);
		if ((nl = fused ? plan_trace_launches(r->plan, ci, ct, &l) : trace_launches_chains(ci, ct, mode != MODE_SEQ, &l)) < 0) {
			rc = mmf_err_set(&err, -ENOMEM, "trace: out of memory");
			goto fail;
		}
		/* Twice, analysing the second: the first launch of each traced
		 * instance loads it (CUDA loads kernels lazily), which stretched
		 * the first traced fused iteration by ~40% (docs/TRACING.md). */
		if (graph && (rc = capture(r, mode, WHAT_BOTH, &gplain)) < 0)
			goto out;
		for (int pass = 0; pass < (graph ? 1 : 2); pass++) {
			if ((rc = gpu_trace_on(gt, r->s[0], &err)) < 0)
				goto fail;
			/* graph-streams: captured with tracing on (which hands out
			 * its records' slots), then replayed twice inside the same
			 * tracing window; the second replay's records stay. */
			if (!graph)
				rc = run_once(r, mode, WHAT_BOTH, NULL);
			else if ((rc = capture(r, mode, WHAT_BOTH, &gtraced)) == 0 && (rc = run_once(r, mode, WHAT_BOTH, gtraced)) == 0)
				rc = run_once(r, mode, WHAT_BOTH, gtraced);
			if (gpu_trace_off(gt, r->s[0], &err) < 0 || rc < 0) {
				if (rc < 0 && graph)
					goto out;	/* said where it failed */
				rc = rc < 0 ? rc : err.code;
				goto fail;
			}
		}
		if ((rc = gpu_trace_analyse(gt, l, nl, nsm, &u, &err)) < 0)
			goto fail;
		int write = o->trace_mode ? !strcmp(o->trace_mode, mname) : fused || (!r->plan && mode == MODE_SEQ);
		if (first_part && write) {
			char title[256];
			snprintf(title, sizeof title, "mmf %s iteration, %s, %d SMs, batch %d", mname, gpu, nsm, o->batch);
			trace_extra *x = NULL;
			int nx = graph ? 0 : host_side(r, mode, gt, l, nl, nsm, &x, &hs);
			if (nx < 0) {
				rc = nx;
				goto out;
			}
			rc = gpu_trace_write_chrome(gt, l, nl, x, nx, title, o->trace, &err);
			free(x);
			if (rc < 0)
				goto fail;
			printf("   trace of the %s iteration written to %s (Chrome trace JSON: open in Perfetto)\n", mname, o->trace);
		}
		/* The cost of tracing: the same iteration timed 30 times each way. */
		float on[30], off[30];
		CUDA_OR(cudaEventCreate(&a), "events");
		CUDA_OR(cudaEventCreate(&b), "events");
		for (int traced = 0; traced < 2; traced++)
			for (int it = 0; it < 30; it++) {
				if (traced && (rc = gpu_trace_on(gt, r->s[0], &err)) < 0)
					goto fail;
				CUDA_OR(cudaEventRecord(a, r->s[0]), "event");
				if ((rc = run_once(r, mode, WHAT_BOTH, traced ? gtraced : gplain)) < 0)
					goto out;
				CUDA_OR(cudaEventRecord(b, r->s[0]), "event");
				CUDA_OR(cudaEventSynchronize(b), "event");
				CUDA_OR(cudaEventElapsedTime(traced ? &on[it] : &off[it], a, b), "event");
				if (traced && (rc = gpu_trace_off(gt, r->s[0], &err)) < 0)
					goto fail;
			}
		cudaEventDestroy(a), cudaEventDestroy(b);
		a = b = NULL;
		float mon = pctf(on, 30, 0.5), moff = pctf(off, 30, 0.5);
		double cost = (mon / moff - 1) * 100;
		printf("   trace %-7s %d launches, %d block records over %d SMs in %.1f us: SM utilisation %.1f%% "
		       "(image %.1f%%, text %.1f%%); tracing costs %+.1f%% (%.3f vs %.3f ms)\n",
		       mname, nl, u.records, u.sms_seen, u.span_us, u.total * 100, u.image * 100,
		       u.text * 100, cost, mon, moff);
		if (o->json)
			fprintf(o->json, "%s\"%s\": {\"launches\": %d, \"records\": %d, \"sms_seen\": %d, \"span_us\": %.2f, "
				"\"sm_utilisation\": %.4f, \"sm_utilisation_image\": %.4f, \"sm_utilisation_text\": %.4f, "
				"\"traced_ms\": %.4f, \"untraced_ms\": %.4f, \"tracing_cost_pct\": %.2f}",
				ti ? ", " : "", mname, nl, u.records, u.sms_seen, u.span_us, u.total, u.image,
				u.text, mon, moff, cost);
	}
	if (o->json && hs.calls)
		fprintf(o->json, ", \"host_side\": {\"runtime_calls\": %d, \"threads\": %d, \"launch_calls_us\": %.1f, "
			"\"sync_wait_us\": %.1f, \"kernels\": %d, \"aligned_kernels\": %d, \"clock_offset_ns\": %lld, "
			"\"clock_spread_ns\": %lld}",
			hs.calls, hs.threads, hs.launch_us, hs.sync_us, hs.kernels, hs.aligned, hs.offset_ns, hs.spread_ns);
	if (o->json)
		fprintf(o->json, "}");
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "mmf-bench: %s\n", err.msg);
out:
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
	if (gtraced)
		cudaGraphExecDestroy(gtraced);
	if (gplain)
		cudaGraphExecDestroy(gplain);
	free(l);
	gpu_trace_free(gt);
	return rc;
}

/* Prints one timed row and appends it to the JSON "modes" array; extra (may
 * be NULL) is more JSON members for the row, and shapes (may be NULL) the
 * towers whose GEMM shapes the row records. */
static void put_row(const gpu_bench_opts *o, int mode, int what, const timing *tm, const char *verdict, const char *extra,
		    gpu_tower *const *shapes, int *firstj)
{
	printf("   %-14s %-6s %9.3f %9.3f %9.3f %8d %9.1f %9.3f   %s\n", mode_names[mode], what_names[what], tm->p10, tm->p50,
	       tm->p90, tm->launches, tm->launch_us, tm->wall_ms, verdict);
	if (o->json) {
		fprintf(o->json, "%s        {\"mode\": \"%s\", \"what\": \"%s\", \"p10_ms\": %.4f, \"median_ms\": %.4f, \"p90_ms\": %.4f, "
			"\"kernel_launches\": %d, \"host_launch_us\": %.2f, \"host_wall_ms\": %.4f%s%s",
			*firstj ? "" : ",\n", mode_names[mode], what_names[what], tm->p10, tm->p50, tm->p90, tm->launches,
			tm->launch_us, tm->wall_ms, extra ? ", " : "", extra ? extra : "");
		if (shapes) {
			fputs(", \"gemm_shapes\": ", o->json);
			json_shapes(o->json, shapes);
		}
		fputc('}', o->json);
	}
	*firstj = 0;
}

/* The image SM counts graph-split tries on a partition whose groups hold
 * `span` SMs: --split-sms, else half the groups and two groups either side
 * (on an H200 the best was 72 of 132 and 40 of 64). */
static int split_candidates(const gpu_bench_opts *o, int g, int span, int *k)
{
	int n = 0, half = span / 2 / g * g, skipped = 0;
	if (!o->nsplit_sms) {
		for (int v = half - 2 * g; v <= half + 2 * g; v += g)
			if (v >= g && v < span)
				k[n++] = v;
		return n;
	}
	for (int i = 0; i < o->nsplit_sms; i++) {
		int v = o->split_sms[i];
		if (v % g == 0 && v < span)
			k[n++] = v;
		else
			skipped++;
	}
	/* Where no split fits at all, the caller says so once. */
	if (skipped && n)
		printf("   graph-split: %d of the --split-sms counts skipped here (image SMs must be a multiple of %d below %d)\n",
		       skipped, g, span);
	return n;
}

typedef struct split_try { int k, ntxt; gpu_tower *tw[2]; cudaStream_t s[2]; float ms; } split_try;

static void split_try_free(split_try *c)
{
	gpu_tower_free(c->tw[0]);
	gpu_tower_free(c->tw[1]);
	c->tw[0] = c->tw[1] = NULL;
}

/* A background load for split_build: replays one graph on its stream until
 * told to stop (a sync every few replays keeps the queue short). */
typedef struct busy_loop {
	cudaGraphExec_t exec;
	cudaStream_t s;
	atomic_int stop;
	int failed;
} busy_loop;

static void *busy_run(void *arg)
{
	busy_loop *b = arg;
	for (int n = 1; !atomic_load(&b->stop); n++)
		if (cudaGraphLaunch(b->exec, b->s) != cudaSuccess || (n % 4 == 0 && cudaStreamSynchronize(b->s) != cudaSuccess)) {
			b->failed = 1;
			break;
		}
	cudaStreamSynchronize(b->s);
	return NULL;
}

static int upload_input(gpu_tower *tw, int t, const float *px, const int32_t *tok, int B, cudaStream_t s, mmf_err *err)
{
	return t ? gpu_tower_set_text(tw, tok, B, s, err) : gpu_tower_set_image(tw, px, B, s, err);
}

/* Re-tunes tower t (GEMM shapes on stream s[t], `sms` SMs) while the other
 * tower's graph runs in a loop on s[!t], on its own SMs (graph-split): the
 * shapes then fit the contention (L2, DRAM, clocks) they will run under,
 * not an idle GPU. tw[t] is replaced and its input uploaded again. (The
 * same beside a tower sharing the SMs, for graph-streams, made 8 SMs 4%
 * slower and left the whole GPU as it was: not kept.) */
static int retune_beside(const gpu_bench_opts *o, gpu_model *gm, chain *const ch[2], const float *px, const int32_t *tok,
			 gpu_tower *tw[2], const cudaStream_t s[2], int sms, int t)
{
	mmf_err err = {0};
	int u = !t, rc;
	run_ctx r = {.tw = {tw[0], tw[1]}, .s = {s[u], s[t]}};
	busy_loop b = {.s = s[u]};
	gpu_tower *fresh = NULL;
	if ((rc = capture(&r, MODE_GRAPH, u ? WHAT_TEXT : WHAT_IMAGE, &b.exec)) < 0)
		return rc;
	atomic_init(&b.stop, 0);
	pthread_t th;
	if (pthread_create(&th, NULL, busy_run, &b) != 0) {
		cudaGraphExecDestroy(b.exec);
		fprintf(stderr, "mmf-bench: cannot start the background tower for tuning\n");
		return -EAGAIN;
	}
	rc = gpu_tower_new(gm, ch[t], o->batch, sms, s[t], &fresh, &err);
	atomic_store(&b.stop, 1);
	pthread_join(th, NULL);
	cudaGraphExecDestroy(b.exec);
	if (rc == 0 && b.failed)
		rc = mmf_err_set(&err, -EIO, "the background tower failed: %s", cudaGetErrorString(cudaGetLastError()));
	if (rc == 0)
		rc = upload_input(fresh, t, px, tok, o->batch, s[t], &err);
	if (rc == 0 && cudaStreamSynchronize(s[t]) != cudaSuccess)
		rc = mmf_err_set(&err, -EIO, "uploading inputs: %s", cudaGetErrorString(cudaGetLastError()));
	if (rc < 0) {
		fprintf(stderr, "mmf-bench: tuning the %s tower beside the other: %s\n", t ? "text" : "image", err.msg);
		gpu_tower_free(fresh);
		return rc;
	}
	gpu_tower_free(tw[t]);
	tw[t] = fresh;
	return 0;
}

/* Whether graph-split tunes each tower again beside the other one running
 * (the default) or only alone on its SMs (MMF_SPLIT_TUNE=alone). */
static int split_tune_busy(void)
{
	const char *e = getenv("MMF_SPLIT_TUNE");
	return !(e && !strcmp(e, "alone"));
}

/* Builds candidate c: the image tower on the partition's first c->k SMs,
 * the text tower on the others (part_sms 0: every other SM of the GPU),
 * each tuned there (and, with split_tune_busy, tuned again beside the
 * other), inputs uploaded. */
static int split_build(const gpu_bench_opts *o, gpu_parts *parts, int part_sms, gpu_model *gm, chain *const ch[2], const float *px,
		       const int32_t *tok, split_try *c)
{
	mmf_err err = {0};
	gpu_part *pa, *pb;
	int rc, B = o->batch;
	if ((rc = gpu_part_get(parts, c->k, &pa, &err)) < 0 ||
	    (rc = gpu_part_get_span(parts, c->k, part_sms ? part_sms - c->k : 0, &pb, &err)) < 0 ||
	    (rc = gpu_part_stream(pa, 3, &c->s[0], &err)) < 0 || (rc = gpu_part_stream(pb, 3, &c->s[1], &err)) < 0) {
		fprintf(stderr, "mmf-bench: graph-split: %s\n", err.msg);
		return rc;
	}
	c->ntxt = gpu_part_sms(pb);
	/* Tuned beside the other tower, the image tower is tuned again from
	 * scratch, beside the text tower tuned alone: its own first tuning
	 * would go unused, so it starts from the heuristic shapes. */
	const int busy = o->tune && split_tune_busy();
	for (int t = 0; t < 2; t++) {
		cudaStream_t ts = o->tune && !(busy && t == 0) ? c->s[t] : NULL;
		if ((rc = gpu_tower_new(gm, ch[t], B, t ? c->ntxt : c->k, ts, &c->tw[t], &err)) < 0 ||
		    (rc = upload_input(c->tw[t], t, px, tok, B, c->s[t], &err)) < 0) {
			fprintf(stderr, "mmf-bench: graph-split: %s\n", err.msg);
			return rc;
		}
	}
	/* A graph launched on s[0] orders after s[0]'s work only. */
	if (cudaStreamSynchronize(c->s[0]) != cudaSuccess || cudaStreamSynchronize(c->s[1]) != cudaSuccess) {
		fprintf(stderr, "mmf-bench: graph-split: uploading inputs: %s\n", cudaGetErrorString(cudaGetLastError()));
		return -EIO;
	}
	for (int t = 0; t < 2 && busy; t++)
		if ((rc = retune_beside(o, gm, ch, px, tok, c->tw, c->s, t ? c->ntxt : c->k, t)) < 0)
			return rc;
	return 0;
}

/* graph-split: the image tower on the first k SMs of the partition and the
 * text tower on the others, each with GEMM shapes tuned on its own SMs,
 * both captured as one graph (two streams of two green contexts). k is the
 * fastest candidate of a short trial. Its outputs are checked against the
 * CPU and bitwise against each tower run alone on its SMs (its GEMM shapes,
 * and so its split-K sums, are its own, unlike the other modes'). */
static int split_bench(const gpu_bench_opts *o, gpu_parts *parts, int part_sms, gpu_model *gm, chain *const ch[2], int E,
		       const float *px, const int32_t *tok, float *const ref[2], cudaEvent_t fork, cudaEvent_t join, int tg,
		       int *firstj, int *failed)
{
	mmf_err err = {0};
	int g = gpu_parts_granularity(parts), B = o->batch, rc = 0, k[GPU_BENCH_MAX_SPLITS], nc = 0, best = 0;
	int span = part_sms ? part_sms : gpu_parts_groups(parts) * g;
	split_try c[GPU_BENCH_MAX_SPLITS] = {0};
	size_t bytes = (size_t)B * E * sizeof(float);
	float *alone[2] = {malloc(bytes), malloc(bytes)}, *got[2] = {malloc(bytes), malloc(bytes)};
	char trials[GPU_BENCH_MAX_SPLITS * 80] = "", extra[sizeof trials + 400];
	cudaEvent_t ends[2] = {NULL, NULL};
	float alone_ms[2] = {0, 0};
	if (!alone[0] || !alone[1] || !got[0] || !got[1]) {
		fprintf(stderr, "mmf-bench: out of memory\n");
		rc = -ENOMEM;
		goto out;
	}
	if ((nc = split_candidates(o, g, span, k)) == 0) {
		printf("   %-14s needs two groups of %d SMs; this partition has %d (skipped)\n", "graph-split", g, span);
		goto out;
	}
	int trial = o->iters / 4 < 20 ? 20 : o->iters / 4, tw = 0;
	for (int i = 0; i < nc; i++) {
		c[i].k = k[i];
		if ((rc = split_build(o, parts, part_sms, gm, ch, px, tok, &c[i])) < 0)
			goto out;
		if (nc == 1)
			break;
		timing tm = {0};
		run_ctx r = {.tw = {c[i].tw[0], c[i].tw[1]}, .s = {c[i].s[0], c[i].s[1]}, .fork = fork, .join = join};
		if ((rc = time_mode(&r, MODE_GRAPH_SPLIT, WHAT_BOTH, o->warmup, trial, &tm)) < 0)
			goto out;
		c[i].ms = tm.p50;
		printf("   graph-split trial: image tower on %d SMs, text on %d: both %.3f ms (median of %d)\n", c[i].k, c[i].ntxt,
		       tm.p50, trial);
		tw += snprintf(trials + tw, sizeof trials - (size_t)tw, "%s{\"image_sms\": %d, \"text_sms\": %d, \"median_ms\": %.4f}",
			       i ? ", " : "", c[i].k, c[i].ntxt, tm.p50);	/* 80 bytes a candidate is room enough */
		if (i > 0 && c[i].ms < c[best].ms) {
			split_try_free(&c[best]);
			best = i;
		} else if (i > 0) {
			split_try_free(&c[i]);
		}
	}
	split_try *b = &c[best];
	const char *tuned = !o->tune ? "no (--no-tune)" : split_tune_busy() ? "beside the other tower running" : "alone";
	printf("   graph-split: image tower on SMs 0-%d (%d), text tower on the other %d; GEMM shapes tuned on each: %s\n", b->k - 1,
	       b->k, b->ntxt, tuned);
	/* Each tower alone on its SMs, then both at once. Before the both row,
	 * a shorter run of a graph with each tower's end marked by an event
	 * (two more nodes, hence not the timed graph): how much later than
	 * alone each tower ends beside the other, and what the join adds. */
	if (cudaEventCreate(&ends[0]) != cudaSuccess || cudaEventCreate(&ends[1]) != cudaSuccess) {
		fprintf(stderr, "mmf-bench: graph-split: events: %s\n", cudaGetErrorString(cudaGetLastError()));
		rc = -EIO;
		goto out;
	}
	timing te = {0};
	graph_tune gt = {0};
	if (tg) {
		run_ctx rg = {.tw = {b->tw[0], b->tw[1]}, .s = {b->s[0], b->s[1]}, .fork = fork, .join = join};
		const int split_sms[2] = {b->k, b->ntxt};
		if ((rc = tune_graph(&rg, MODE_GRAPH_SPLIT, split_sms, &gt)) < 0)
			goto out;
	}
	for (int w = 0; w < what_max; w++) {
		timing tm = {0};
		int t = w == WHAT_TEXT;
		run_ctx r = {.tw = {b->tw[0], b->tw[1]}, .s = {b->s[t], b->s[!t]}, .fork = fork, .join = join};
		if (w == WHAT_BOTH) {
			run_ctx re = r;
			re.end[0] = ends[0], re.end[1] = ends[1];
			if ((rc = time_mode(&re, MODE_GRAPH_SPLIT, w, o->warmup, trial, &te)) < 0)
				goto out;
		}
		if ((rc = time_mode(&r, w == WHAT_BOTH ? MODE_GRAPH_SPLIT : MODE_GRAPH, w, o->warmup, o->iters, &tm)) < 0)
			goto out;
		char verdict[160] = "";
		snprintf(extra, sizeof extra, "\"image_sms\": %d, \"text_sms\": %d", b->k, b->ntxt);
		if (w != WHAT_BOTH) {
			if ((rc = gpu_tower_get_output(b->tw[t], alone[t], B, b->s[t], &err)) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
			put_row(o, MODE_GRAPH_SPLIT, w, &tm, verdict, extra, NULL, firstj);
			alone_ms[t] = tm.p50;
			continue;
		}
		double cmin;
		if ((rc = both_outputs(b->tw, b->s, B, E, got, ref, &cmin)) < 0)
			goto out;
		int bitwise = !memcmp(alone[0], got[0], bytes) && !memcmp(alone[1], got[1], bytes), ok = bitwise && cmin >= 0.999;
		*failed |= !ok;
		snprintf(verdict, sizeof verdict, "%s each tower alone (own shapes), min cosine vs CPU fp32 %.6f%s",
			 bitwise ? "bitwise equal to" : "DIFFER from", cmin, ok ? "" : "  FAILED");
		snprintf(extra, sizeof extra,
			 "\"image_sms\": %d, \"text_sms\": %d, \"tuned\": \"%s\", \"ends\": {\"iterations\": %d, \"image_ms\": %.4f, "
			 "\"text_ms\": %.4f, \"joined_ms\": %.4f}, \"trials\": [%s]",
			 b->k, b->ntxt, tuned, trial, te.end50[0],
			 te.end50[1], te.p50, trials);
		if (tg) {
			char gj[160];
			json_graph_tune(gj, sizeof gj, &gt);
			size_t len = strlen(extra);
			snprintf(extra + len, sizeof extra - len, ", \"tune_graph\": %s", gj);
		}
		put_row(o, MODE_GRAPH_SPLIT, w, &tm, verdict, extra, b->tw, firstj);
		printf("   graph-split: beside each other the image tower ends %.3f ms and the text tower %.3f ms after the start, "
		       "joined %.3f (alone %.3f and %.3f; medians of %d)\n", te.end50[0], te.end50[1], te.p50, alone_ms[0], alone_ms[1],
		       trial);
	}
out:
	for (int e = 0; e < 2; e++)
		if (ends[e])
			cudaEventDestroy(ends[e]);
	for (int i = 0; i < nc; i++)
		split_try_free(&c[i]);
	free(alone[0]), free(alone[1]), free(got[0]), free(got[1]);
	return rc;
}

/* The plan for this partition: from the cache when it matches, else
 * planned (with progress) and cached. A stale or corrupt cache file is
 * reported and replaced. */
static int get_plan(const gpu_bench_opts *o, run_ctx *r, int sms, const char *gpu, const roof *rf)
{
	mmf_err err = {0};
	gpu_plan want = {.nimg = gpu_tower_nops(r->tw[0]), .ntxt = gpu_tower_nops(r->tw[1]), .sms = sms, .batch = o->batch,
			 .strategy = o->strategy};
	snprintf(want.gpu, sizeof want.gpu, "%s", gpu);
	if (model_file_hash(o->model_path, o->precision, want.model_hash, &err) < 0) {
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
		return err.code;
	}
	const char *cache = getenv("MMF_CACHE");
	char dir[1024], path[1400];
	snprintf(dir, sizeof dir, "%s/plans", cache && *cache ? cache : "/tmp/mmf-cache");
	mkdir(cache && *cache ? cache : "/tmp/mmf-cache", 0755);
	mkdir(dir, 0755);
	plan_cache_path(dir, &want, path, sizeof path);
	int rc = plan_load(path, &want, r->tw[0], r->tw[1], &r->plan, &err);
	if (rc == 0) {
		printf("   plan: %s (cached)\n", path);
	} else {
		if (rc != -ENOENT)
			fprintf(stderr, "mmf-bench: %s; planning again\n", err.msg);
		plan_opts po = {.strategy = o->strategy, .roof_tflops = rf->tflops, .roof_gbs = rf->gbs, .progress = stderr};
		if ((rc = plan_build(r->tw[0], r->tw[1], r->s[0], sms, o->batch, gpu, want.model_hash, &po, &r->plan, &err)) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			return rc;
		}
		if (plan_save(r->plan, path, &err) < 0)
			fprintf(stderr, "mmf-bench: %s (the plan is used but not cached)\n", err.msg);
		else
			printf("   plan: %s (new)\n", path);
	}
	printf("   plan: %d steps, predicted %.1f us vs %.1f us for every op alone\n", r->plan->nsteps, r->plan->pred_us,
	       r->plan->alone_us);
	if (o->show_plan)
		plan_print(r->plan, r->tw[0], r->tw[1], stdout);
	return 0;
}

int gpu_bench_run(const gpu_bench_opts *o, clip_model *m, chain *const ch[2])
{
	mmf_err err = {0};
	gpu_parts *parts = NULL;
	gpu_model *gm = NULL;
	gpu_dram *dram = NULL;
	int rc = 0, failed = 0, modes[mode_max], nmodes, sms[64], nsms;
	const clip_config *cfg = &m->cfg;
	int B = o->batch, E = cfg->embed_dim;
	float *px = malloc((size_t)B * 3 * cfg->image_size * cfg->image_size * sizeof *px);
	int32_t *tok = malloc((size_t)B * cfg->context * sizeof *tok);
	float *ref[2] = {malloc((size_t)B * E * 4), malloc((size_t)B * E * 4)};
	float *got[2] = {malloc((size_t)B * E * 4), malloc((size_t)B * E * 4)};
	float *first[2] = {malloc((size_t)B * E * 4), malloc((size_t)B * E * 4)};
	if (!px || !tok || !ref[0] || !ref[1] || !got[0] || !got[1] || !first[0] || !first[1]) {
		rc = -ENOMEM;
		fprintf(stderr, "mmf-bench: out of memory\n");
		goto out;
	}
	if ((nmodes = parse_modes(o->modes, modes)) < 0) {
		rc = 2;
		goto out;
	}
	if ((rc = gpu_parts_open(0, &parts, &err)) < 0 || (nsms = gpu_parts_parse_list(parts, o->sms, sms, 64, &err)) < 0) {
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
		rc = rc < 0 ? rc : 2;
		if (nsms < 0 && rc >= 0)
			rc = 2;
		goto out;
	}
	int tg_sms[64], ntg = 0;
	if (o->tune_graph && (ntg = gpu_parts_parse_list(parts, o->tune_graph, tg_sms, 64, &err)) < 0) {
		fprintf(stderr, "mmf-bench: --tune-graph takes a --sms list: %s\n", err.msg);
		rc = 2;
		goto out;
	}
	const char *gpu = gpu_parts_device_name(parts);
	int total = gpu_parts_total_sms(parts);
	for (int pi = 0; o->dram_gbs > 0 && pi < nsms; pi++)
		if (sms[pi] == 0) {
			fprintf(stderr, "mmf-bench: --dram-gbs: 'all' leaves no SMs for the bandwidth hog; list partitions only "
				"(e.g. --sms 8,16)\n");
			rc = 2;
			goto out;
		}
	/* CPU reference embeddings for the same inputs. */
	clip_synth_inputs(cfg, B, o->seed, px, tok);
	for (int t = 0; t < 2; t++) {
		cpu_engine *ce;
		if ((rc = cpu_engine_new(ch[t], B, &ce, &err)) < 0 ||
		    (rc = t == 0 ? cpu_embed_image(ce, px, B, ref[0], &err) : cpu_embed_text(ce, tok, B, ref[1], &err)) < 0) {
			fprintf(stderr, "mmf-bench: CPU reference: %s\n", err.msg);
			cpu_engine_free(ce);
			goto out;
		}
		cpu_engine_free(ce);
	}
	if ((rc = gpu_model_new(ch[0], ch[1], o->precision, &gm, &err)) < 0) {
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
		goto out;
	}
	printf("device: %s, %d SMs; weights resident: %.1f MB %s; batch %d, %d iterations after %d warm-up\n", gpu, total,
	       gpu_model_bytes(gm) / 1e6, gpu_model_int8(gm) ? "(int8 convolutions and linears, fp16 embeddings)"
	       : gpu_model_precision(gm) == CLIP_PREC_FP32 ? "fp32 (SIMT kernels, no tensor cores)" : "fp16", B,
	       o->iters, o->warmup);
	printf("programmatic dependent launch: %s\n", mmf_get_pdl() ? "on (sm_90+; MMF_PDL=0 turns it off)" : "off");
	if (mmf_get_cluster())
		printf("split-K through thread-block clusters: up to %d splits (sm_90+; MMF_CLUSTER=0 turns it off)\n", mmf_get_cluster());
	else
		printf("split-K through thread-block clusters: off\n");
	const int folded = gpu_model_pool_fold(gm), gemv = gpu_model_gemv(gm);
	if (gpu_model_precision(gm) == CLIP_PREC_FP16) {
		printf("attention pool: %s\n", folded ? "k and v folded into the weights (kernels/pool_fold.cuh; MMF_POOL_FOLD=0 turns it off)"
						       : "k and v for every token (MMF_POOL_FOLD=0)");
		printf("linears of at most 8 rows: %s\n", gemv ? "matrix-vector tile (kernels/gemv.cuh; MMF_GEMV=0 turns it off)"
								: "GEMM tiles (MMF_GEMV=0)");
	}
	if (o->dram_gbs > 0)
		printf("note: an SM partition restricts SMs only; here DRAM bandwidth is limited to about %g GB/s per partition by a "
		       "hog on the other SMs (--dram-gbs), and the L2 cache is shared with it\n", o->dram_gbs);
	else
		printf("note: an SM partition restricts SMs only; L2 cache and DRAM bandwidth are shared with the whole GPU\n");
	if (o->json) {
		fprintf(o->json, "  \"gpu\": \"%s\",\n  \"gpu_sms\": %d,\n  \"weights_mb\": %.2f,\n  \"int8_ops\": %d,\n"
			"  \"pdl\": %s,\n  \"cluster_splitk_max\": %d,\n  \"pool_fold\": %s,\n  \"gemv\": %s,\n", gpu, total,
			gpu_model_bytes(gm) / 1e6, gpu_model_int8(gm), mmf_get_pdl() ? "true" : "false", mmf_get_cluster(),
			folded ? "true" : "false", gemv ? "true" : "false");
		if (o->dram_gbs > 0)
			fprintf(o->json, "  \"dram_limit_gbs\": %g,\n  \"partition_note\": \"SM partitions (green contexts) restrict SMs "
				"only; DRAM bandwidth limited by a hog on the other SMs, calibrated against the partition's streaming copy "
				"(partitions[].dram_limit); L2 shared with the hog\",\n", o->dram_gbs);
		else
			fprintf(o->json, "  \"partition_note\": \"SM partitions (green contexts) restrict SMs only; L2 and DRAM "
				"bandwidth are not partitioned\",\n");
		fprintf(o->json, "  \"partitions\": [\n");
	}
	for (int pi = 0; pi < nsms; pi++) {
		gpu_part *p;
		run_ctx r = {0};
		roof rf = {0};
		if ((rc = gpu_part_get(parts, sms[pi], &p, &err)) < 0 || (rc = gpu_part_stream(p, 0, &r.s[0], &err)) < 0 ||
		    (rc = gpu_part_stream(p, 1, &r.s[1], &err)) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			goto out;
		}
		int n = gpu_part_sms(p);
		char where[400];
		snprintf(where, sizeof where, "L2 and DRAM bandwidth not partitioned");
		/* The plan cache tells limited runs apart by the GPU string. */
		char gpukey[sizeof ((gpu_plan *)0)->gpu];
		snprintf(gpukey, sizeof gpukey, "%s", gpu);
		if (o->dram_gbs > 0) {
			printf("\n   limiting the %d-SM partition's DRAM bandwidth to about %g GB/s...\n", n, o->dram_gbs);
			fflush(stdout);
			if ((rc = gpu_dram_start(parts, sms[pi], o->dram_gbs, stdout, &dram, &err)) < 0) {
				fprintf(stderr, "mmf-bench: --dram-gbs: %s\n", err.msg);
				goto out;
			}
			const gpu_dram_info *di = gpu_dram_get(dram);
			snprintf(where, sizeof where, "DRAM limited to ~%.0f GB/s by a hog on the other %d SMs (%.0f GB/s without it); "
				 "L2 shared", di->gbs, di->hog_sms, di->free_gbs);
			snprintf(gpukey, sizeof gpukey, "%s, DRAM %g GB/s", gpu, o->dram_gbs);
		}
		CUDA_OR(cudaEventCreateWithFlags(&r.fork, cudaEventDisableTiming), "events");
		CUDA_OR(cudaEventCreateWithFlags(&r.join, cudaEventDisableTiming), "events");
		if ((rc = measure_roofline(n, r.s[0], &rf)) < 0)
			goto out;
		printf("\n== partition: %s of %s (%s)\n", gpu_part_name(p), gpu, where);
		printf("   measured roofline: %.0f GB/s streaming copy, %.1f TFLOP/s fp16 GEMM (mma.sync, 4096^3)\n", rf.gbs, rf.tflops);
		/* Tuning on a smaller partition than the one run on sizes each
		 * GEMM for a share of the GPU, which is what it gets when the two
		 * towers run at once. */
		cudaStream_t tune_s = r.s[0];
		int tune_n = n;
		if (o->tune && o->tune_sms > 0 && o->tune_sms != n) {
			gpu_part *tp;
			if ((rc = gpu_part_get(parts, o->tune_sms, &tp, &err)) < 0 || (rc = gpu_part_stream(tp, 2, &tune_s, &err)) < 0) {
				fprintf(stderr, "mmf-bench: --tune-sms: %s\n", err.msg);
				goto out;
			}
			tune_n = gpu_part_sms(tp);
			printf("   GEMM shapes tuned on a %d-SM partition\n", tune_n);
		}
		for (int t = 0; t < 2; t++)
			if ((rc = gpu_tower_new(gm, ch[t], B, tune_n, o->tune ? tune_s : NULL, &r.tw[t], &err)) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
		if ((rc = gpu_tower_set_image(r.tw[0], px, B, r.s[0], &err)) < 0 || (rc = gpu_tower_set_text(r.tw[1], tok, B, r.s[0], &err)) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			goto out;
		}
		graph_tune gt = {0};
		int tg_here = 0;
		for (int k = 0; k < ntg; k++)
			tg_here |= tg_sms[k] == sms[pi];
		if (tg_here) {
			const int both_sms[2] = {n, n};
			if ((rc = tune_graph(&r, MODE_GRAPH_STREAMS, both_sms, &gt)) < 0)
				goto out;
		}
		int want_plan = o->show_plan || o->trace || (o->profile && !strcmp(o->profile, "fused"));
		for (int mi = 0; mi < nmodes; mi++)
			want_plan |= modes[mi] == MODE_FUSED || modes[mi] == MODE_FUSED_GRAPH;
		if (want_plan && (rc = get_plan(o, &r, n, gpukey, &rf)) < 0)
			goto out;
		if (o->profile && pi == 0 && (rc = profile_once(o, &r)) < 0)
			goto out;
		if (o->json)
			fprintf(o->json, "%s    {\n      \"sms\": %d,\n      \"roofline\": {\"copy_gbs\": %.1f, \"gemm_tflops\": %.2f},\n",
				pi ? ",\n" : "", n, rf.gbs, rf.tflops);
		if (o->json) {
			fputs("      \"gemm_shapes\": ", o->json);
			json_shapes(o->json, r.tw);
			fputs(",\n", o->json);
			if (tg_here) {
				char gj[160];
				json_graph_tune(gj, sizeof gj, &gt);
				fprintf(o->json, "      \"tune_graph\": %s,\n", gj);
			}
		}
		if (o->json && dram) {
			const gpu_dram_info *di = gpu_dram_get(dram);
			fprintf(o->json, "      \"dram_limit\": {\"target_gbs\": %g, \"measured_gbs\": %.1f, \"free_gbs\": %.1f, "
				"\"floor_gbs\": %.1f, \"hog_sms\": %d, \"hog_pattern\": \"%s\", \"hog_sleep_ns\": %u},\n", di->target_gbs, di->gbs,
				di->free_gbs, di->floor_gbs, di->hog_sms, gpu_dram_mode_name(di->mode), di->sleep_ns);
		}
		if (o->json && r.plan) {
			int nf = 0;
			for (int k = 0; k < r.plan->nsteps; k++)
				nf += r.plan->steps[k].img >= 0 && r.plan->steps[k].txt >= 0;
			fprintf(o->json, "      \"plan\": {\"strategy\": \"%s\", \"steps\": %d, \"fused_pairs\": %d, \"predicted_us\": %.2f, \"alone_us\": %.2f},\n",
				fuse_strategy_name(r.plan->strategy), r.plan->nsteps, nf, r.plan->pred_us, r.plan->alone_us);
		}
		printf("   %-14s %-6s %9s %9s %9s %8s %9s %9s   %s\n", "mode", "what", "p10 ms", "median", "p90 ms", "launches",
		       "launch us", "wall ms", "outputs");
		if (o->json)
			fprintf(o->json, "      \"modes\": [\n");
		int firstj = 1, have_first = 0;
		for (int mi = 0; mi < nmodes; mi++) {
			for (int w = 0; w < what_max && modes[mi] != MODE_GRAPH_SPLIT; w++) {
				timing tm = {0};
				if ((modes[mi] == MODE_FUSED || modes[mi] == MODE_FUSED_GRAPH) && w != WHAT_BOTH)
					continue;	/* a plan runs both towers */
				if ((rc = time_mode(&r, modes[mi], w, o->warmup, o->iters, &tm)) < 0)
					goto out;
				/* Outputs of this mode: bitwise against the first mode, cosine against the CPU. */
				char verdict[160] = "";
				if (w == WHAT_BOTH) {
					double cmin;
					cudaStream_t s2[2] = {r.s[0], r.s[0]};
					if ((rc = both_outputs(r.tw, s2, B, E, got, ref, &cmin)) < 0)
						goto out;
					int bitwise = 1, reference = !have_first;
					if (reference)
						memcpy(first[0], got[0], (size_t)B * E * 4), memcpy(first[1], got[1], (size_t)B * E * 4);
					else
						bitwise = !memcmp(first[0], got[0], (size_t)B * E * 4) && !memcmp(first[1], got[1], (size_t)B * E * 4);
					have_first = 1;
					int ok = bitwise && cmin >= 0.999;
					failed |= !ok;
					snprintf(verdict, sizeof verdict, "%s, min cosine vs CPU fp32 %.6f%s",
						 reference ? "reference" : bitwise ? "bitwise equal" : "DIFFER",
						 cmin, ok ? "" : "  FAILED");
				}
				put_row(o, modes[mi], w, &tm, verdict, NULL, NULL, &firstj);
			}
		}
		for (int mi = 0; mi < nmodes; mi++)
			if (modes[mi] == MODE_GRAPH_SPLIT &&
			    (rc = split_bench(o, parts, sms[pi], gm, ch, E, px, tok, ref, r.fork, r.join, tg_here, &firstj, &failed)) != 0)
				goto out;
		if (o->json)
			fprintf(o->json, "\n      ]");
		if (o->trace && (rc = trace_run(o, &r, n, pi == 0, gpu)) < 0)
			goto out;
		if (o->ops && (rc = per_op_table(&r, &rf, B, o->iters, o->json)) < 0)
			goto out;
		if (o->pairs) {
			gpu_tower *img2 = NULL;
			if ((rc = gpu_tower_new(gm, ch[0], B, n, NULL, &img2, &err)) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
			rc = pairs_bench(&r, img2, &rf, o->json);
			gpu_tower_free(img2);
			if (rc < 0)
				goto out;
		}
		if (dram && (rc = gpu_dram_check(dram, &err)) < 0) {
			fprintf(stderr, "mmf-bench: --dram-gbs: %s; this partition's figures ran without the limit for a while\n",
				err.msg);
			goto out;
		}
		gpu_dram_stop(dram);
		dram = NULL;
		if (o->json)
			fprintf(o->json, "\n    }");
		gpu_tower_free(r.tw[0]);
		gpu_tower_free(r.tw[1]);
		plan_free(r.plan);
		cudaEventDestroy(r.fork);
		cudaEventDestroy(r.join);
	}
	if (o->json)
		fprintf(o->json, "\n  ],\n");
	rc = failed;
out:
	gpu_dram_stop(dram);
	gpu_model_free(gm);
	gpu_parts_close(parts);
	free(px), free(tok);
	for (int t = 0; t < 2; t++)
		free(ref[t]), free(got[t]), free(first[t]);
	return rc;
}
