/* The server-side GPU executor: towers per batch size, graphs per step
 * shape, fusion plans chosen by measurement (gpu_exec.h). */
#include "config.h"
#include "engine/sortcmp.h"
#include "gpu_exec.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gpu.h"
#include "gpu_part.h"
#include "plan.h"

#define GX_SIZES 10	/* 1, 2, 4, ... 256 (max_batch is at most 256) */
#define GX_TIME_ITERS 30

struct gpu_exec {
	gpu_exec_opts o;
	gpu_parts *parts;
	gpu_part *part;
	cudaStream_t s[2];
	cudaEvent_t fork, join, t0, t1;
	gpu_model *gm;
	int nb, bs[GX_SIZES];
	gpu_tower *tw[tower_max][GX_SIZES];
	cudaGraphExec_t solo[tower_max][GX_SIZES];
	cudaGraphExec_t both[GX_SIZES][GX_SIZES];	/* two streams, captured on first use */
	gpu_plan *plan[GX_SIZES];
	cudaGraphExec_t fused[GX_SIZES];
	int use_fused[GX_SIZES];
	double us_fused[GX_SIZES], us_streams[GX_SIZES];
	char plan_path[GX_SIZES][1400];
	char device[160];
	double roof_tflops, roof_gbs;
	/* sampled SM utilisation */
	gpu_trace *gt;
	long long items, items_at_sample;
	int samples, sample_failed;
	trace_util util;
	/* gpu_exec_trace_begin .. _end: every step traced and kept */
	int tracing, trace_truncated;
	trace_step *tr;		/* the window's steps: ntr of ctr */
	int ntr, ctr;
	unsigned long long trace_records;
};

static void gx_trace_clear(gpu_exec *g);

/* Block records a trace window keeps at most: about 200 bytes of JSON
 * each, so the answer stays well inside a 16 MiB frame. */
#define GX_TRACE_KEEP 60000ull

/* Record slots for a sampled step (32 bytes each on the device). */
#define GX_TRACE_CAP (1u << 18)

static const char *const fuse_names[gpu_fuse_mode_max] = {"auto", "on", "off"};

const char *gpu_fuse_mode_name(gpu_fuse_mode m) { return m < gpu_fuse_mode_max ? fuse_names[m] : "?"; }

int gpu_fuse_mode_parse(const char *s)
{
	for (int i = 0; i < gpu_fuse_mode_max; i++)
		if (!strcmp(s, fuse_names[i]))
			return i;
	return -1;
}

static void gx_note(const gpu_exec *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void gx_note(const gpu_exec *g, const char *fmt, ...)
{
	if (!g->o.progress)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	g->o.progress(line);
}

static int gx_cuda(cudaError_t e, mmf_err *err, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	return mmf_err_set(err, -EIO, "gpu: %s: %s", what, cudaGetErrorString(e));
}

/* The smallest built batch size that holds n samples. */
static int gx_size(const gpu_exec *g, int n)
{
	for (int k = 0; k < g->nb; k++)
		if (g->bs[k] >= n)
			return k;
	return -1;
}

typedef struct gx_shape {
	gpu_exec *g;
	int ki, kt;	/* -1: that tower does not run */
	int fused;
} gx_shape;

static int gx_enqueue(const gx_shape *sh)
{
	gpu_exec *g = sh->g;
	if (sh->fused)
		return plan_enqueue(g->plan[sh->ki], g->tw[TOWER_IMAGE][sh->ki], g->tw[TOWER_TEXT][sh->kt], g->s[0]);
	if (sh->kt < 0)
		return gpu_tower_enqueue(g->tw[TOWER_IMAGE][sh->ki], g->s[0]);
	if (sh->ki < 0)
		return gpu_tower_enqueue(g->tw[TOWER_TEXT][sh->kt], g->s[0]);
	return gpu_towers_enqueue2(g->tw[TOWER_IMAGE][sh->ki], g->tw[TOWER_TEXT][sh->kt], g->s[0], g->s[1], g->fork, g->join, NULL);
}

/* Captures one step shape into an executable graph on stream 0. */
static int gx_capture(gpu_exec *g, int ki, int kt, int fused, cudaGraphExec_t *out, mmf_err *err)
{
	gx_shape sh = {g, ki, kt, fused};
	cudaGraph_t graph = NULL;
	int rc = gx_cuda(cudaStreamBeginCapture(g->s[0], cudaStreamCaptureModeThreadLocal), err, "graph capture");
	if (rc < 0)
		return rc;
	int erc = gx_enqueue(&sh);
	cudaError_t e = cudaStreamEndCapture(g->s[0], &graph);
	if (erc < 0 || e != cudaSuccess) {
		rc = mmf_err_set(err, -EIO, "gpu: capturing the %s step (images %d, texts %d) failed: %s",
				 fused ? "fused" : "unfused", ki < 0 ? 0 : g->bs[ki], kt < 0 ? 0 : g->bs[kt],
				 cudaGetErrorString(e != cudaSuccess ? e : cudaGetLastError()));
	} else {
		rc = gx_cuda(cudaGraphInstantiate(out, graph, 0), err, "graph instantiate");
	}
	if (graph)
		cudaGraphDestroy(graph);
	return rc;
}

/* Median GPU time of one launch of exec, microseconds. */
static int gx_time(gpu_exec *g, cudaGraphExec_t exec, double *us, mmf_err *err)
{
	double t[GX_TIME_ITERS];
	for (int it = -3; it < GX_TIME_ITERS; it++) {
		float ms;
		int rc;
		if ((rc = gx_cuda(cudaEventRecord(g->t0, g->s[0]), err, "timing")) < 0 ||
		    (rc = gx_cuda(cudaGraphLaunch(exec, g->s[0]), err, "graph launch")) < 0 ||
		    (rc = gx_cuda(cudaEventRecord(g->t1, g->s[0]), err, "timing")) < 0 ||
		    (rc = gx_cuda(cudaEventSynchronize(g->t1), err, "timing")) < 0)
			return rc;
		cudaEventElapsedTime(&ms, g->t0, g->t1);
		if (it >= 0)
			t[it] = ms * 1e3;
	}
	qsort(t, GX_TIME_ITERS, sizeof t[0], mmf_cmp_double);
	*us = t[GX_TIME_ITERS / 2];
	return 0;
}

static double gx_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The fusion plan for batch size k: cached, or planned now (tens of
 * seconds) and cached. Then both executions are timed and one chosen. */
static int gx_plan(gpu_exec *g, int k, const char *hash, mmf_err *err)
{
	int rc, b = g->bs[k];
	gpu_tower *ti = g->tw[TOWER_IMAGE][k], *tt = g->tw[TOWER_TEXT][k];
	gpu_plan want = {.nimg = gpu_tower_nops(ti), .ntxt = gpu_tower_nops(tt), .sms = gpu_part_sms(g->part), .batch = b,
			 .strategy = -1};
	snprintf(want.gpu, sizeof want.gpu, "%s", gpu_parts_device_name(g->parts));
	snprintf(want.model_hash, sizeof want.model_hash, "%s", hash);
	if (g->o.plan_dir) {
		mkdir(g->o.plan_dir, 0755);	/* an error shows when the plan is saved */
		plan_cache_path(g->o.plan_dir, &want, g->plan_path[k], sizeof g->plan_path[k]);
		mmf_err lerr = {0};
		rc = plan_load(g->plan_path[k], &want, ti, tt, &g->plan[k], &lerr);
		if (rc == 0)
			gx_note(g, "batch %d: fusion plan %s (cached)", b, g->plan_path[k]);
		else if (rc != -ENOENT)
			gx_note(g, "batch %d: %s; planning again", b, lerr.msg);
	}
	if (!g->plan[k]) {
		if (g->roof_tflops <= 0) {
			/* 256 MiB streams well past any L2 and fits a small Jetson. */
			if ((rc = plan_roofline(want.sms, (size_t)256 << 20, g->s[0], &g->roof_tflops, &g->roof_gbs, err)) < 0)
				return rc;
			gx_note(g, "roofline of this partition: %.1f TFLOP/s, %.0f GB/s", g->roof_tflops, g->roof_gbs);
		}
		gx_note(g, "batch %d: planning fusion (measures every candidate pair; once per model, GPU and partition)", b);
		double t0 = gx_now();
		plan_opts po = {.strategy = -1, .roof_tflops = g->roof_tflops, .roof_gbs = g->roof_gbs};
		if ((rc = plan_build(ti, tt, g->s[0], want.sms, b, want.gpu, hash, &po, &g->plan[k], err)) < 0)
			return mmf_err_prefix(err, "planning fusion for batch %d", b);
		gx_note(g, "batch %d: planned in %.1f s: %d steps for %d ops", b, gx_now() - t0, g->plan[k]->nsteps,
			want.nimg + want.ntxt);
		if (g->o.plan_dir) {
			mmf_err serr = {0};
			if (plan_save(g->plan[k], g->plan_path[k], &serr) < 0)
				gx_note(g, "batch %d: %s (the plan is used but not cached)", b, serr.msg);
		}
	}
	if ((rc = gx_capture(g, k, k, 1, &g->fused[k], err)) < 0 ||
	    (!g->both[k][k] && (rc = gx_capture(g, k, k, 0, &g->both[k][k], err)) < 0) ||
	    (rc = gx_time(g, g->fused[k], &g->us_fused[k], err)) < 0 ||
	    (rc = gx_time(g, g->both[k][k], &g->us_streams[k], err)) < 0)
		return rc;
	g->use_fused[k] = g->o.fuse == GPU_FUSE_ON || g->us_fused[k] < g->us_streams[k];
	gx_note(g, "batch %d: fused %.1f us, two streams %.1f us: %s", b, g->us_fused[k], g->us_streams[k],
		g->use_fused[k] ? "fused" : "two streams");
	return 0;
}

int gpu_exec_new(const chain *img, const chain *txt, const gpu_exec_opts *o, gpu_exec **out, mmf_err *err)
{
	if (o->max_batch < 1 || o->max_batch > 256)
		return mmf_err_set(err, -EINVAL, "gpu: max batch %d, expected 1..256", o->max_batch);
	gpu_exec *g = calloc(1, sizeof *g);
	if (!g)
		return mmf_err_set(err, -ENOMEM, "out of memory");
	g->o = *o;
	const chain *ch[tower_max] = {img, txt};
	int rc;
	if ((rc = gpu_parts_open(0, &g->parts, err)) < 0 || (rc = gpu_parts_check(g->parts, o->sms, err)) < 0 ||
	    (rc = gpu_part_get(g->parts, o->sms, &g->part, err)) < 0 || (rc = gpu_part_stream(g->part, 0, &g->s[0], err)) < 0 ||
	    (rc = gpu_part_stream(g->part, 1, &g->s[1], err)) < 0)
		goto fail;
	if ((rc = gx_cuda(cudaEventCreateWithFlags(&g->fork, cudaEventDisableTiming), err, "events")) < 0 ||
	    (rc = gx_cuda(cudaEventCreateWithFlags(&g->join, cudaEventDisableTiming), err, "events")) < 0 ||
	    (rc = gx_cuda(cudaEventCreate(&g->t0), err, "events")) < 0 || (rc = gx_cuda(cudaEventCreate(&g->t1), err, "events")) < 0)
		goto fail;
	snprintf(g->device, sizeof g->device, "%s, %s", gpu_parts_device_name(g->parts), gpu_part_name(g->part));
	if ((rc = gpu_model_new(img, txt, o->precision, &g->gm, err)) < 0)
		goto fail;
	for (int b = 1; g->nb < GX_SIZES; b *= 2) {
		g->bs[g->nb++] = b < o->max_batch ? b : o->max_batch;
		if (b >= o->max_batch)
			break;
	}
	for (int k = 0; k < g->nb; k++)
		for (int t = 0; t < tower_max; t++) {
			/* GEMM shapes timed on the partition, per batch size */
			if ((rc = gpu_tower_new(g->gm, ch[t], g->bs[k], gpu_part_sms(g->part), g->s[0], &g->tw[t][k], err)) < 0 ||
			    (rc = gx_capture(g, t == TOWER_IMAGE ? k : -1, t == TOWER_TEXT ? k : -1, 0, &g->solo[t][k], err)) < 0)
				goto fail;
		}
	gx_note(g, "%s: towers at batch sizes 1..%d, %.1f MiB on the device (weights %.1f MiB, %s)", g->device,
		o->max_batch, (double)gpu_exec_bytes(g) / (1 << 20), (double)gpu_model_bytes(g->gm) / (1 << 20),
		clip_prec_name(gpu_model_precision(g->gm)));
	if (o->fuse != GPU_FUSE_OFF) {
		char hash[17] = "";
		if ((rc = model_file_hash(o->model_path, o->precision, hash, err)) < 0)
			goto fail;
		for (int k = 0; k < g->nb; k++)
			if ((rc = gx_plan(g, k, hash, err)) < 0)
				goto fail;
	}
	*out = g;
	return 0;
fail:
	gpu_exec_free(g);
	return rc;
}

void gpu_exec_free(gpu_exec *g)
{
	if (!g)
		return;
	if (g->s[0])
		cudaStreamSynchronize(g->s[0]);
	for (int k = 0; k < GX_SIZES; k++) {
		for (int t = 0; t < tower_max; t++)
			if (g->solo[t][k])
				cudaGraphExecDestroy(g->solo[t][k]);
		for (int j = 0; j < GX_SIZES; j++)
			if (g->both[k][j])
				cudaGraphExecDestroy(g->both[k][j]);
		if (g->fused[k])
			cudaGraphExecDestroy(g->fused[k]);
		plan_free(g->plan[k]);
		/* towers before the weights they point into */
		for (int t = 0; t < tower_max; t++)
			gpu_tower_free(g->tw[t][k]);
	}
	gpu_model_free(g->gm);
	gpu_trace_free(g->gt);
	gx_trace_clear(g);
	cudaEvent_t ev[4] = {g->fork, g->join, g->t0, g->t1};
	for (int i = 0; i < 4; i++)
		if (ev[i])
			cudaEventDestroy(ev[i]);
	gpu_parts_close(g->parts);
	free(g);
}

/* Keeps a copy of the step just traced (records still in slot order) for
 * the trace window, analysed into *u. Returns 0 (kept: the window owns l),
 * 1 (the window is full: nothing done), 2 (the records do not match the
 * launches: aerr says why) or a negative errno (out of memory). */
static int gx_keep_step(gpu_exec *g, trace_launch *l, int nl, trace_util *u, mmf_err *aerr)
{
	unsigned n;
	const mmf_trace_rec *r = gpu_trace_records(g->gt, &n);
	if (g->trace_truncated || g->trace_records + n > GX_TRACE_KEEP) {
		g->trace_truncated = 1;
		return 1;
	}
	if (g->ntr == g->ctr) {
		int c = g->ctr ? 2 * g->ctr : 16;
		trace_step *t = realloc(g->tr, (size_t)c * sizeof *t);
		if (!t)
			return -ENOMEM;
		g->tr = t, g->ctr = c;
	}
	gpu_trace *copy;
	if (gpu_trace_from_records(r, n, &copy, NULL) < 0)
		return -ENOMEM;
	if (gpu_trace_analyse(copy, l, nl, gpu_part_sms(g->part), u, aerr) < 0) {
		gpu_trace_free(copy);
		return 2;
	}
	g->tr[g->ntr++] = (trace_step){copy, l, nl};
	g->trace_records += n;
	return 0;
}

/* Runs step sh with its kernels traced (not as a graph) between t0 and t1
 * and keeps its SM utilisation (and, in a trace window, the step). */
static int gx_traced_step(gpu_exec *g, const gx_shape *sh, mmf_err *err)
{
	int rc;
	if (!g->gt && (rc = gpu_trace_new(GX_TRACE_CAP, &g->gt, err)) < 0)
		return rc;
	const chain *img = sh->ki >= 0 ? gpu_tower_chain(g->tw[TOWER_IMAGE][sh->ki]) : NULL;
	const chain *txt = sh->kt >= 0 ? gpu_tower_chain(g->tw[TOWER_TEXT][sh->kt]) : NULL;
	trace_launch *l = NULL;
	/* Unfused image+text steps run on two streams (gx_enqueue), in turn. */
	int nl = sh->fused ? plan_trace_launches(g->plan[sh->ki], img, txt, &l) : trace_launches_chains(img, txt, 1, &l);
	if (nl < 0)
		return mmf_err_set(err, -ENOMEM, "gpu: out of memory tracing a step");
	if ((rc = gpu_trace_on(g->gt, g->s[0], err)) < 0)
		goto out;
	int erc = gx_cuda(cudaEventRecord(g->t0, g->s[0]), err, "event");
	if (erc == 0 && (erc = gx_enqueue(sh)) < 0)
		mmf_err_set(err, erc, "gpu: launching a traced step failed: %s", cudaGetErrorString(cudaGetLastError()));
	if (erc == 0)
		erc = gx_cuda(cudaEventRecord(g->t1, g->s[0]), err, "event");
	if ((rc = gpu_trace_off(g->gt, g->s[0], err)) < 0 || (rc = erc) < 0)
		goto out;
	/* One analysis: of the kept copy in a trace window, else of the records */
	trace_util u;
	mmf_err aerr = {0};
	int k = g->tracing ? gx_keep_step(g, l, nl, &u, &aerr) : 1;
	if (k < 0) {
		rc = mmf_err_set(err, k, "gpu: out of memory keeping a traced step");
		goto out;
	}
	if (k == 0)
		l = NULL;	/* the window owns it */
	if (k == 2 || (k == 1 && gpu_trace_analyse(g->gt, l, nl, gpu_part_sms(g->part), &u, &aerr) < 0)) {
		if (!g->sample_failed)
			gx_note(g, "SM utilisation sample skipped (and any like it): %s", aerr.msg);
		g->sample_failed = 1;
	} else {
		g->util = u;
		g->samples++;
	}
out:
	free(l);
	return rc;
}

static void gx_trace_clear(gpu_exec *g)
{
	for (int i = 0; i < g->ntr; i++)	/* the window owns its steps */
		gpu_trace_free((gpu_trace *)g->tr[i].t), free((trace_launch *)g->tr[i].l);
	free(g->tr);
	g->tr = NULL;
	g->ntr = g->ctr = 0;
	g->trace_records = 0;
	g->trace_truncated = 0;
}

int gpu_exec_trace_begin(gpu_exec *g)
{
	if (g->tracing)
		return -EBUSY;
	gx_trace_clear(g);
	g->tracing = 1;
	return 0;
}

char *gpu_exec_trace_end(gpu_exec *g, unsigned *steps, unsigned long long *records, int *truncated, mmf_err *err)
{
	char title[256];
	snprintf(title, sizeof title, "mmfd engine steps, %s", g->device);
	*steps = (unsigned)g->ntr, *records = g->trace_records, *truncated = g->trace_truncated;
	char *json = gpu_trace_chrome_steps(g->tr, g->ntr, title, err);
	g->tracing = 0;
	gx_trace_clear(g);
	return json;
}

int gpu_exec_util(const gpu_exec *g, trace_util *last)
{
	*last = g->util;
	return g->samples;
}

int gpu_exec_run(gpu_exec *g, const float *px, int ni, const int32_t *tok, int nt, float *img_emb, float *txt_emb,
		 int *fused, double *gpu_us, mmf_err *err)
{
	int ki = ni ? gx_size(g, ni) : -1, kt = nt ? gx_size(g, nt) : -1, rc;
	*fused = 0;
	*gpu_us = 0;
	if ((ni && ki < 0) || (nt && kt < 0) || ni < 0 || nt < 0 || (!ni && !nt))
		return mmf_err_set(err, -EINVAL, "gpu: a step of %d images and %d texts, expected 0..%d of each and not none",
				   ni, nt, g->o.max_batch);
	if (ni && (rc = gpu_tower_set_image(g->tw[TOWER_IMAGE][ki], px, ni, g->s[0], err)) < 0)
		return rc;
	if (nt && (rc = gpu_tower_set_text(g->tw[TOWER_TEXT][kt], tok, nt, g->s[0], err)) < 0)
		return rc;
	cudaGraphExec_t exec;
	if (ni && nt) {
		if (ki == kt && g->use_fused[ki]) {
			exec = g->fused[ki];
			*fused = 1;
		} else {
			if (!g->both[ki][kt] && (rc = gx_capture(g, ki, kt, 0, &g->both[ki][kt], err)) < 0)
				return rc;
			exec = g->both[ki][kt];
		}
	} else {
		exec = ni ? g->solo[TOWER_IMAGE][ki] : g->solo[TOWER_TEXT][kt];
	}
	g->items += ni + nt;
	if ((g->tracing && !g->trace_truncated) ||
	    (g->o.util_every > 0 && g->items - g->items_at_sample >= g->o.util_every)) {
		g->items_at_sample = g->items;
		gx_shape sh = {g, ni ? ki : -1, nt ? kt : -1, *fused};
		if ((rc = gx_traced_step(g, &sh, err)) < 0)
			return rc;
	} else if ((rc = gx_cuda(cudaEventRecord(g->t0, g->s[0]), err, "event")) < 0 ||
		   (rc = gx_cuda(cudaGraphLaunch(exec, g->s[0]), err, "graph launch")) < 0 ||
		   (rc = gx_cuda(cudaEventRecord(g->t1, g->s[0]), err, "event")) < 0) {
		return rc;
	}
	if (ni && (rc = gpu_tower_get_output(g->tw[TOWER_IMAGE][ki], img_emb, ni, g->s[0], err)) < 0)
		return rc;
	if (nt && (rc = gpu_tower_get_output(g->tw[TOWER_TEXT][kt], txt_emb, nt, g->s[0], err)) < 0)
		return rc;
	float ms = 0;
	if ((rc = gx_cuda(cudaEventSynchronize(g->t1), err, "step")) < 0)
		return rc;
	cudaEventElapsedTime(&ms, g->t0, g->t1);
	*gpu_us = ms * 1e3;
	return 0;
}

const char *gpu_exec_device(const gpu_exec *g) { return g->device; }

size_t gpu_exec_bytes(const gpu_exec *g)
{
	size_t n = gpu_model_bytes(g->gm);
	for (int k = 0; k < g->nb; k++)
		for (int t = 0; t < tower_max; t++)
			n += gpu_tower_bytes(g->tw[t][k]);
	return n;
}

size_t gpu_exec_device_used(const gpu_exec *g)
{
	(void)g;
	size_t fr, tot;
	return cudaMemGetInfo(&fr, &tot) == cudaSuccess ? tot - fr : 0;
}

char *gpu_exec_plan_json(const gpu_exec *g)
{
	json_t *sizes = json_array(), *steps = json_array();
	for (int k = 0; k < g->nb; k++) {
		json_array_append_new(sizes, json_integer(g->bs[k]));
		json_t *st = json_pack("{s:i, s:s}", "batch", g->bs[k], "image_and_text",
				       g->use_fused[k] ? "fused" : "two streams");
		if (g->plan[k]) {
			json_object_set_new(st, "fused_us", json_real(g->us_fused[k]));
			json_object_set_new(st, "two_streams_us", json_real(g->us_streams[k]));
			json_object_set_new(st, "plan_file", json_string(g->plan_path[k]));
			json_object_set_new(st, "plan", plan_to_json(g->plan[k]));
		}
		json_array_append_new(steps, st);
	}
	json_t *root = json_pack("{s:s, s:s, s:i, s:s, s:I, s:i, s:s, s:s, s:o, s:o}", "backend", "cuda", "device", g->device,
				 "sms", gpu_part_sms(g->part), "weights", clip_prec_name(gpu_model_precision(g->gm)),
				 "weight_bytes", (json_int_t)gpu_model_bytes(g->gm), "int8_ops", gpu_model_int8(g->gm),
				 "fuse", gpu_fuse_mode_name(g->o.fuse), "image_only_or_text_only",
				 "that tower's graph", "batch_sizes", sizes, "steps", steps);
	char *s = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(root);
	return s;
}
