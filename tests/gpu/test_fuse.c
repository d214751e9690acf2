/* Fusion tests (make check-gpu):
 * - every strategy on representative pairs of real RN50/small ops (conv x
 *   GEMM, conv x attention, conv x LayerNorm, pool x GEMM, pairs with very
 *   unequal tile counts), at random team splits and grids, must write
 *   bitwise what the two plain launches write;
 * - the planner's plan for small and RN50 covers every op once in chain
 *   order, survives a save/load, and a stale or corrupt cache is refused
 *   with its reason;
 * - the pairs again with int8 weights (the fused kernels call the int8
 *   GEMM tiles) and in fp32 (the SIMT tiles): still bitwise equal to plain
 *   launches. */
#include "config.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/chain.h"
#include "engine/gpu.h"
#include "engine/model.h"
#include "engine/plan.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "kernels/mmf_fuse.h"
#include "tests/gpu/gputest.h"
#include "tests/testutil.h"


typedef struct env {
	clip_model *m;
	chain *ch[2];
	gpu_model *gm;
	gpu_tower *tw[2];
	cudaStream_t s;
} env;

/* lower: the engine's default lowerings (the folded attention pool and the
 * matrix-vector tile, which the fused kernels do not take); 0 builds the
 * plain ops, as fusable pairs need. */
static int env_open(env *e, const char *name, int batch, clip_weights wmode, int lower)
{
	clip_config cfg;
	clip_config_named(name, &cfg);
	mmf_err err = {0};
	char path[512];
	snprintf(path, sizeof path, "%s/%s.safetensors", test_tmpdir(), name);
	memset(e, 0, sizeof *e);
	CK(cudaStreamCreateWithFlags(&e->s, cudaStreamNonBlocking));
	int prec;
	if (clip_synth_write(&cfg, 3, ST_F16, path, &err) || clip_model_load_w(path, wmode, &e->m, &prec, &err) ||
	    chain_build(e->m, TOWER_IMAGE, &e->ch[0], &err) || chain_build(e->m, TOWER_TEXT, &e->ch[1], &err) ||
	    (!lower && (setenv("MMF_POOL_FOLD", "0", 1) || setenv("MMF_GEMV", "0", 1))) ||
	    gpu_model_new(e->ch[0], e->ch[1], prec, &e->gm, &err) ||
	    (!lower && (unsetenv("MMF_POOL_FOLD") || unsetenv("MMF_GEMV"))) ||
	    gpu_tower_new(e->gm, e->ch[0], batch, 132, NULL, &e->tw[0], &err) ||
	    gpu_tower_new(e->gm, e->ch[1], batch, 132, NULL, &e->tw[1], &err)) {
		CHECK(0, "%s: %s", name, err.msg);
		return -1;
	}
	/* Real activations everywhere: run both towers once. */
	int S = cfg.image_size, T = cfg.context;
	float *px = malloc((size_t)batch * 3 * S * S * 4);
	int32_t *tok = calloc((size_t)batch * T, 4);
	mmf_rng r;
	mmf_rng_seed(&r, 5);
	for (size_t i = 0; i < (size_t)batch * 3 * S * S; i++)
		px[i] = mmf_rng_normal(&r);
	for (int b = 0; b < batch; b++) {
		tok[b * T] = cfg.vocab - 2;
		for (int i = 1; i < 9 + b; i++)
			tok[b * T + i] = 100 + i;
		tok[b * T + 9 + b] = cfg.vocab - 1;
	}
	CHECK(gpu_tower_set_image(e->tw[0], px, batch, e->s, &err) == 0, "%s", err.msg);
	CHECK(gpu_tower_set_text(e->tw[1], tok, batch, e->s, &err) == 0, "%s", err.msg);
	CHECK(gpu_tower_enqueue(e->tw[0], e->s) == 0 && gpu_tower_enqueue(e->tw[1], e->s) == 0, "enqueue");
	CK(cudaStreamSynchronize(e->s));
	free(px), free(tok);
	return 0;
}

static void env_close(env *e)
{
	gpu_tower_free(e->tw[0]), gpu_tower_free(e->tw[1]);
	gpu_model_free(e->gm);
	chain_free(e->ch[0]), chain_free(e->ch[1]);
	clip_model_free(e->m);
	cudaStreamDestroy(e->s);
}

static int find(const chain *c, const char *name)
{
	for (int i = 0; i < c->nops; i++)
		if (!strcmp(c->ops[i].name, name))
			return i;
	return -1;
}

static size_t out_bytes(const env *e, const chain *c, int i, int batch)
{
	int b = c->ops[i].out;
	return (size_t)c->bufs[b].elems * batch * (b == c->out || gpu_model_precision(e->gm) == CLIP_PREC_FP32 ? 4 : 2);
}

/* Runs image op i and text op j plain, then fused under f with both outputs
 * poisoned first, and compares the bytes. */
static void check_pair(env *e, int batch, int i, int j, const mmf_fuse *f, const char *label)
{
	const chain *ci = e->ch[0], *ct = e->ch[1];
	size_t na = out_bytes(e, ci, i, batch), nb = out_bytes(e, ct, j, batch);
	void *oa = (void *)gpu_tower_op_output(e->tw[0], i), *ob = (void *)gpu_tower_op_output(e->tw[1], j);
	unsigned char *ra = malloc(na), *rb = malloc(nb), *ga = malloc(na), *gb = malloc(nb);
	CHECK(gpu_tower_enqueue_op(e->tw[0], i, e->s) == 0 && gpu_tower_enqueue_op(e->tw[1], j, e->s) == 0, "plain");
	CK(cudaMemcpyAsync(ra, oa, na, cudaMemcpyDeviceToHost, e->s));
	CK(cudaMemcpyAsync(rb, ob, nb, cudaMemcpyDeviceToHost, e->s));
	CK(cudaMemsetAsync(oa, 0xff, na, e->s));
	CK(cudaMemsetAsync(ob, 0xff, nb, e->s));
	int rc = mmf_fused_launch(gpu_tower_desc(e->tw[0], i), gpu_tower_desc(e->tw[1], j), f, (mmf_stream)e->s);
	if (rc == -E2BIG) {	/* does not fit a block: the planner never picks it */
		CK(cudaStreamSynchronize(e->s));
		CHECK(gpu_tower_enqueue_op(e->tw[0], i, e->s) == 0 && gpu_tower_enqueue_op(e->tw[1], j, e->s) == 0, "restore");
		free(ra), free(rb), free(ga), free(gb);
		return;
	}
	CHECK(rc == 0, "%s: fused launch rc %d", label, rc);
	CK(cudaMemcpyAsync(ga, oa, na, cudaMemcpyDeviceToHost, e->s));
	CK(cudaMemcpyAsync(gb, ob, nb, cudaMemcpyDeviceToHost, e->s));
	CK(cudaStreamSynchronize(e->s));
	int oka = !memcmp(ra, ga, na), okb = !memcmp(rb, gb, nb);
	CHECK(oka && okb, "%s: fused output differs from unfused (image %s, text %s)", label, oka ? "equal" : "DIFFERS",
	      okb ? "equal" : "DIFFERS");
	if (!okb && gpu_model_precision(e->gm) == CLIP_PREC_FP16) {	/* where, for the log */
		const uint16_t *x = (const uint16_t *)rb, *y = (const uint16_t *)gb;
		size_t nd = 0, first = 0, n = nb / 2, w = ct->ops[j].n > 0 ? (size_t)ct->ops[j].n : 1;
		for (size_t q = 0; q < n; q++)
			if (x[q] != y[q] && !nd++)
				first = q;
		printf("  text output: %zu of %zu values differ, first at row %zu column %zu: unfused %g, fused %g\n", nd, n,
		       first / w, first % w, mmf_half_to_float(x[first]), mmf_half_to_float(y[first]));
	}
	free(ra), free(rb), free(ga), free(gb);
}

/* MMF_FUSE_PAIR: the one pair test_pairs runs (an index into pairs), for
 * compute-sanitizer runs; -1: all. */
static int pair_only = -1;

/* MMF_FUSE_UNEVEN=skip|only: run only the intra-thread cases whose two
 * teams are the same size (skip), or only those whose teams differ (only;
 * the threads outside the smaller team skip its barriers). compute-sanitizer racecheck reports hazards wherever
 * the threads of a block pass different numbers of named barriers, though
 * the barriers order them (test_barrier variants 0 and 4, docs/NOTES.md),
 * so check-gpu racechecks those cases apart. Unset or empty: all cases. */
static int uneven_mode;	/* 0 all, 1 skip, 2 only */

/* image op x text op, by name */
static const char *const pairs[][2] = {
	{"layer1.0.conv2", "block0.attn.qkv"},	/* conv x GEMM */
	{"layer3.1.conv2", "block5.mlp.fc"},	/* conv x GEMM (split-K on both sides) */
	{"layer2.0.conv2", "block3.attn"},	/* conv x attention */
	{"layer4.0.conv1", "block2.ln_2"},	/* conv x LayerNorm */
	{"layer2.0.avgpool", "block1.mlp.proj"},	/* pool x GEMM */
	{"stem.conv2", "eot_gather"},	/* thousands of tiles x one */
	{"attnpool.attn", "block0.ln_1"},	/* few x 77 */
	{"stem.conv1", "block4.attn.out"},
};
#define NPAIRS ((int)(sizeof pairs / sizeof pairs[0]))

static void test_pairs(env *e, int batch, const char *model)
{
	mmf_rng r;
	mmf_rng_seed(&r, 17);
	int regs, local;
	for (int s = 0; s < MMF_FUSE_STRATEGIES; s++)
		if (mmf_fused_attrs(s, &regs, &local) == 0)
			printf("%s fused kernel: %d registers, %d bytes of local memory\n", fuse_strategy_name(s), regs, local);
	for (int k = 0; k < NPAIRS; k++) {
		if (pair_only >= 0 && pair_only != k)
			continue;
		int i = find(e->ch[0], pairs[k][0]), j = find(e->ch[1], pairs[k][1]);
		CHECK(i >= 0 && j >= 0, "ops %s / %s", pairs[k][0], pairs[k][1]);
		if (i < 0 || j < 0)
			continue;
		mmf_fuse f0 = {.strategy = MMF_FUSE_INTER};
		if (mmf_fuse_check(gpu_tower_desc(e->tw[0], i), gpu_tower_desc(e->tw[1], j), &f0, NULL, NULL) == -EOPNOTSUPP) {
			printf("%s %s x %s: left out (lowered to a kernel the fused kernels do not take)\n", model, pairs[k][0],
			       pairs[k][1]);
			continue;
		}
		const char *only = getenv("MMF_FUSE_ONLY");	/* one strategy, for compute-sanitizer runs */
		const int uneven = gpu_tower_desc(e->tw[0], i)->team != gpu_tower_desc(e->tw[1], j)->team;
		for (int s = 0; s < MMF_FUSE_STRATEGIES; s++)
			for (int rep = 0; rep < 3 && (!only || fuse_strategy_parse(only) == s); rep++) {
				if (uneven_mode && (s != MMF_FUSE_INTRA_THREAD || uneven != (uneven_mode == 2))) {
					if (rep == 0 && s == MMF_FUSE_INTRA_THREAD)
						printf("%s x %s intra-thread: left out (MMF_FUSE_UNEVEN, teams of %d and %d)\n",
						       pairs[k][0], pairs[k][1], gpu_tower_desc(e->tw[0], i)->team,
						       gpu_tower_desc(e->tw[1], j)->team);
					continue;
				}
				mmf_fuse f = {.strategy = s};
				if (s == MMF_FUSE_INTRA_BLOCK) {
					f.teams_a = 1 + (int)(mmf_rng_u64(&r) % 3);
					f.teams_b = 1 + (int)(mmf_rng_u64(&r) % 3);
				}
				if (rep > 0) {	/* random grids: several tiles per block */
					f.grid_a = 1 + (int)(mmf_rng_u64(&r) % 40);
					f.grid_b = 1 + (int)(mmf_rng_u64(&r) % 40);
				}
				char label[200];
				snprintf(label, sizeof label, "%s b%d %s x %s %s %d:%d grid %d/%d", model, batch, pairs[k][0], pairs[k][1],
					 fuse_strategy_name(s), f.teams_a, f.teams_b, f.grid_a, f.grid_b);
				check_pair(e, batch, i, j, &f, label);
			}
	}
}

static void test_plan(env *e, int batch, const char *model)
{
	mmf_err err = {0};
	plan_opts o = {.strategy = -1, .roof_tflops = 200, .roof_gbs = 3000, .per_op = 3};
	gpu_plan *p = NULL, *q = NULL;
	char hash[17];
	CHECK(model_file_hash(e->m->path, gpu_model_precision(e->gm), hash, &err) == 0, "%s", err.msg);
	int rc = plan_build(e->tw[0], e->tw[1], e->s, 132, batch, "test-gpu", hash, &o, &p, &err);
	CHECK(rc == 0, "%s plan: %s", model, err.msg);
	if (rc)
		return;
	/* Every op exactly once, each chain in order. */
	int ni = 0, nt = 0, fused = 0, ok = 1;
	for (int k = 0; k < p->nsteps; k++) {
		const plan_step *st = &p->steps[k];
		if (st->img >= 0)
			ok &= st->img == ni++;
		if (st->txt >= 0)
			ok &= st->txt == nt++;
		fused += st->img >= 0 && st->txt >= 0;
	}
	CHECK(ok && ni == e->ch[0]->nops && nt == e->ch[1]->nops, "%s plan: ops out of order or missing", model);
	printf("%s plan: %d steps, %d fused, predicted %.1f us vs %.1f alone, %d configurations measured\n", model, p->nsteps,
	       fused, p->pred_us, p->alone_us, p->pairs_measured);
	CHECK(p->pred_us <= p->alone_us + 1e-6, "%s plan predicts worse than no fusion", model);
	/* The plan runs and gives the unfused outputs. */
	const chain *ci = e->ch[0], *ct = e->ch[1];
	size_t ni_b = out_bytes(e, ci, ci->nops - 1, batch), nt_b = out_bytes(e, ct, ct->nops - 1, batch);
	unsigned char *a0 = malloc(ni_b), *t0 = malloc(nt_b), *a1 = malloc(ni_b), *t1 = malloc(nt_b);
	CK(cudaMemcpy(a0, gpu_tower_op_output(e->tw[0], ci->nops - 1), ni_b, cudaMemcpyDeviceToHost));
	CK(cudaMemcpy(t0, gpu_tower_op_output(e->tw[1], ct->nops - 1), nt_b, cudaMemcpyDeviceToHost));
	CHECK(plan_enqueue(p, e->tw[0], e->tw[1], e->s) == 0, "plan enqueue");
	CK(cudaStreamSynchronize(e->s));
	CK(cudaMemcpy(a1, gpu_tower_op_output(e->tw[0], ci->nops - 1), ni_b, cudaMemcpyDeviceToHost));
	CK(cudaMemcpy(t1, gpu_tower_op_output(e->tw[1], ct->nops - 1), nt_b, cudaMemcpyDeviceToHost));
	CHECK(!memcmp(a0, a1, ni_b) && !memcmp(t0, t1, nt_b), "%s: the plan's outputs differ from the unfused run", model);
	free(a0), free(t0), free(a1), free(t1);
	/* Cache: round trip, stale key, corrupt file. */
	char path[512];
	snprintf(path, sizeof path, "%s/plan.json", test_tmpdir());
	CHECK(plan_save(p, path, &err) == 0, "%s", err.msg);
	CHECK(plan_load(path, p, e->tw[0], e->tw[1], &q, &err) == 0, "%s", err.msg);
	CHECK(q && q->nsteps == p->nsteps, "round trip");
	CHECK(q && plan_check_towers(q, e->tw[0], e->tw[1], &err) == 0, "%s: the plan does not fit its own towers: %s", model,
	      err.msg);
	for (int k = 0; q && k < q->nsteps; k++)
		if (q->steps[k].img >= 0 && q->steps[k].txt >= 0) {	/* a fused step whose image op the towers lack */
			int img = q->steps[k].img;
			q->steps[k].img = e->ch[0]->nops;
			CHECK(plan_check_towers(q, e->tw[0], e->tw[1], &err) == -ESTALE, "%s: a plan fusing a missing op passed",
			      model);
			char want[200];
			snprintf(want, sizeof want, "stale plan: step %d fuses image op %d with text op %d, which these towers (%d and %d "
				 "ops) cannot run fused", k, e->ch[0]->nops, q->steps[k].txt, e->ch[0]->nops, e->ch[1]->nops);
			CHECK(strcmp(err.msg, want) == 0, "message '%s', expected '%s'", err.msg, want);
			q->steps[k].img = img;
			break;
		}
	plan_free(q);
	gpu_plan want = *p;
	want.sms = 8;
	CHECK(plan_load(path, &want, NULL, NULL, &q, &err) == -ESTALE, "stale plan accepted");
	CHECK_MSG(err.msg, "stale plan", "132 SMs", "now model");
	/* Corrupt: cut the file in half (invalid JSON), and a valid JSON file
	 * whose steps skip an op. */
	FILE *fp = fopen(path, "r+");
	fseek(fp, 0, SEEK_END);
	long len = ftell(fp);
	fclose(fp);
	CHECK(truncate(path, len / 2) == 0, "truncate");
	rc = plan_load(path, p, NULL, NULL, &q, &err);
	CHECK(rc == -EINVAL && q == NULL, "truncated plan accepted (rc %d)", rc);
	CHECK_MSG(err.msg, "corrupt plan");
	printf("  truncated cache -> %s\n", err.msg);
	p->steps[1] = p->steps[0];	/* op 0 twice */
	CHECK(plan_save(p, path, &err) == 0, "%s", err.msg);
	rc = plan_load(path, p, NULL, NULL, &q, &err);
	CHECK(rc == -EINVAL && q == NULL, "plan with a repeated op accepted (rc %d)", rc);
	CHECK_MSG(err.msg, "corrupt plan", "breaks chain order");
	printf("  reordered cache -> %s\n", err.msg);
	plan_free(p);
}

int main(void)
{
	const char *one = getenv("MMF_FUSE_PAIR");
	if (one) {
		char *end = NULL;
		long k = strtol(one, &end, 10);
		if (end == one || *end || k < 0 || k >= NPAIRS) {
			fprintf(stderr, "test_fuse: MMF_FUSE_PAIR '%s': expected a pair index from 0 to %d\n", one, NPAIRS - 1);
			return 2;
		}
		pair_only = (int)k;
	}
	const char *un = getenv("MMF_FUSE_UNEVEN");
	if (un && *un) {	/* set and empty: all cases, as unset */
		if (strcmp(un, "skip") && strcmp(un, "only")) {
			fprintf(stderr, "test_fuse: MMF_FUSE_UNEVEN '%s': expected skip or only\n", un);
			return 2;
		}
		uneven_mode = strcmp(un, "skip") ? 2 : 1;
	}
	gpu_test_require_device();
	env e;
	/* MMF_FUSE_QUICK: the small model's pairs only (for compute-sanitizer). */
	int quick = getenv("MMF_FUSE_QUICK") != NULL;
	if (quick) {
		if (env_open(&e, "small", 1, CLIP_WEIGHTS_FP16, 0) == 0) {
			test_pairs(&e, 1, "small");
			env_close(&e);
		}
		if (env_open(&e, "small", 1, CLIP_WEIGHTS_INT8, 0) == 0) {
			test_pairs(&e, 1, "small int8");
			env_close(&e);
		}
		if (env_open(&e, "small", 1, CLIP_WEIGHTS_FP32, 0) == 0) {
			test_pairs(&e, 1, "small fp32");
			env_close(&e);
		}
		return test_done("test_fuse");
	}
	if (env_open(&e, "rn50", 1, CLIP_WEIGHTS_FP16, 0) == 0) {
		test_pairs(&e, 1, "rn50");
		test_plan(&e, 1, "rn50");
		env_close(&e);
	}
	/* The engine's defaults: the folded pool's pairs are left out, and the
	 * planner plans around them. */
	if (env_open(&e, "small", 2, CLIP_WEIGHTS_FP16, 1) == 0) {
		test_pairs(&e, 2, "small");
		test_plan(&e, 2, "small");
		env_close(&e);
	}
	if (env_open(&e, "rn50", 1, CLIP_WEIGHTS_INT8, 0) == 0) {
		test_pairs(&e, 1, "rn50 int8");
		env_close(&e);
	}
	if (env_open(&e, "rn50", 1, CLIP_WEIGHTS_FP32, 0) == 0) {
		test_pairs(&e, 1, "rn50 fp32");
		test_plan(&e, 1, "rn50 fp32");
		env_close(&e);
	}
	return test_done("test_fuse");
}
