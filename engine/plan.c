/* The fusion planner: characterisation, pair measurement, the dynamic
 * programme over the two chains, and the JSON plan cache. */
#include "config.h"
#include "engine/hash.h"
#include "engine/sortcmp.h"
#include "plan.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *class_names[op_class_max] = {"compute", "memory", "latency"};
static const char *strategy_names[MMF_FUSE_STRATEGIES] = {"inter", "intra-block", "intra-thread"};

const char *op_class_name(op_class c) { return c < op_class_max ? class_names[c] : "?"; }
const char *fuse_strategy_name(int s) { return s >= 0 && s < MMF_FUSE_STRATEGIES ? strategy_names[s] : "auto"; }

int fuse_strategy_parse(const char *s)
{
	if (!strcmp(s, "auto"))
		return -1;
	for (int i = 0; i < MMF_FUSE_STRATEGIES; i++)
		if (!strcmp(s, strategy_names[i]))
			return i;
	return -2;
}

/* Median over `iters` of the time per launch of fn, measured over REPS
 * back-to-back launches between two events: launch overhead is then paid
 * the way a graph replay pays it, not once per measurement (timing single
 * launches made every fusion look like it saved a whole launch). */
typedef int (*launch_fn)(void *ud, cudaStream_t s);
#define REPS 8

static int time_launch(launch_fn fn, void *ud, cudaStream_t s, int iters, double *us)
{
	cudaEvent_t a, b;
	double v[64];
	if (iters > 64)
		iters = 64;
	if (cudaEventCreate(&a) != cudaSuccess || cudaEventCreate(&b) != cudaSuccess)
		return -EIO;
	int rc = 0;
	for (int it = -2; it < iters && rc == 0; it++) {
		float ms;
		cudaEventRecord(a, s);
		for (int r = 0; r < REPS && rc == 0; r++)
			rc = fn(ud, s);
		cudaEventRecord(b, s);
		if (rc == 0 && cudaEventSynchronize(b) != cudaSuccess)
			rc = -EIO;
		if (rc == 0 && it >= 0) {
			cudaEventElapsedTime(&ms, a, b);
			v[it] = ms * 1e3 / REPS;
		}
	}
	cudaEventDestroy(a);
	cudaEventDestroy(b);
	if (rc == 0) {
		qsort(v, (size_t)iters, sizeof *v, mmf_cmp_double);
		*us = v[iters / 2];
	}
	return rc;
}

typedef struct one { gpu_tower *t; int i; } one;
static int launch_one(void *ud, cudaStream_t s)
{
	one *o = ud;
	return gpu_tower_enqueue_op(o->t, o->i, s);
}

typedef struct pair { const mmf_opdesc *a, *b; const mmf_fuse *f; } pair;
static int launch_pair(void *ud, cudaStream_t s)
{
	pair *p = ud;
	return mmf_fused_launch(p->a, p->b, p->f, (mmf_stream)s);
}

int plan_time_op(gpu_tower *t, int i, cudaStream_t s, int iters, double *us)
{
	one o = {t, i};
	return time_launch(launch_one, &o, s, iters, us);
}

int plan_characterise(gpu_tower *t, cudaStream_t s, const plan_opts *o, op_char *out, mmf_err *err)
{
	const chain *c = gpu_tower_chain(t);
	for (int i = 0; i < c->nops; i++) {
		const op *p = &c->ops[i];
		op_char *q = &out[i];
		if (plan_time_op(t, i, s, 15, &q->us) < 0)
			return mmf_err_set(err, -EIO, "planner: timing %s op %d (%s) failed", tower_name(c->tower), i, p->name);
		double sec = q->us * 1e-6, fl = p->flops * gpu_tower_batch(t), by = op_bytes(p, gpu_tower_batch(t), 2);
		q->tflops = fl / sec / 1e12;
		q->gbs = by / sec / 1e9;
		q->pct_compute = 100.0 * q->tflops / o->roof_tflops;
		q->pct_memory = 100.0 * q->gbs / o->roof_gbs;
		/* An op that reaches neither ceiling by half is limited by latency
		 * or occupancy: it leaves the SMs idle, the best fusion partner. */
		if (q->pct_compute < 50 && q->pct_memory < 50)
			q->cls = CLASS_LATENCY;
		else
			q->cls = q->pct_compute >= q->pct_memory ? CLASS_COMPUTE : CLASS_MEMORY;
	}
	return 0;
}

/* Fused configurations tried for a pair under strategy s. Auto (-1) tries
 * inter- and intra-block only: compute-sanitizer racecheck reports
 * shared-memory hazards in the intra-thread kernel that are not yet
 * understood (docs/NOTES.md), and it was never the fastest in --pairs. */
static int candidates(int strategy, mmf_fuse *out)
{
	int n = 0;
	if (strategy < 0 || strategy == MMF_FUSE_INTER)
		out[n++] = (mmf_fuse){.strategy = MMF_FUSE_INTER};
	if (strategy < 0 || strategy == MMF_FUSE_INTRA_BLOCK) {
		static const int splits[][2] = {{1, 1}, {2, 1}, {1, 2}};
		for (int k = 0; k < 3; k++)
			out[n++] = (mmf_fuse){.strategy = MMF_FUSE_INTRA_BLOCK, .teams_a = splits[k][0], .teams_b = splits[k][1]};
	}
	if (strategy == MMF_FUSE_INTRA_THREAD)
		out[n++] = (mmf_fuse){.strategy = MMF_FUSE_INTRA_THREAD};
	return n;
}

static int complementary(op_class a, op_class b)
{
	return a != b || a == CLASS_LATENCY;
}

int plan_build(gpu_tower *img, gpu_tower *txt, cudaStream_t s, int sms, int batch, const char *gpu,
	       const char *model_hash, const plan_opts *o, gpu_plan **out, mmf_err *err)
{
	*out = NULL;
	int nI = gpu_tower_nops(img), nT = gpu_tower_nops(txt), rc = 0;
	op_char *ci = calloc((size_t)nI, sizeof *ci), *ct = calloc((size_t)nT, sizeof *ct);
	double *fused = malloc((size_t)nI * nT * sizeof *fused);
	mmf_fuse *fcfg = calloc((size_t)nI * nT, sizeof *fcfg);
	double *dp = malloc((size_t)(nI + 1) * (nT + 1) * sizeof *dp);
	char *from = malloc((size_t)(nI + 1) * (nT + 1));
	gpu_plan *p = calloc(1, sizeof *p);
	if (!ci || !ct || !fused || !fcfg || !dp || !from || !p) {
		rc = mmf_err_set(err, -ENOMEM, "planner: out of memory");
		goto out;
	}
	if ((rc = plan_characterise(img, s, o, ci, err)) < 0 || (rc = plan_characterise(txt, s, o, ct, err)) < 0)
		goto out;
	for (int k = 0; k < nI * nT; k++)
		fused[k] = INFINITY;
	/* Candidates: text ops near image op i's relative position, the
	 * complementary ones first, at most per_op of them. */
	double band = o->band > 0 ? o->band : 0.12;
	int per_op = o->per_op > 0 ? o->per_op : 8;
	mmf_fuse cands[8];
	int ncand = candidates(o->strategy, cands);
	for (int i = 0; i < nI; i++) {
		int picked = 0;
		for (int pass = 0; pass < 2 && picked < per_op; pass++) {
			int centre = (int)((i + 0.5) * nT / nI);
			for (int d = 0; d <= nT && picked < per_op; d++)
				for (int sgn = -1; sgn <= 1 && picked < per_op; sgn += 2) {
					int j = centre + sgn * d;
					if ((d == 0 && sgn > 0) || j < 0 || j >= nT || fabs((double)i / nI - (double)j / nT) > band)
						continue;
					if (complementary(ci[i].cls, ct[j].cls) != (pass == 0))
						continue;
					const mmf_opdesc *a = gpu_tower_desc(img, i), *b = gpu_tower_desc(txt, j);
					double best = INFINITY;
					for (int k = 0; k < ncand; k++) {
						if (mmf_fuse_check(a, b, &cands[k], NULL, NULL) < 0)
							continue;
						pair pr = {a, b, &cands[k]};
						double us;
						if (time_launch(launch_pair, &pr, s, 5, &us) < 0) {
							rc = mmf_err_set(err, -EIO, "planner: fused launch of image op %d and text op %d (%s) failed",
									 i, j, fuse_strategy_name(cands[k].strategy));
							goto out;
						}
						p->pairs_measured++;
						if (us < best)
							best = us, fcfg[(size_t)i * nT + j] = cands[k];
					}
					fused[(size_t)i * nT + j] = best;
					picked++;
				}
		}
		if (o->progress && (i % 8 == 7 || i == nI - 1))
			fprintf(o->progress, "\rplanning: image op %d/%d, %d fused configurations measured", i + 1, nI, p->pairs_measured);
	}
	if (o->progress)
		fprintf(o->progress, "\n");
	/* dp[i][j]: the fastest way to have run image ops < i and text ops < j. */
#define DP(i, j) dp[(size_t)(i) * (nT + 1) + (j)]
#define FROM(i, j) from[(size_t)(i) * (nT + 1) + (j)]
	for (int i = 0; i <= nI; i++)
		for (int j = 0; j <= nT; j++) {
			if (!i && !j) {
				DP(0, 0) = 0;
				continue;
			}
			double best = INFINITY;
			char f = 0;
			if (i && DP(i - 1, j) + ci[i - 1].us < best)
				best = DP(i - 1, j) + ci[i - 1].us, f = 'i';
			if (j && DP(i, j - 1) + ct[j - 1].us < best)
				best = DP(i, j - 1) + ct[j - 1].us, f = 't';
			if (i && j && DP(i - 1, j - 1) + fused[(size_t)(i - 1) * nT + j - 1] < best)
				best = DP(i - 1, j - 1) + fused[(size_t)(i - 1) * nT + j - 1], f = 'f';
			DP(i, j) = best;
			FROM(i, j) = f;
		}
	p->nimg = nI, p->ntxt = nT, p->sms = sms, p->batch = batch, p->strategy = o->strategy;
	p->pred_us = DP(nI, nT);
	for (int i = 0; i < nI; i++)
		p->alone_us += ci[i].us;
	for (int j = 0; j < nT; j++)
		p->alone_us += ct[j].us;
	snprintf(p->gpu, sizeof p->gpu, "%s", gpu);
	snprintf(p->model_hash, sizeof p->model_hash, "%s", model_hash);
	if (!(p->steps = calloc((size_t)(nI + nT), sizeof *p->steps))) {
		rc = mmf_err_set(err, -ENOMEM, "planner: out of memory");
		goto out;
	}
	/* Walk back from the end, then reverse. */
	for (int i = nI, j = nT; i || j;) {
		plan_step *st = &p->steps[p->nsteps++];
		char f = FROM(i, j);
		st->img = f == 't' ? -1 : i - 1;
		st->txt = f == 'i' ? -1 : j - 1;
		if (f == 'f') {
			st->fuse = fcfg[(size_t)(i - 1) * nT + j - 1];
			st->pred_us = fused[(size_t)(i - 1) * nT + j - 1];
		} else
			st->pred_us = f == 'i' ? ci[i - 1].us : ct[j - 1].us;
		i -= f != 't';
		j -= f != 'i';
	}
#undef DP
#undef FROM
	for (int a = 0, b = p->nsteps - 1; a < b; a++, b--) {
		plan_step t = p->steps[a];
		p->steps[a] = p->steps[b];
		p->steps[b] = t;
	}
	*out = p;
	p = NULL;
out:
	plan_free(p);
	free(ci), free(ct), free(fused), free(fcfg), free(dp), free(from);
	return rc;
}

int plan_enqueue(const gpu_plan *p, gpu_tower *img, gpu_tower *txt, cudaStream_t s)
{
	for (int k = 0; k < p->nsteps; k++) {
		const plan_step *st = &p->steps[k];
		int rc;
		if (st->img >= 0 && st->txt >= 0)
			rc = mmf_fused_launch(gpu_tower_desc(img, st->img), gpu_tower_desc(txt, st->txt), &st->fuse, (mmf_stream)s);
		else if (st->img >= 0)
			rc = gpu_tower_enqueue_op(img, st->img, s);
		else
			rc = gpu_tower_enqueue_op(txt, st->txt, s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void plan_print(const gpu_plan *p, gpu_tower *img, gpu_tower *txt, FILE *fp)
{
	const chain *ci = gpu_tower_chain(img), *ct = gpu_tower_chain(txt);
	int fusedn = 0;
	for (int k = 0; k < p->nsteps; k++)
		fusedn += p->steps[k].img >= 0 && p->steps[k].txt >= 0;
	fprintf(fp, "plan: %s, %d SMs, batch %d, strategy %s: %d steps (%d fused pairs) from %d image + %d text ops\n", p->gpu,
		p->sms, p->batch, fuse_strategy_name(p->strategy), p->nsteps, fusedn, p->nimg, p->ntxt);
	fprintf(fp, "  predicted %.1f us (every op alone, back to back: %.1f us); %d fused configurations measured\n",
		p->pred_us, p->alone_us, p->pairs_measured);
	fprintf(fp, "  %4s  %-24s %-24s %-22s %9s\n", "step", "image op", "text op", "strategy (teams A:B)", "pred us");
	for (int k = 0; k < p->nsteps; k++) {
		const plan_step *st = &p->steps[k];
		char strat[40] = "alone";
		if (st->img >= 0 && st->txt >= 0) {
			if (st->fuse.strategy == MMF_FUSE_INTRA_BLOCK)
				snprintf(strat, sizeof strat, "intra-block (%d:%d)", st->fuse.teams_a, st->fuse.teams_b);
			else
				snprintf(strat, sizeof strat, "%s", fuse_strategy_name(st->fuse.strategy));
		}
		fprintf(fp, "  %4d  %-24s %-24s %-22s %9.2f\n", k, st->img >= 0 ? ci->ops[st->img].name : "-",
			st->txt >= 0 ? ct->ops[st->txt].name : "-", strat, st->pred_us);
	}
}

void plan_free(gpu_plan *p)
{
	if (!p)
		return;
	free(p->steps);
	free(p);
}

int plan_trace_launches(const gpu_plan *p, const chain *img, const chain *txt, trace_launch **out)
{
	if (!p)
		return trace_launches_chains(img, txt, 0, out);
	const chain *c[2] = {img, txt};
	trace_launch *l = calloc((size_t)(p->nsteps ? p->nsteps : 1), sizeof *l);
	if (!l)
		return -ENOMEM;
	for (int i = 0; i < p->nsteps; i++) {
		const plan_step *st = &p->steps[i];
		if (st->img >= 0 && st->txt >= 0) {
			snprintf(l[i].name, sizeof l[i].name, "%s + %s", img->ops[st->img].name, txt->ops[st->txt].name);
			l[i].tower = TRACE_BOTH;
			l[i].per_block = st->fuse.strategy == MMF_FUSE_INTRA_BLOCK ? 2 : 1;
		} else {
			int t = st->img >= 0 ? 0 : 1;
			snprintf(l[i].name, sizeof l[i].name, "%s", c[t]->ops[t ? st->txt : st->img].name);
			l[i].tower = t, l[i].per_block = 1;
		}
	}
	*out = l;
	return p->nsteps;
}

/* ------------------------------------------------------------ cache */

int model_file_hash(const char *path, int prec, char out[17], mmf_err *err)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return mmf_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	uint64_t h = MMF_FNV1A_BASIS, n = 0;
	unsigned char len8[8];
	int rc = 0;
	if (fread(len8, 1, 8, fp) != 8)
		rc = mmf_err_set(err, -EINVAL, "%s: too short to be a safetensors file", path);
	for (int i = 7; rc == 0 && i >= 0; i--)
		n = (n << 8) | len8[i];
	if (rc == 0 && n > (100u << 20))
		rc = mmf_err_set(err, -EINVAL, "%s: header length %llu is over the limit", path, (unsigned long long)n);
	for (uint64_t k = 0; rc == 0 && k < n + 8; k++) {
		int c = k < 8 ? len8[k] : fgetc(fp);
		if (c == EOF) {
			rc = mmf_err_set(err, -EINVAL, "%s: truncated header", path);
			break;
		}
		h = mmf_fnv1a_step(h, (unsigned)c);
	}
	if (rc == 0 && fseek(fp, 0, SEEK_END) == 0) {
		long sz = ftell(fp);
		h = mmf_fnv1a_step(h, (uint64_t)sz);
		/* int8 and fp32 run other kernels: their own plans (fp16's hash
		 * is the one plans had before there were precisions) */
		const char *w = prec == CLIP_PREC_INT8 ? "weights=int8" : prec == CLIP_PREC_FP32 ? "weights=fp32" : "";
		h = mmf_fnv1a(h, w, strlen(w));
		snprintf(out, 17, "%016llx", (unsigned long long)h);
	}
	fclose(fp);
	return rc;
}

void plan_cache_path(const char *dir, const gpu_plan *want, char *buf, size_t len)
{
	char g[sizeof want->gpu];
	snprintf(g, sizeof g, "%s", want->gpu);
	for (char *c = g; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
			*c = '_';
	snprintf(buf, len, "%s/plan-%s-%s-%dsm-b%d-%s.json", dir, want->model_hash, g, want->sms, want->batch,
		 fuse_strategy_name(want->strategy));
}

json_t *plan_to_json(const gpu_plan *p)
{
	json_t *steps = json_array();
	for (int k = 0; k < p->nsteps; k++) {
		const plan_step *st = &p->steps[k];
		json_t *s = json_pack("{s:i, s:i, s:f}", "image", st->img, "text", st->txt, "pred_us", st->pred_us);
		if (st->img >= 0 && st->txt >= 0) {
			json_object_set_new(s, "strategy", json_string(fuse_strategy_name(st->fuse.strategy)));
			json_object_set_new(s, "teams_a", json_integer(st->fuse.teams_a));
			json_object_set_new(s, "teams_b", json_integer(st->fuse.teams_b));
			json_object_set_new(s, "grid_a", json_integer(st->fuse.grid_a));
			json_object_set_new(s, "grid_b", json_integer(st->fuse.grid_b));
		}
		json_array_append_new(steps, s);
	}
	return json_pack("{s:i, s:s, s:s, s:i, s:i, s:s, s:i, s:i, s:f, s:f, s:i, s:o}", "version", 1, "model_hash",
			 p->model_hash, "gpu", p->gpu, "sms", p->sms, "batch", p->batch, "strategy",
			 fuse_strategy_name(p->strategy), "image_ops", p->nimg, "text_ops", p->ntxt, "predicted_us",
			 p->pred_us, "alone_us", p->alone_us, "pairs_measured", p->pairs_measured, "steps", steps);
}

int plan_save(const gpu_plan *p, const char *path, mmf_err *err)
{
	json_t *root = plan_to_json(p);
	int rc = 0;
	if (!root || json_dump_file(root, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER) < 0)
		rc = mmf_err_set(err, -EIO, "%s: cannot write the plan", path);
	json_decref(root);
	return rc;
}

/* Streaming copy of `bytes` (read plus write counted) and a 4096^3 GEMM
 * through our own tensor-core kernel, five times each after a warm-up. */
int plan_roofline(int sms, size_t bytes, cudaStream_t s, double *tflops, double *gbs, mmf_err *err)
{
	void *x = NULL, *y = NULL;
	cudaEvent_t a = NULL, b = NULL;
	int rc = 0, n = 4096;
	float ms;
	if (bytes < (size_t)3 * n * n * 2)
		bytes = (size_t)3 * n * n * 2;	/* the GEMM's A, B and C live in x */
	if (cudaMalloc(&x, bytes) != cudaSuccess || cudaMalloc(&y, bytes) != cudaSuccess ||
	    cudaMemsetAsync(x, 0x3c, bytes, s) != cudaSuccess ||	/* 1.0 in fp16: not zeros */
	    cudaEventCreate(&a) != cudaSuccess || cudaEventCreate(&b) != cudaSuccess) {
		rc = mmf_err_set(err, -ENOMEM, "roofline: cannot allocate 2 x %zu MiB on the GPU", bytes >> 20);
		goto out;
	}
	if ((rc = mmf_copy_bw(x, y, bytes, sms, (mmf_stream)s)) < 0)
		goto fail;
	cudaEventRecord(a, s);
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = mmf_copy_bw(x, y, bytes, sms, (mmf_stream)s);
	cudaEventRecord(b, s);
	if (rc < 0 || cudaEventSynchronize(b) != cudaSuccess)
		goto fail;
	cudaEventElapsedTime(&ms, a, b);
	*gbs = 5.0 * 2 * bytes / (ms / 1e3) / 1e9;
	mmf_gemm g = {.A = x, .B = (char *)x + (size_t)n * n * 2, .C = y, .M = n, .N = n, .K = n,
		      .rps = n, .lda = n, .sstride = (long long)n * n};
	if ((rc = mmf_gemm_f16(&g, MMF_GEMM_L, 0, (mmf_stream)s)) < 0)
		goto fail;
	cudaEventRecord(a, s);
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = mmf_gemm_f16(&g, MMF_GEMM_L, 0, (mmf_stream)s);
	cudaEventRecord(b, s);
	if (rc < 0 || cudaEventSynchronize(b) != cudaSuccess)
		goto fail;
	cudaEventElapsedTime(&ms, a, b);
	*tflops = 5.0 * 2.0 * n * n * (double)n / (ms / 1e3) / 1e12;
	goto out;
fail:
	rc = mmf_err_set(err, -EIO, "roofline: a measurement kernel failed: %s", cudaGetErrorString(cudaGetLastError()));
out:
	cudaFree(x);
	cudaFree(y);
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
	return rc;
}

int plan_check_towers(const gpu_plan *p, const gpu_tower *img, const gpu_tower *txt, mmf_err *err)
{
	for (int k = 0; k < p->nsteps; k++) {
		const plan_step *st = &p->steps[k];
		if (st->img < 0 || st->txt < 0)
			continue;
		if (st->img >= gpu_tower_nops(img) || st->txt >= gpu_tower_nops(txt))
			return mmf_err_set(err, -ESTALE, "stale plan: step %d fuses image op %d with text op %d, which these "
					   "towers (%d and %d ops) cannot run fused", k, st->img, st->txt, gpu_tower_nops(img),
					   gpu_tower_nops(txt));
		const mmf_opdesc *a = gpu_tower_desc(img, st->img), *b = gpu_tower_desc(txt, st->txt);
		if (mmf_fuse_check(a, b, &st->fuse, NULL, NULL) < 0)
			return mmf_err_set(err, -ESTALE, "stale plan: step %d fuses image op %d (%s) with text op %d (%s), which "
					   "these kernels cannot run fused", k, st->img, mmf_op_kind_name(a->kind), st->txt,
					   mmf_op_kind_name(b->kind));
	}
	return 0;
}

int plan_load(const char *path, const gpu_plan *want, const gpu_tower *img, const gpu_tower *txt, gpu_plan **out,
	      mmf_err *err)
{
	*out = NULL;
	json_error_t je;
	FILE *fp = fopen(path, "r");
	if (!fp)
		return mmf_err_set(err, -errno, "%s: %s", path, strerror(errno));
	json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &je);
	fclose(fp);
	if (!root)
		return mmf_err_set(err, -EINVAL, "%s: corrupt plan: %s at line %d", path, je.text, je.line);
	gpu_plan *p = calloc(1, sizeof *p);
	int rc = 0;
	const char *hash = NULL, *gpu = NULL, *strat = NULL;
	json_t *steps = NULL;
	int version = 0;
	if (!p || json_unpack_ex(root, &je, 0, "{s:i, s:s, s:s, s:i, s:i, s:s, s:i, s:i, s:F, s:F, s:i, s:o}", "version",
				 &version, "model_hash", &hash, "gpu", &gpu, "sms", &p->sms, "batch", &p->batch, "strategy",
				 &strat, "image_ops", &p->nimg, "text_ops", &p->ntxt, "predicted_us", &p->pred_us,
				 "alone_us", &p->alone_us, "pairs_measured", &p->pairs_measured, "steps", &steps) < 0) {
		rc = mmf_err_set(err, -EINVAL, "%s: corrupt plan: %s", path, p ? je.text : "out of memory");
		goto out;
	}
	p->strategy = fuse_strategy_parse(strat);
	snprintf(p->model_hash, sizeof p->model_hash, "%s", hash);
	snprintf(p->gpu, sizeof p->gpu, "%s", gpu);
	if (version != 1 || strcmp(p->model_hash, want->model_hash) || strcmp(p->gpu, want->gpu) || p->sms != want->sms ||
	    p->batch != want->batch || p->strategy != want->strategy || p->nimg != want->nimg || p->ntxt != want->ntxt) {
		rc = mmf_err_set(err, -ESTALE, "%s: stale plan (made for model %s, %s, %d SMs, batch %d, strategy %s, %d+%d ops; "
				 "now model %s, %s, %d SMs, batch %d, strategy %s, %d+%d ops)", path, p->model_hash, p->gpu,
				 p->sms, p->batch, strat, p->nimg, p->ntxt, want->model_hash, want->gpu, want->sms, want->batch,
				 fuse_strategy_name(want->strategy), want->nimg, want->ntxt);
		goto out;
	}
	size_t n = json_array_size(steps);
	if (!json_is_array(steps) || n > (size_t)(p->nimg + p->ntxt) || !(p->steps = calloc(n + 1, sizeof *p->steps))) {
		rc = mmf_err_set(err, -EINVAL, "%s: corrupt plan: bad step list", path);
		goto out;
	}
	int ni = 0, nt = 0;
	for (size_t k = 0; k < n; k++) {
		plan_step *st = &p->steps[k];
		const char *sn = NULL;
		json_t *s = json_array_get(steps, k);
		if (json_unpack_ex(s, &je, 0, "{s:i, s:i, s:F, s?:s, s?:i, s?:i, s?:i, s?:i}", "image", &st->img, "text", &st->txt,
				   "pred_us", &st->pred_us, "strategy", &sn, "teams_a", &st->fuse.teams_a, "teams_b",
				   &st->fuse.teams_b, "grid_a", &st->fuse.grid_a, "grid_b", &st->fuse.grid_b) < 0) {
			rc = mmf_err_set(err, -EINVAL, "%s: corrupt plan: step %zu: %s", path, k, je.text);
			goto out;
		}
		/* Every op exactly once, in chain order. */
		int both = st->img >= 0 && st->txt >= 0;
		if ((st->img >= 0 && st->img != ni) || (st->txt >= 0 && st->txt != nt) || (st->img < 0 && st->txt < 0) ||
		    (both && (!sn || fuse_strategy_parse(sn) < 0))) {
			rc = mmf_err_set(err, -EINVAL, "%s: corrupt plan: step %zu (image %d, text %d) breaks chain order", path, k,
					 st->img, st->txt);
			goto out;
		}
		if (both)
			st->fuse.strategy = fuse_strategy_parse(sn);
		ni += st->img >= 0;
		nt += st->txt >= 0;
		p->nsteps++;
	}
	if (ni != p->nimg || nt != p->ntxt) {
		rc = mmf_err_set(err, -EINVAL, "%s: corrupt plan: covers %d of %d image and %d of %d text ops", path, ni, p->nimg, nt,
				 p->ntxt);
		goto out;
	}
	if (img && txt && (rc = plan_check_towers(p, img, txt, err)) < 0) {
		mmf_err_prefix(err, "%s", path);
		goto out;
	}
	*out = p;
	p = NULL;
out:
	plan_free(p);
	json_decref(root);
	return rc;
}
