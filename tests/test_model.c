/* Model loader tests: configuration inference from shapes, BN folding
 * against an unfolded reference, malformed state dicts (missing, extra,
 * misshaped, wrong dtype, non-finite, ViT), and activation sanity through
 * every op of synthetic models. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "testutil.h"
#include "modeltest.h"


static int same_config(const clip_config *a, const clip_config *b)
{
	return memcmp(a, b, sizeof *a) == 0;
}

static void test_infer(const char *name, const clip_config *cfg, st_dtype dt)
{
	mmf_err err = {0};
	const char *p = test_tmp("infer.safetensors");
	int rc = clip_synth_write(cfg, 7, dt, p, &err);
	CHECK(rc == 0, "%s: %s", name, err.msg);
	clip_model *m = NULL;
	rc = clip_model_load(p, &m, &err);
	CHECK(rc == 0, "%s: %s", name, err.msg);
	if (!m)
		return;
	char a[256], b[256];
	CHECK(same_config(&m->cfg, cfg), "%s: inferred '%s', wrote '%s'", name, clip_config_str(&m->cfg, a, sizeof a),
	      clip_config_str(cfg, b, sizeof b));
	clip_model_free(m);
}

/* Rewrites src to dst, dropping `drop`, replacing `repl` with a tensor of
 * the given dtype/shape (zero-filled), adding `add` (a [4] F32), or setting
 * metadata meta_k to meta_v. */
static void rewrite(const char *src, const char *dst, const char *drop, const char *repl, st_dtype rdt, int rndim,
		    const int64_t *rshape, const char *add, const char *meta_k, const char *meta_v)
{
	size_t n = st_dtype_size(rdt);
	for (int d = 0; d < rndim; d++)
		n *= (size_t)rshape[d];
	void *z = repl ? calloc(n ? n : 1, 1) : NULL;
	float v[4] = {1, 2, 3, 4};
	st_tensor extra = {.name = add, .dtype = ST_F32, .ndim = 1, .shape = {4}, .data = v};
	model_edit e = {.name = drop ? drop : repl, .dtype = rdt, .ndim = rndim, .shape = rshape, .data = z,
			.add = add ? &extra : NULL, .meta_k = meta_k, .meta_v = meta_v};
	model_copy(src, dst, &e);
	free(z);
}

/* Rewrites src to dst with element `at` of tensor `name` set to v (as F32). */
static void poke(const char *src, const char *dst, const char *name, int at, float v)
{
	mmf_err err = {0};
	st_file *f;
	if (st_open(src, &f, &err) < 0) {
		CHECK(0, "%s", err.msg);
		return;
	}
	const st_tensor *t = st_find(f, name);
	float *x = malloc(t->nelem * sizeof *x);
	st_tensor_read_f32(t, x);
	x[at] = v;
	model_edit e = {.name = name, .dtype = ST_F32, .ndim = t->ndim, .shape = t->shape, .data = x};
	model_copy(src, dst, &e);
	free(x);
	st_close(f);
}

static void test_bad_models(void)
{
	clip_config cfg;
	clip_config_named("tiny", &cfg);
	cfg.vocab = 300;
	mmf_err err = {0};
	const char *good = test_tmp("good.safetensors"), *bad = test_tmp("bad.safetensors");
	CHECK(clip_synth_write(&cfg, 3, ST_F16, good, &err) == 0, "%s", err.msg);
	int64_t s44[2] = {4, 4}, s1[1] = {64}, s0[1] = {0};
	printf("malformed models:\n");
	rewrite(good, bad, "visual.layer3.0.conv2.weight", NULL, 0, 0, NULL, NULL, NULL, NULL);
	expect_load_error("missing tensor", bad, -ENOENT, "missing tensor", "'visual.layer3.0.conv2.weight'");
	rewrite(good, bad, "visual.layer2.0.bn1.running_var", NULL, 0, 0, NULL, NULL, NULL, NULL);
	expect_load_error("missing BN statistic", bad, -ENOENT, "missing tensor", "'visual.layer2.0.bn1.running_var'");
	rewrite(good, bad, NULL, "transformer.resblocks.1.mlp.c_fc.weight", ST_F32, 2, s44, NULL, NULL, NULL);
	expect_load_error("wrong shape", bad, -EINVAL, "'transformer.resblocks.1.mlp.c_fc.weight' has shape [4,4]", "expected [256,64]");
	rewrite(good, bad, NULL, "ln_final.bias", ST_I64, 1, s1, NULL, NULL, NULL);
	expect_load_error("integer weights", bad, -EINVAL, "'ln_final.bias' has dtype I64", "expected F32, F16 or BF16");
	rewrite(good, bad, NULL, NULL, 0, 0, NULL, "visual.layer1.0.extra.weight", NULL, NULL);
	expect_load_error("extra tensor", bad, -EINVAL, "unexpected tensor", "'visual.layer1.0.extra.weight'");
	rewrite(good, bad, NULL, NULL, 0, 0, NULL, "visual.class_embedding", NULL, NULL);
	expect_load_error("ViT checkpoint", bad, -ENOTSUP, "ViT", "ModifiedResNet");
	rewrite(good, bad, NULL, "visual.attnpool.positional_embedding", ST_F32, 2, s44, NULL, NULL, NULL);
	expect_load_error("bad attnpool positions", bad, -EINVAL, "'visual.attnpool.positional_embedding' has shape [4,4]", "grid^2+1");
	rewrite(good, bad, NULL, "token_embedding.weight", ST_F32, 1, s0, NULL, NULL, NULL);
	expect_load_error("1-d token embedding", bad, -EINVAL, "'token_embedding.weight'", "expected 2 dimensions");
	rewrite(good, bad, NULL, NULL, 0, 0, NULL, NULL, "mmf.text_heads", "3");
	expect_load_error("heads not dividing width", bad, -EINVAL, "3 text heads", "text width 64");
	rewrite(good, bad, NULL, NULL, 0, 0, NULL, NULL, "mmf.act", "swish");
	expect_load_error("unknown activation", bad, -EINVAL, "'mmf.act' is 'swish'", "quickgelu");
	rewrite(good, bad, NULL, NULL, 0, 0, NULL, NULL, "mmf.vision_heads", "x7");
	expect_load_error("non-numeric heads", bad, -EINVAL, "'mmf.vision_heads' is 'x7'", "positive integer");
	rewrite(good, bad, "logit_scale", NULL, 0, 0, NULL, NULL, NULL, NULL);
	expect_load_error("missing logit_scale", bad, -ENOENT, "missing tensor 'logit_scale'", "bad.safetensors");
	poke(good, bad, "visual.bn2.running_var", 2, -1.0f);
	expect_load_error("negative running_var", bad, -EINVAL, "'visual.bn2.running_var'", "negative value -1 at 2");
	poke(good, bad, "visual.layer1.0.conv1.weight", 5, INFINITY);
	expect_load_error("infinite weight", bad, -EINVAL, "'visual.layer1.0.conv1.weight'", "non-finite value at element 5");
	poke(good, bad, "text_projection", 0, NAN);
	expect_load_error("NaN weight", bad, -EINVAL, "'text_projection'", "non-finite value at element 0");
	expect_load_error("not a file", test_tmpdir(), -EISDIR, "is a directory", "");
	expect_load_error("no such file", test_tmp("nope.safetensors"), -ENOENT, "cannot open", "nope.safetensors");
}

/* conv + BN computed from the raw state dict, directly in NHWC, against the
 * folded op run through the CPU backend. */
static void test_bn_folding(void)
{
	clip_config cfg;
	clip_config_named("tiny", &cfg);
	cfg.vocab = 100;
	mmf_err err = {0};
	const char *p = test_tmp("fold.safetensors");
	CHECK(clip_synth_write(&cfg, 11, ST_F32, p, &err) == 0, "%s", err.msg);
	clip_model *m;
	chain *c;
	st_file *f;
	if (clip_model_load(p, &m, &err) || chain_build(m, TOWER_IMAGE, &c, &err) || st_open(p, &f, &err)) {
		CHECK(0, "%s", err.msg);
		return;
	}
	const char *convs[] = {"stem.conv1", "layer1.0.conv2", "layer2.0.down.conv"};
	const char *keys[][2] = {{"visual.conv1", "visual.bn1"},
				 {"visual.layer1.0.conv2", "visual.layer1.0.bn2"},
				 {"visual.layer2.0.downsample.0", "visual.layer2.0.downsample.1"}};
	for (int ci = 0; ci < 3; ci++) {
		const op *o = NULL;
		for (int i = 0; i < c->nops; i++)
			if (!strcmp(c->ops[i].name, convs[ci]))
				o = &c->ops[i];
		CHECK(o != NULL, "op %s", convs[ci]);
		if (!o)
			continue;
		char n[160];
		snprintf(n, sizeof n, "%s.weight", keys[ci][0]);
		const st_tensor *wt = st_find(f, n);
		float *w = malloc(wt->nelem * 4), *bn[4];
		st_tensor_read_f32(wt, w);
		const char *sfx[4] = {"weight", "bias", "running_mean", "running_var"};
		for (int k = 0; k < 4; k++) {
			snprintf(n, sizeof n, "%s.%s", keys[ci][1], sfx[k]);
			const st_tensor *t = st_find(f, n);
			bn[k] = malloc(t->nelem * 4);
			st_tensor_read_f32(t, bn[k]);
		}
		int64_t nin = (int64_t)o->h * o->w * o->cin, nout = (int64_t)o->oh * o->ow * o->cout;
		float *x = malloc(nin * 4), *y = malloc(nout * 4), *ref = malloc(nout * 4);
		float *scratch = malloc((cpu_op_scratch(o) + 1) * 4);
		mmf_rng r;
		mmf_rng_seed(&r, 99 + ci);
		for (int64_t i = 0; i < nin; i++)
			x[i] = mmf_rng_normal(&r);
		for (int oy = 0; oy < o->oh; oy++)
			for (int ox = 0; ox < o->ow; ox++)
				for (int co = 0; co < o->cout; co++) {
					double s = 0;
					for (int ky = 0; ky < o->k; ky++)
						for (int kx = 0; kx < o->k; kx++) {
							int iy = oy * o->stride - o->pad + ky, ix = ox * o->stride - o->pad + kx;
							if (iy < 0 || ix < 0 || iy >= o->h || ix >= o->w)
								continue;
							for (int i = 0; i < o->cin; i++)	/* torch layout OIHW */
								s += (double)w[((co * o->cin + i) * o->k + ky) * o->k + kx] *
								     x[((int64_t)iy * o->w + ix) * o->cin + i];
						}
					double v = (s - bn[2][co]) / sqrt(bn[3][co] + 1e-5) * bn[0][co] + bn[1][co];
					if (o->act == ACT_RELU && v < 0)
						v = 0;
					ref[((int64_t)oy * o->ow + ox) * o->cout + co] = (float)v;
				}
		float *bufs[64] = {0};
		bufs[o->in] = x;
		bufs[o->out] = y;
		cpu_op_run(o, bufs, 1, scratch);
		double e = test_maxabs(y, ref, (int)nout);
		printf("BN folding %-22s max abs err %.3g\n", convs[ci], e);
		CHECK(e < 1e-4, "%s folded conv differs from conv+BN by %g", convs[ci], e);
		free(x), free(y), free(ref), free(scratch), free(w);
		for (int k = 0; k < 4; k++)
			free(bn[k]);
	}
	st_close(f);
	chain_free(c);
	clip_model_free(m);
}

typedef struct stats { double maxabs; int nonfinite; int worst_op; double pre_norm; const op *prev; } stats;

static void hook(void *ud, const chain *c, int i, const float *out, int batch)
{
	stats *s = ud;
	int64_t n = c->ops[i].out_elems * batch;
	for (int64_t k = 0; k < n; k++) {
		if (!isfinite(out[k]))
			s->nonfinite++;
		else if (fabs(out[k]) > s->maxabs) {
			s->maxabs = fabs(out[k]);
			s->worst_op = i;
		}
	}
	if (i + 1 == c->nops - 1) {	/* the op before the final L2 normalisation */
		double ss = 0;
		for (int64_t k = 0; k < c->ops[i].out_elems; k++)
			ss += (double)out[k] * out[k];
		s->pre_norm = sqrt(ss);
	}
}

/* Synthetic weights must keep activations finite and moderate everywhere. */
static void test_activations(const char *name, st_dtype dt)
{
	clip_config cfg;
	clip_config_named(name, &cfg);
	mmf_err err = {0};
	const char *p = test_tmp("act.safetensors");
	CHECK(clip_synth_write(&cfg, 1, dt, p, &err) == 0, "%s", err.msg);
	clip_model *m;
	if (clip_model_load(p, &m, &err)) {
		CHECK(0, "%s", err.msg);
		return;
	}
	for (int t = 0; t < 2; t++) {
		chain *c;
		cpu_engine *e;
		if (chain_build(m, (tower)t, &c, &err) || cpu_engine_new(c, 1, &e, &err)) {
			CHECK(0, "%s", err.msg);
			continue;
		}
		stats s = {0};
		cpu_engine_set_hook(e, hook, &s);
		float emb[4096];
		mmf_rng r;
		mmf_rng_seed(&r, 5);
		if (t == TOWER_IMAGE) {
			size_t n = 3ull * cfg.image_size * cfg.image_size;
			float *px = malloc(n * 4);
			for (size_t i = 0; i < n; i++)
				px[i] = mmf_rng_normal(&r);
			CHECK(cpu_embed_image(e, px, 1, emb, &err) == 0, "%s", err.msg);
			free(px);
		} else {
			int32_t tok[4096] = {0};
			tok[0] = cfg.vocab - 2;
			for (int i = 1; i < 12; i++)
				tok[i] = 1 + (int32_t)(mmf_rng_u64(&r) % 40000);
			tok[12] = cfg.vocab - 1;
			CHECK(cpu_embed_text(e, tok, 1, emb, &err) == 0, "%s", err.msg);
		}
		printf("%s %s tower: max |activation| %.2f (at %s), embedding norm before normalising %.3f\n", name,
		       tower_name((tower)t), s.maxabs, c->ops[s.worst_op].name, s.pre_norm);
		CHECK(s.nonfinite == 0, "%s %s: %d non-finite activations", name, tower_name((tower)t), s.nonfinite);
		CHECK(s.maxabs < 1e3, "%s %s: activation %.1f at %s", name, tower_name((tower)t), s.maxabs, c->ops[s.worst_op].name);
		CHECK(s.pre_norm > 0.1 && s.pre_norm < 1e3, "%s %s: embedding norm %g", name, tower_name((tower)t), s.pre_norm);
		cpu_engine_free(e);
		chain_free(c);
	}
	clip_model_free(m);
}

int main(void)
{
	cpu_set_threads(2);
	const char *names[] = {"tiny", "small", "rn50", "rn101", "rn50x4"};
	for (int i = 0; i < 5; i++) {
		clip_config cfg;
		CHECK(clip_config_named(names[i], &cfg) == 0, "named config %s", names[i]);
		if (i < 2)	/* the big ones are inferred in test_activations / the bench */
			test_infer(names[i], &cfg, i ? ST_BF16 : ST_F32);
	}
	clip_config odd = {96, 6, {2, 1, 1, 2}, 8, 48, 96, 3, 3, 16, 500, 0};
	test_infer("odd sizes", &odd, ST_F16);
	clip_config x;
	CHECK(clip_config_named("rn51", &x) == -ENOENT, "unknown name");
	mmf_err err = {0};
	odd.image_size = 100;
	CHECK(clip_config_check(&odd, &err) == -EINVAL, "image 100");
	CHECK_MSG(err.msg, "image size 100", "multiple of 32");
	test_bn_folding();
	test_bad_models();
	test_activations("tiny", ST_F32);
	test_activations("small", ST_F16);
	if (!getenv("MMF_TEST_QUICK"))
		test_activations("rn50", ST_F16);
	return test_done("test_model");
}
