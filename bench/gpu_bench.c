/* The CUDA half of mmf-bench. For each SM partition: measure the roofline
 * (a streaming copy and a large GEMM of our own), build both towers (GEMM
 * tile configurations tuned on that partition), check the embeddings
 * against the CPU backend, then time every execution mode for the image
 * tower alone, the text tower alone and both, and check that every mode's
 * outputs are bitwise equal. */
#include "config.h"
#include "gpu_bench.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gpu.h"
#include "engine/gpu_part.h"
#include "engine/synth.h"
#include "kernels/mmf_kernels.h"

enum { MODE_SEQ, MODE_STREAMS, MODE_GRAPH, MODE_GRAPH_STREAMS, mode_max };
static const char *mode_names[mode_max] = {"seq", "streams", "graph", "graph-streams"};
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

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static float pctf(float *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, cmp_float);
	double idx = p * (n - 1);
	int lo = (int)idx;
	return lo + 1 < n ? (float)(v[lo] + (idx - lo) * (v[lo + 1] - v[lo])) : v[lo];
}

typedef struct run_ctx {
	gpu_tower *tw[2];
	cudaStream_t s[2];
	cudaEvent_t fork, join;
} run_ctx;

/* Enqueues one iteration of (mode, what) on r->s[0] (forking to s[1] for
 * the two-stream modes). Graph modes are captured from this. */
static int enqueue(run_ctx *r, int mode, int what)
{
	int two = (mode == MODE_STREAMS || mode == MODE_GRAPH_STREAMS) && what == WHAT_BOTH;
	int rc = 0;
	if (what == WHAT_IMAGE)
		return gpu_tower_enqueue(r->tw[0], r->s[0]);
	if (what == WHAT_TEXT)
		return gpu_tower_enqueue(r->tw[1], r->s[0]);
	if (!two) {
		if ((rc = gpu_tower_enqueue(r->tw[0], r->s[0])) < 0)
			return rc;
		return gpu_tower_enqueue(r->tw[1], r->s[0]);
	}
	if (cudaEventRecord(r->fork, r->s[0]) != cudaSuccess || cudaStreamWaitEvent(r->s[1], r->fork, 0) != cudaSuccess)
		return -EIO;
	if ((rc = gpu_tower_enqueue(r->tw[0], r->s[0])) < 0 || (rc = gpu_tower_enqueue(r->tw[1], r->s[1])) < 0)
		return rc;
	if (cudaEventRecord(r->join, r->s[1]) != cudaSuccess || cudaStreamWaitEvent(r->s[0], r->join, 0) != cudaSuccess)
		return -EIO;
	return 0;
}

typedef struct timing { float p10, p50, p90; } timing;

static int time_mode(run_ctx *r, int mode, int what, int warmup, int iters, timing *t)
{
	cudaGraph_t graph = NULL;
	cudaGraphExec_t exec = NULL;
	cudaEvent_t a = NULL, b = NULL;
	float *ms = calloc((size_t)iters, sizeof *ms);
	int rc = 0;
	if (!ms)
		return -ENOMEM;
	if (mode == MODE_GRAPH || mode == MODE_GRAPH_STREAMS) {
		CUDA_OR(cudaStreamBeginCapture(r->s[0], cudaStreamCaptureModeThreadLocal), "graph capture");
		rc = enqueue(r, mode, what);
		cudaError_t e = cudaStreamEndCapture(r->s[0], &graph);
		if (rc < 0 || e != cudaSuccess) {
			fprintf(stderr, "mmf-bench: capturing %s/%s failed: %s\n", mode_names[mode], what_names[what], cudaGetErrorString(e));
			rc = -EIO;
			goto out;
		}
		CUDA_OR(cudaGraphInstantiate(&exec, graph, 0), "graph instantiate");
	}
	CUDA_OR(cudaEventCreate(&a), "events");
	CUDA_OR(cudaEventCreate(&b), "events");
	for (int it = -warmup; it < iters; it++) {
		CUDA_OR(cudaEventRecord(a, r->s[0]), "event");
		if (exec)
			CUDA_OR(cudaGraphLaunch(exec, r->s[0]), "graph launch");
		else if ((rc = enqueue(r, mode, what)) < 0)
			goto out;
		CUDA_OR(cudaEventRecord(b, r->s[0]), "event");
		CUDA_OR(cudaEventSynchronize(b), "run");
		if (it >= 0)
			CUDA_OR(cudaEventElapsedTime(&ms[it], a, b), "event time");
	}
	t->p10 = pctf(ms, iters, 0.1);
	t->p50 = pctf(ms, iters, 0.5);
	t->p90 = pctf(ms, iters, 0.9);
out:
	if (exec)
		cudaGraphExecDestroy(exec);
	if (graph)
		cudaGraphDestroy(graph);
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
	free(ms);
	return rc;
}

typedef struct roof { double gbs, tflops; } roof;

/* Measured ceilings of this partition: a 1 GiB streaming copy (bytes read
 * plus written) and a 4096^3 GEMM through our own tensor-core kernel. */
static int measure_roofline(int sms, cudaStream_t s, roof *out)
{
	size_t bytes = (size_t)1 << 30;
	void *x = NULL, *y = NULL;
	cudaEvent_t a = NULL, b = NULL;
	int rc = 0;
	float ms;
	CUDA_OR(cudaMalloc(&x, bytes), "roofline");
	CUDA_OR(cudaMalloc(&y, bytes), "roofline");
	CUDA_OR(cudaMemsetAsync(x, 0x3c, bytes, s), "roofline");	/* 1.0 in fp16: not zeros */
	CUDA_OR(cudaEventCreate(&a), "roofline");
	CUDA_OR(cudaEventCreate(&b), "roofline");
	if ((rc = mmf_copy_bw(x, y, bytes, sms, (mmf_stream)s)) < 0)
		goto out;
	CUDA_OR(cudaEventRecord(a, s), "roofline");
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = mmf_copy_bw(x, y, bytes, sms, (mmf_stream)s);
	CUDA_OR(cudaEventRecord(b, s), "roofline");
	CUDA_OR(cudaEventSynchronize(b), "roofline");
	cudaEventElapsedTime(&ms, a, b);
	out->gbs = 5.0 * 2 * bytes / (ms / 1e3) / 1e9;
	int n = 4096;
	mmf_gemm g = {.A = x, .B = (char *)x + (size_t)n * n * 2, .C = y, .M = n, .N = n, .K = n,
		      .rps = n, .lda = n, .sstride = (long long)n * n};
	if ((rc = mmf_gemm_f16(&g, MMF_GEMM_L, 0, (mmf_stream)s)) < 0)
		goto out;
	CUDA_OR(cudaEventRecord(a, s), "roofline");
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = mmf_gemm_f16(&g, MMF_GEMM_L, 0, (mmf_stream)s);
	CUDA_OR(cudaEventRecord(b, s), "roofline");
	CUDA_OR(cudaEventSynchronize(b), "roofline");
	cudaEventElapsedTime(&ms, a, b);
	out->tflops = 5.0 * 2.0 * n * n * (double)n / (ms / 1e3) / 1e12;
out:
	cudaFree(x);
	cudaFree(y);
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
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
			fprintf(stderr, "mmf-bench: --modes: unknown mode '%s' (expected seq, streams, graph or graph-streams)\n", t);
			return -1;
		}
		modes[n++] = k;
		if (n == mode_max)
			break;
	}
	return n;
}

/* Random inputs: normal pixels, token rows with SOT/EOT of varied length. */
static void make_inputs(const clip_config *c, int batch, unsigned long long seed, float *px, int32_t *tok)
{
	mmf_rng r;
	mmf_rng_seed(&r, seed * 7919 + 1);
	for (size_t i = 0; i < (size_t)batch * 3 * c->image_size * c->image_size; i++)
		px[i] = mmf_rng_normal(&r);
	memset(tok, 0, (size_t)batch * c->context * sizeof *tok);
	for (int s = 0; s < batch; s++) {
		int len = 2 + (int)(mmf_rng_u64(&r) % (uint64_t)(c->context - 1));
		int32_t *t = tok + (size_t)s * c->context;
		t[0] = c->vocab - 2;
		for (int i = 1; i < len - 1; i++)
			t[i] = 1 + (int32_t)(mmf_rng_u64(&r) % (uint64_t)(c->vocab - 3));
		t[len - 1] = c->vocab - 1;
	}
}

static double cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;
	for (int i = 0; i < n; i++)
		ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
	return ab / (sqrt(aa * bb) + 1e-300);
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
			double us = pctf(ms, iters, 0.5) * 1e3, fl = o->flops * batch, by = op_bytes(o, batch, 2);
			double tf = fl / (us * 1e-6) / 1e12, gb = by / (us * 1e-6) / 1e9;
			double tc = fl / (rf->tflops * 1e12), tb = by / (rf->gbs * 1e9);
			double floor = tc > tb ? tc : tb, pct = 100.0 * floor / (us * 1e-6);
			const char *bound = tc > tb ? "compute" : "memory";
			char cfgs[16] = "-";
			if (gpu_tower_op_cfg(tw, i) >= 0)
				snprintf(cfgs, sizeof cfgs, "%cx%d", "LMSWN"[gpu_tower_op_cfg(tw, i)], gpu_tower_op_splits(tw, i));
			printf("  %-6s %4d %-24s %-11s %6s %9.2f %9.2f %9.1f %6.1f%%  %s\n", tower_name(ch->tower), i, o->name,
			       op_kind_name(o->kind), cfgs, us, tf, gb, pct, bound);
			if (json)
				fprintf(json, "%s        {\"tower\": \"%s\", \"index\": %d, \"name\": \"%s\", \"kind\": \"%s\", \"gemm_cfg\": %d, \"splits\": %d, "
					"\"us\": %.3f, \"flops\": %.0f, \"bytes\": %.0f, \"tflops\": %.4f, \"gbs\": %.2f, \"pct_roofline\": %.2f, \"bound\": \"%s\"}",
					firstop ? "" : ",\n", tower_name(ch->tower), i, o->name, op_kind_name(o->kind),
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

int gpu_bench_run(const gpu_bench_opts *o, clip_model *m, chain *const ch[2])
{
	mmf_err err = {0};
	gpu_parts *parts = NULL;
	gpu_model *gm = NULL;
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
	const char *gpu = gpu_parts_device_name(parts);
	int total = gpu_parts_total_sms(parts);
	/* CPU reference embeddings for the same inputs. */
	make_inputs(cfg, B, o->seed, px, tok);
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
	if ((rc = gpu_model_new(ch[0], ch[1], &gm, &err)) < 0) {
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
		goto out;
	}
	printf("device: %s, %d SMs; weights resident: %.1f MB fp16; batch %d, %d iterations after %d warm-up\n", gpu, total,
	       gpu_model_bytes(gm) / 1e6, B, o->iters, o->warmup);
	printf("programmatic dependent launch: %s\n", mmf_get_pdl() ? "on (sm_90+; MMF_PDL=0 turns it off)" : "off");
	printf("note: an SM partition restricts SMs only; L2 cache and DRAM bandwidth are shared with the whole GPU\n");
	if (o->json)
		fprintf(o->json, "  \"gpu\": \"%s\",\n  \"gpu_sms\": %d,\n  \"weights_mb\": %.2f,\n"
			"  \"pdl\": %s,\n  \"partition_note\": \"SM partitions (green contexts) restrict SMs only; L2 and DRAM bandwidth are not partitioned\",\n"
			"  \"partitions\": [\n", gpu, total, gpu_model_bytes(gm) / 1e6, mmf_get_pdl() ? "true" : "false");
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
		CUDA_OR(cudaEventCreateWithFlags(&r.fork, cudaEventDisableTiming), "events");
		CUDA_OR(cudaEventCreateWithFlags(&r.join, cudaEventDisableTiming), "events");
		if ((rc = measure_roofline(n, r.s[0], &rf)) < 0)
			goto out;
		printf("\n== partition: %s of %s (L2 and DRAM bandwidth not partitioned)\n", gpu_part_name(p), gpu);
		printf("   measured roofline: %.0f GB/s streaming copy, %.1f TFLOP/s fp16 GEMM (mma.sync, 4096^3)\n", rf.gbs, rf.tflops);
		for (int t = 0; t < 2; t++)
			if ((rc = gpu_tower_new(gm, ch[t], B, n, o->tune ? r.s[0] : NULL, &r.tw[t], &err)) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
		if ((rc = gpu_tower_set_image(r.tw[0], px, B, r.s[0], &err)) < 0 || (rc = gpu_tower_set_text(r.tw[1], tok, B, r.s[0], &err)) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			goto out;
		}
		if (o->json)
			fprintf(o->json, "%s    {\n      \"sms\": %d,\n      \"roofline\": {\"copy_gbs\": %.1f, \"gemm_tflops\": %.2f},\n",
				pi ? ",\n" : "", n, rf.gbs, rf.tflops);
		printf("   %-14s %-6s %9s %9s %9s   %s\n", "mode", "what", "p10 ms", "median", "p90 ms", "outputs");
		if (o->json)
			fprintf(o->json, "      \"modes\": [\n");
		int firstj = 1;
		for (int mi = 0; mi < nmodes; mi++) {
			for (int w = 0; w < what_max; w++) {
				timing tm = {0, 0, 0};
				if ((rc = time_mode(&r, modes[mi], w, o->warmup, o->iters, &tm)) < 0)
					goto out;
				/* Outputs of this mode: bitwise against the first mode, cosine against the CPU. */
				char verdict[160] = "";
				if (w == WHAT_BOTH) {
					for (int t = 0; t < 2; t++)
						if ((rc = gpu_tower_get_output(r.tw[t], got[t], B, r.s[0], &err)) < 0) {
							fprintf(stderr, "mmf-bench: %s\n", err.msg);
							goto out;
						}
					double cmin = 1;
					for (int t = 0; t < 2; t++)
						for (int s = 0; s < B; s++) {
							double cs = cosine(got[t] + (size_t)s * E, ref[t] + (size_t)s * E, E);
							cmin = cs < cmin ? cs : cmin;
						}
					int bitwise = 1;
					if (mi == 0)
						memcpy(first[0], got[0], (size_t)B * E * 4), memcpy(first[1], got[1], (size_t)B * E * 4);
					else
						bitwise = !memcmp(first[0], got[0], (size_t)B * E * 4) && !memcmp(first[1], got[1], (size_t)B * E * 4);
					int ok = bitwise && cmin >= 0.999;
					failed |= !ok;
					snprintf(verdict, sizeof verdict, "%s, min cosine vs CPU fp32 %.6f%s",
						 mi == 0 ? "reference" : bitwise ? "bitwise equal" : "DIFFER",
						 cmin, ok ? "" : "  FAILED");
				}
				printf("   %-14s %-6s %9.3f %9.3f %9.3f   %s\n", mode_names[modes[mi]], what_names[w], tm.p10, tm.p50, tm.p90, verdict);
				if (o->json)
					fprintf(o->json, "%s        {\"mode\": \"%s\", \"what\": \"%s\", \"p10_ms\": %.4f, \"median_ms\": %.4f, \"p90_ms\": %.4f}",
						firstj ? "" : ",\n", mode_names[modes[mi]], what_names[w], tm.p10, tm.p50, tm.p90);
				firstj = 0;
			}
		}
		if (o->json)
			fprintf(o->json, "\n      ]");
		if (o->ops && (rc = per_op_table(&r, &rf, B, o->iters, o->json)) < 0)
			goto out;
		if (o->json)
			fprintf(o->json, "\n    }");
		gpu_tower_free(r.tw[0]);
		gpu_tower_free(r.tw[1]);
		cudaEventDestroy(r.fork);
		cudaEventDestroy(r.join);
	}
	if (o->json)
		fprintf(o->json, "\n  ],\n");
	rc = failed;
out:
	gpu_model_free(gm);
	gpu_parts_close(parts);
	free(px), free(tok);
	for (int t = 0; t < 2; t++)
		free(ref[t]), free(got[t]), free(first[t]);
	return rc;
}
