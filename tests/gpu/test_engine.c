/* GPU engine tests (make check-gpu), for the small and RN50 configurations:
 * - every op of both towers, in isolation: the CPU reference is fed the
 *   GPU's own inputs to that op (fp16, converted) and its output compared
 *   with the GPU's (relative L2 <= 5e-3), so an error is pinned to one op;
 * - end to end: cosine >= 0.999 against the CPU fp32 embeddings;
 * - a graph replay and a two-stream run give bitwise the same outputs as a
 *   plain run;
 * - all of it again with int8 weights (--weights int8): the CPU reference
 *   then computes with the same quantised weights, dequantised;
 * - and in fp32 (--weights fp32, the SIMT kernels), where the bars are
 *   relative L2 <= 1e-4 per op (fp32 rounding in another order, and the
 *   kernels' fast exp) and cosine >= 0.99999 end to end. */
#include "config.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/gpu.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "tests/gpu/gputest.h"
#include "tests/testutil.h"


/* Element i of a device tensor copied to the host: fp16 or fp32. */
static float elem(const void *h, int64_t i, int f32)
{
	return f32 ? ((const float *)h)[i] : mmf_half_to_float(((const uint16_t *)h)[i]);
}

/* Chain buffer b of tower t as float32 on the host. */
static float *fetch(gpu_tower *t, const chain *c, int b, int batch, int f32)
{
	int64_t n = c->bufs[b].elems * batch;
	size_t es = f32 ? 4 : 2;
	float *f = malloc((size_t)n * 4 + 4);
	if (b == c->in && c->tower == TOWER_IMAGE) {	/* NHWC with 8 channels -> 3 */
		void *h = malloc((size_t)n / 3 * 8 * es);
		CK(cudaMemcpy(h, gpu_tower_buf(t, b), (size_t)n / 3 * 8 * es, cudaMemcpyDeviceToHost));
		for (int64_t p = 0; p < n / 3; p++)
			for (int ch = 0; ch < 3; ch++)
				f[p * 3 + ch] = elem(h, p * 8 + ch, f32);
		free(h);
	} else if (c->bufs[b].is_int || b == c->out) {
		CK(cudaMemcpy(f, gpu_tower_buf(t, b), (size_t)n * 4, cudaMemcpyDeviceToHost));
	} else {
		void *h = malloc((size_t)n * es);
		CK(cudaMemcpy(h, gpu_tower_buf(t, b), (size_t)n * es, cudaMemcpyDeviceToHost));
		for (int64_t i = 0; i < n; i++)
			f[i] = elem(h, i, f32);
		free(h);
	}
	return f;
}

static void per_op(gpu_tower *t, const chain *c, int batch, const char *cfgname, int f32, double *worst)
{
	const double bar = f32 ? 1e-4 : 5e-3;
	float **bufs = calloc((size_t)c->nbufs, sizeof *bufs);
	int64_t scratch = 1;
	for (int i = 0; i < c->nops; i++)
		if (cpu_op_scratch(&c->ops[i]) > scratch)
			scratch = cpu_op_scratch(&c->ops[i]);
	float *sc = malloc((size_t)scratch * 4);
	for (int b = 0; b < c->nbufs; b++)
		bufs[b] = fetch(t, c, b, batch, f32);
	for (int i = 0; i < c->nops; i++) {
		const op *o = &c->ops[i];
		const int kind = gpu_tower_desc(t, i)->kind;
		if (kind == MMF_OP_POOL_QK) {
			/* Its buffer holds the folded query (kernels/pool_fold.cuh), not
			 * k and v: the CPU's result stands in, and the attention, which
			 * computes the rest, is checked against it. */
			cpu_op_run(o, bufs, batch, sc);
			continue;
		}
		float *gpu = bufs[o->out];
		int64_t n = c->bufs[o->out].elems * batch;
		float *ref = malloc((size_t)n * 4);
		float *save = bufs[o->out];
		bufs[o->out] = ref;
		cpu_op_run(o, bufs, batch, sc);
		bufs[o->out] = save;
		double num = 0, den = 0;
		int bad = 0;
		for (int64_t k = 0; k < n; k++) {
			if (!isfinite(gpu[k]))
				bad++;
			num += ((double)gpu[k] - ref[k]) * ((double)gpu[k] - ref[k]);
			den += (double)ref[k] * ref[k];
		}
		double e = sqrt(num / (den + 1e-300));
		if (e > *worst)
			*worst = e;
		CHECK(!bad && e <= bar, "%s %s op %d %s (%s): rel L2 %g (bar %g), %d non-finite", cfgname, tower_name(c->tower), i,
		      o->name, op_kind_name(o->kind), e, bar, bad);
		free(ref);
	}
	for (int b = 0; b < c->nbufs; b++)
		free(bufs[b]);
	free(bufs);
	free(sc);
}

/* An on/off switch with a value other than 0 or 1 is refused by name (a
 * typo must not leave the default on silently); empty is the default. */
static void check_switches(chain *const ch[2], int prec)
{
	static const char *const sw[] = {"MMF_PDL", "MMF_CLUSTER", "MMF_POOL_FOLD", "MMF_GEMV"};
	for (size_t k = 0; k < sizeof sw / sizeof sw[0]; k++) {
		char want[96];
		mmf_err err = {0};
		gpu_model *g = NULL;
		CHECK(setenv(sw[k], "off", 1) == 0, "setenv");
		CHECK(gpu_model_new(ch[0], ch[1], prec, &g, &err) == -EINVAL && !g, "%s=off accepted", sw[k]);
		snprintf(want, sizeof want, "gpu: %s='off': expected 0 (off) or 1 (on, the default)", sw[k]);
		CHECK_MSG(err.msg, want);
		CHECK(setenv(sw[k], "", 1) == 0, "setenv");
		err.msg[0] = 0;
		CHECK(gpu_model_new(ch[0], ch[1], prec, &g, &err) == 0 && g, "%s='': %s", sw[k], err.msg);
		gpu_model_free(g);
		unsetenv(sw[k]);
	}
}

static void run_config(const char *name, int batch, clip_weights wmode)
{
	const int int8 = wmode == CLIP_WEIGHTS_INT8, f32 = wmode == CLIP_WEIGHTS_FP32;
	clip_config cfg;
	clip_config_named(name, &cfg);
	mmf_err err = {0};
	char path[512];
	snprintf(path, sizeof path, "%s/%s.safetensors", test_tmpdir(), name);
	clip_model *m;
	chain *ch[2];
	gpu_model *gm;
	int prec;
	if (clip_synth_write(&cfg, 1, ST_F16, path, &err) || clip_model_load_w(path, wmode, &m, &prec, &err) ||
	    chain_build(m, TOWER_IMAGE, &ch[0], &err) || chain_build(m, TOWER_TEXT, &ch[1], &err) ||
	    gpu_model_new(ch[0], ch[1], prec, &gm, &err)) {
		CHECK(0, "%s: %s", name, err.msg);
		return;
	}
	gpu_model *bad = NULL;
	mmf_err berr = {0};
	CHECK(gpu_model_new(ch[0], ch[1], 7, &bad, &berr) == -EINVAL && !bad, "precision 7 accepted");
	CHECK_MSG(berr.msg, "gpu: unknown precision 7");
	static int switches_checked;	/* they do not depend on the model: once */
	if (!switches_checked++)
		check_switches(ch, prec);
	int gemms = 0;
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < ch[t]->nops; i++)
			gemms += ch[t]->ops[i].kind == OP_CONV || ch[t]->ops[i].kind == OP_LINEAR;
	CHECK(gpu_model_int8(gm) == (int8 ? gemms : 0), "%s: %d ops int8, expected %d", name, gpu_model_int8(gm), int8 ? gemms : 0);
	CHECK(gpu_model_precision(gm) == prec, "%s: precision %d, asked %d", name, gpu_model_precision(gm), prec);
	printf("%s, %s weights: %.1f MB resident\n", name, clip_weights_name(wmode), gpu_model_bytes(gm) / 1e6);
	int S = cfg.image_size, T = cfg.context, E = cfg.embed_dim;
	float *px = malloc((size_t)batch * 3 * S * S * 4);
	int32_t *tok = calloc((size_t)batch * T, 4);
	mmf_rng r;
	mmf_rng_seed(&r, 77);
	for (size_t i = 0; i < (size_t)batch * 3 * S * S; i++)
		px[i] = mmf_rng_normal(&r);
	for (int s = 0; s < batch; s++) {
		int len = 5 + 30 * s;
		tok[s * T] = cfg.vocab - 2;
		for (int i = 1; i < len - 1; i++)
			tok[s * T + i] = 1 + (int32_t)(mmf_rng_u64(&r) % 40000);
		tok[s * T + len - 1] = cfg.vocab - 1;
	}
	cudaStream_t s0, s1;
	CK(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking));
	CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
	for (int t = 0; t < 2; t++) {
		gpu_tower *tw;
		cpu_engine *ce;
		float *cpu = malloc((size_t)batch * E * 4), *a = malloc((size_t)batch * E * 4), *b = malloc((size_t)batch * E * 4);
		if (gpu_tower_new(gm, ch[t], batch, 132, t ? s1 : NULL, &tw, &err) || cpu_engine_new(ch[t], batch, &ce, &err)) {
			CHECK(0, "%s: %s", name, err.msg);
			return;
		}
		int rc = t == 0 ? gpu_tower_set_image(tw, px, batch, s0, &err) : gpu_tower_set_text(tw, tok, batch, s0, &err);
		CHECK(rc == 0, "%s", err.msg);
		CHECK(gpu_tower_enqueue(tw, s0) == 0, "enqueue");
		CHECK(gpu_tower_get_output(tw, a, batch, s0, &err) == 0, "%s", err.msg);
		double worst = 0;
		per_op(tw, ch[t], batch, name, f32, &worst);
		rc = t == 0 ? cpu_embed_image(ce, px, batch, cpu, &err) : cpu_embed_text(ce, tok, batch, cpu, &err);
		CHECK(rc == 0, "%s", err.msg);
		double cmin = 1;
		for (int s = 0; s < batch; s++) {
			double cs = test_cosine(a + s * E, cpu + s * E, E);
			cmin = cs < cmin ? cs : cmin;
		}
		const double cbar = f32 ? 0.99999 : 0.999;
		printf("%-6s %-5s tower batch %d %s: %d ops, worst per-op rel L2 %.2e, min cosine vs CPU fp32 %.7f\n", name,
		       tower_name((tower)t), batch, clip_weights_name(wmode), ch[t]->nops, worst, cmin);
		CHECK(cmin >= cbar, "%s %s: cosine %.7f < %g", name, tower_name((tower)t), cmin, cbar);
		/* Graph replay on another stream: bitwise the same. */
		cudaGraph_t g;
		cudaGraphExec_t ge;
		CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeThreadLocal));
		CHECK(gpu_tower_enqueue(tw, s1) == 0, "capture");
		CK(cudaStreamEndCapture(s1, &g));
		CK(cudaGraphInstantiate(&ge, g, 0));
		CK(cudaMemsetAsync((void *)gpu_tower_buf(tw, ch[t]->out), 0xff, (size_t)batch * E * 4, s1));
		CK(cudaGraphLaunch(ge, s1));
		CHECK(gpu_tower_get_output(tw, b, batch, s1, &err) == 0, "%s", err.msg);
		CHECK(memcmp(a, b, (size_t)batch * E * 4) == 0, "%s %s: graph replay differs from a plain run", name, tower_name((tower)t));
		cudaGraphExecDestroy(ge);
		cudaGraphDestroy(g);
		/* Every shape one GEMM may take (gpu_tower_set_gemm, --tune-graph):
		 * the last GEMM with more than one choice, at 132 SMs (split-K
		 * included, so the workspace may grow and every descriptor move). */
		int gi = -1, nc = 0, gcfg[40], gsp[40];
		for (int i = 0; i < ch[t]->nops; i++) {
			int k = gpu_tower_gemm_choices(tw, i, 132, gcfg, gsp, 40);
			if (k > 1)
				gi = i;
		}
		if (gi >= 0 && wmode == CLIP_WEIGHTS_FP16 && batch <= 2) {
			nc = gpu_tower_gemm_choices(tw, gi, 132, gcfg, gsp, 40);
			const int gc0 = gpu_tower_op_cfg(tw, gi), gs0 = gpu_tower_op_splits(tw, gi);
			double worst_c = 1;
			for (int k = 0; k < nc; k++) {
				CHECK(gpu_tower_set_gemm(tw, gi, gcfg[k], gsp[k], &err) == 0, "%s", err.msg);
				CK(cudaMemsetAsync((void *)gpu_tower_buf(tw, ch[t]->out), 0xff, (size_t)batch * E * 4, s0));
				CHECK(gpu_tower_enqueue(tw, s0) == 0, "enqueue");
				CHECK(gpu_tower_get_output(tw, b, batch, s0, &err) == 0, "%s", err.msg);
				for (int smp = 0; smp < batch; smp++) {
					double cs = test_cosine(b + smp * E, cpu + smp * E, E);
					worst_c = cs < worst_c ? cs : worst_c;
				}
			}
			CHECK(worst_c >= cbar, "%s %s: op %d with another GEMM shape: cosine %.7f", name, tower_name((tower)t), gi, worst_c);
			char want[160];
			CHECK(gpu_tower_set_gemm(tw, gi, MMF_GEMM_NCFG, 1, &err) == -EINVAL, "an unknown GEMM configuration accepted");
			snprintf(want, sizeof want, "gpu: op %d (%s): GEMM configuration %d with 1 splits does not fit", gi,
				 ch[t]->ops[gi].name, MMF_GEMM_NCFG);
			CHECK(strcmp(err.msg, want) == 0, "message '%s', expected '%s'", err.msg, want);
			CHECK(gpu_tower_set_gemm(tw, gi, gc0, 0, &err) == -EINVAL, "0 splits accepted");
			CHECK_MSG(err.msg, "with 0 splits does not fit");
			int ng = 0;	/* an op that is not a GEMM (embed, avgpool, ...) */
			while (ng < ch[t]->nops && gpu_tower_op_cfg(tw, ng) >= 0)
				ng++;
			CHECK(ng < ch[t]->nops && gpu_tower_set_gemm(tw, ng, gc0, 1, &err) == -EINVAL,
			      "a GEMM shape for an op that is not a GEMM accepted");
			snprintf(want, sizeof want, "gpu: op %d of the %s tower is not a GEMM", ng, tower_name((tower)t));
			CHECK(strcmp(err.msg, want) == 0, "message '%s', expected '%s'", err.msg, want);
			CHECK(gpu_tower_set_gemm(tw, -1, gc0, 1, &err) == -EINVAL, "op -1 accepted");
			CHECK_MSG(err.msg, "op -1 of the", "is not a GEMM");
			CHECK(gpu_tower_set_gemm(tw, gi, gc0, gs0, &err) == 0, "%s", err.msg);
			CHECK(gpu_tower_enqueue(tw, s0) == 0, "enqueue");
			CHECK(gpu_tower_get_output(tw, b, batch, s0, &err) == 0, "%s", err.msg);
			CHECK(memcmp(a, b, (size_t)batch * E * 4) == 0, "%s %s: back to the tuned shape, the output differs", name,
			      tower_name((tower)t));
			printf("%-6s %-5s tower: op %d (%s) in each of its %d GEMM shapes: min cosine vs CPU fp32 %.7f\n", name,
			       tower_name((tower)t), gi, ch[t]->ops[gi].name, nc, worst_c);
		}
		/* Bad input reaches no kernel. */
		if (t == 1) {
			tok[3] = cfg.vocab;
			CHECK(gpu_tower_set_text(tw, tok, 1, s0, &err) == -EINVAL, "bad token accepted");
			CHECK_MSG(err.msg, "out of the vocabulary");
			tok[3] = 5;
		}
		cpu_engine_free(ce);
		gpu_tower_free(tw);
		free(cpu), free(a), free(b);
	}
	cudaStreamDestroy(s0);
	cudaStreamDestroy(s1);
	free(px), free(tok);
	gpu_model_free(gm);
	chain_free(ch[0]), chain_free(ch[1]);
	clip_model_free(m);
}

int main(void)
{
	gpu_test_require_device();
	cpu_set_threads(0);
	run_config("small", 2, CLIP_WEIGHTS_FP16);
	run_config("rn50", 1, CLIP_WEIGHTS_FP16);
	run_config("rn50", 3, CLIP_WEIGHTS_FP16);
	run_config("small", 2, CLIP_WEIGHTS_INT8);
	run_config("rn50", 2, CLIP_WEIGHTS_INT8);
	run_config("small", 2, CLIP_WEIGHTS_FP32);
	run_config("rn50", 1, CLIP_WEIGHTS_FP32);
	run_config("rn50", 3, CLIP_WEIGHTS_FP32);
	return test_done("test_engine");
}
