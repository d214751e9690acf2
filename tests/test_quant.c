/* INT8 weights on the CPU side: the quantiser's bounds, quantise -> save ->
 * load bit-exact round trip (mmf_quantize_file against quantising at load),
 * clear errors for corrupt int8 files, and the embeddings of the quantised
 * model against float (cosine per sample). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "testutil.h"
#include "modeltest.h"

static void test_quantiser(void)
{
	/* rows: out_dim 0 */
	float w[3][4] = {{0.5f, -1.0f, 0.25f, 0.0f}, {0, 0, 0, 0}, {1e-3f, 2e-3f, -3e-3f, 127e-3f}};
	int8_t q[12];
	float s[4], back[12];
	mmf_quant(&w[0][0], 3, 4, 0, q, s);
	CHECK(s[0] == 1.0f / 127.f && q[1] == -127 && q[0] == 64 && q[3] == 0, "row 0: s %g q %d %d %d", s[0], q[0], q[1], q[3]);
	CHECK(s[1] == 0.f && q[4] == 0 && q[7] == 0, "zero row: s %g", s[1]);
	CHECK(q[11] == 127 && q[8] == 1 && q[10] == -3, "row 2: %d %d %d", q[8], q[10], q[11]);
	mmf_dequant(q, s, 3, 4, 0, back);
	for (int i = 0; i < 12; i++) {
		float sc = s[i / 4];
		CHECK(fabsf(back[i] - (&w[0][0])[i]) <= sc / 2 * 1.0001f, "element %d: %g vs %g (scale %g)", i, back[i],
		      (&w[0][0])[i], sc);
	}
	/* columns: out_dim 1 (text_projection) */
	mmf_quant(&w[0][0], 3, 4, 1, q, s);
	CHECK(s[1] == 1.0f / 127.f && s[3] == 127e-3f / 127.f && q[1] == -127 && q[11] == 127, "columns: s %g %g", s[1], s[3]);
	/* random: bound |w - q s| <= s/2 and |q| <= 127 */
	mmf_rng r;
	mmf_rng_seed(&r, 5);
	enum { R = 37, C = 301 };
	float *x = malloc(R * C * sizeof *x), *y = malloc(R * C * sizeof *y), sr[R];
	int8_t *qr = malloc(R * C);
	for (int i = 0; i < R * C; i++)
		x[i] = mmf_rng_normal(&r) * (1 + i / C);
	mmf_quant(x, R, C, 0, qr, sr);
	mmf_dequant(qr, sr, R, C, 0, y);
	int bad = 0, full = 0;
	for (int i = 0; i < R * C; i++) {
		bad += fabsf(y[i] - x[i]) > sr[i / C] / 2 * 1.0001f || qr[i] < -127;
		full += qr[i] == 127 || qr[i] == -127;
	}
	CHECK(bad == 0, "%d elements off by more than half a step", bad);
	CHECK(full >= R, "every row reaches +-127 (%d elements do)", full);
	free(x), free(y), free(qr);
	CHECK(mmf_quant_out_dim("visual.layer1.0.conv2.weight", 4) == 0, "conv");
	CHECK(mmf_quant_out_dim("visual.layer1.0.downsample.0.weight", 4) == 0, "downsample");
	CHECK(mmf_quant_out_dim("visual.attnpool.c_proj.weight", 2) == 0, "attnpool");
	CHECK(mmf_quant_out_dim("transformer.resblocks.3.attn.in_proj_weight", 2) == 0, "in_proj");
	CHECK(mmf_quant_out_dim("transformer.resblocks.3.mlp.c_proj.weight", 2) == 0, "c_proj");
	CHECK(mmf_quant_out_dim("text_projection", 2) == 1, "text_projection");
	CHECK(mmf_quant_out_dim("visual.bn1.weight", 1) == -1 && mmf_quant_out_dim("token_embedding.weight", 2) == -1 &&
		      mmf_quant_out_dim("transformer.resblocks.3.ln_1.weight", 1) == -1 &&
		      mmf_quant_out_dim("transformer.resblocks.3.attn.in_proj_bias", 1) == -1,
	      "BN, embeddings, LayerNorm and biases stay float");
}

static int same_conv(const clip_conv *a, const clip_conv *b)
{
	size_t n = (size_t)a->cout * a->k * a->k * a->cin;
	return a->q && b->q && !memcmp(a->q, b->q, n) && !memcmp(a->qs, b->qs, (size_t)a->cout * 4) &&
	       !memcmp(a->w, b->w, n * 4) && !memcmp(a->b, b->b, (size_t)a->cout * 4);
}

static int same_linear(const clip_linear *a, const clip_linear *b)
{
	size_t n = (size_t)a->out * a->in;
	return a->q && b->q && !memcmp(a->q, b->q, n) && !memcmp(a->qs, b->qs, (size_t)a->out * 4) &&
	       !memcmp(a->w, b->w, n * 4);
}

/* Quantising at load and loading mmf_quantize_file's output give the same
 * bytes everywhere. */
static void test_round_trip(const char *name, st_dtype dt)
{
	clip_config cfg;
	clip_config_named(name, &cfg);
	cfg.vocab = 500;
	mmf_err err = {0};
	const char *fp = test_tmp("float.safetensors"), *qp = test_tmp("int8.safetensors");
	clip_model *a = NULL, *b = NULL, *f = NULL;
	int i8a = -1, i8b = -1, i8f = -1;
	if (clip_synth_write(&cfg, 11, dt, fp, &err) || clip_model_load_w(fp, CLIP_WEIGHTS_INT8, &a, &i8a, &err) ||
	    mmf_quantize_file(fp, qp, NULL, &err) || clip_model_load_w(qp, CLIP_WEIGHTS_AUTO, &b, &i8b, &err) ||
	    clip_model_load_w(fp, CLIP_WEIGHTS_AUTO, &f, &i8f, &err)) {
		CHECK(0, "%s: %s", name, err.msg);
		goto out;
	}
	CHECK(i8a == 1 && i8b == 1 && i8f == 0, "%s: int8 %d (quantised at load), %d (auto, int8 file), %d (auto, float file)",
	      name, i8a, i8b, i8f);
	CHECK(a->nint8 == a->nweights && b->nint8 == b->nweights && f->nint8 == 0 && a->nweights > 0,
	      "%s: %d/%d and %d/%d int8", name, a->nint8, a->nweights, b->nint8, b->nweights);
	int same = 1;
	for (int i = 0; i < 3; i++)
		same &= same_conv(&a->stem[i], &b->stem[i]);
	for (int i = 0; i < a->nblocks; i++) {
		same &= same_conv(&a->blocks[i].c1, &b->blocks[i].c1) && same_conv(&a->blocks[i].c2, &b->blocks[i].c2) &&
			same_conv(&a->blocks[i].c3, &b->blocks[i].c3);
		if (a->blocks[i].has_down)
			same &= same_conv(&a->blocks[i].down, &b->blocks[i].down);
	}
	same &= same_linear(&a->attn_q, &b->attn_q) && same_linear(&a->attn_k, &b->attn_k) &&
		same_linear(&a->attn_v, &b->attn_v) && same_linear(&a->attn_c, &b->attn_c) &&
		same_linear(&a->text_proj, &b->text_proj);
	for (int i = 0; i < cfg.text_layers; i++)
		same &= same_linear(&a->layers[i].qkv, &b->layers[i].qkv) && same_linear(&a->layers[i].out, &b->layers[i].out) &&
			same_linear(&a->layers[i].fc, &b->layers[i].fc) && same_linear(&a->layers[i].proj, &b->layers[i].proj);
	CHECK(same, "%s: quantised at load and loaded from the int8 file differ", name);
	CHECK(a->nparams == b->nparams && a->nparams == f->nparams, "%s: %llu / %llu / %llu parameters", name,
	      (unsigned long long)a->nparams, (unsigned long long)b->nparams, (unsigned long long)f->nparams);
	/* the file holds I8 + F32 scales, everything else as written */
	st_file *sf;
	if (st_open(qp, &sf, &err) == 0) {
		const st_tensor *t = st_find(sf, "visual.layer1.0.conv2.weight"), *s = st_find(sf, "visual.layer1.0.conv2.weight_scale"),
				*ln = st_find(sf, "ln_final.weight"), *tp = st_find(sf, "text_projection_scale");
		CHECK(t && t->dtype == ST_I8 && s && s->dtype == ST_F32 && s->shape[0] == t->shape[0], "%s: conv2 I8 + scales", name);
		CHECK(ln && ln->dtype == dt, "%s: LayerNorm weight keeps its dtype", name);
		CHECK(tp && tp->shape[0] == cfg.embed_dim, "%s: text_projection scales per embedding column", name);
		CHECK(st_metadata(sf, "mmf.weights") != NULL, "%s: mmf.weights metadata", name);
		st_close(sf);
	}
	/* quantising an int8 file again changes nothing */
	const char *q2 = test_tmp("int8-again.safetensors");
	clip_model *c = NULL;
	int i8c;
	CHECK(mmf_quantize_file(qp, q2, NULL, &err) == 0 && clip_model_load_w(q2, CLIP_WEIGHTS_FP16, &c, &i8c, &err) == 0, "%s: %s",
	      name, err.msg);
	if (c)
		CHECK(i8c == 0 && same_linear(&a->layers[0].fc, &c->layers[0].fc) && same_conv(&a->stem[0], &c->stem[0]),
		      "%s: re-quantised file differs or fp16 mode reports int8", name);
	clip_model_free(c);
out:
	clip_model_free(a), clip_model_free(b), clip_model_free(f);
}

/* Copies src to dst with tensor `name` replaced (dtype, shape, bytes) or
 * dropped (data NULL). */
static void replace(const char *src, const char *dst, const char *name, st_dtype dt, int ndim, const int64_t *shape,
		    const void *data)
{
	model_edit e = {.name = name, .dtype = dt, .ndim = ndim, .shape = shape, .data = data};
	model_copy(src, dst, &e);
}

static void test_bad_files(void)
{
	clip_config cfg;
	clip_config_named("tiny", &cfg);
	cfg.vocab = 300;
	mmf_err err = {0};
	const char *fp = test_tmp("bad-float.safetensors"), *qp = test_tmp("bad-int8.safetensors"),
		   *bad = test_tmp("bad.safetensors");
	if (clip_synth_write(&cfg, 3, ST_F16, fp, &err) || mmf_quantize_file(fp, qp, NULL, &err)) {
		CHECK(0, "%s", err.msg);
		return;
	}
	printf("malformed int8 models:\n");
	const char *sc = "visual.layer2.0.conv1.weight_scale";
	int64_t n16[1] = {32}, n3[1] = {3}, w64[1] = {64};	/* layer2 conv1: 32 channels */
	float s16[32];
	for (int i = 0; i < 32; i++)
		s16[i] = 0.01f;
	s16[5] = NAN;
	replace(qp, bad, sc, ST_F32, 1, n16, s16);
	expect_load_error("NaN scale", bad, -EINVAL, "'visual.layer2.0.conv1.weight_scale'", "non-finite value at element 5");
	s16[5] = -0.5f;
	replace(qp, bad, sc, ST_F32, 1, n16, s16);
	expect_load_error("negative scale", bad, -EINVAL, "'visual.layer2.0.conv1.weight_scale' has a negative scale -0.5",
		     "channel 5");
	replace(qp, bad, sc, ST_F32, 1, n3, s16);
	expect_load_error("scale shape", bad, -EINVAL, "'visual.layer2.0.conv1.weight_scale' has shape [3]", "expected [32]");
	int32_t i16[32] = {0};
	replace(qp, bad, sc, ST_I32, 1, n16, i16);
	expect_load_error("integer scales", bad, -EINVAL, "'visual.layer2.0.conv1.weight_scale' has dtype I32", "F32 or F16");
	replace(qp, bad, sc, 0, 0, NULL, NULL);
	expect_load_error("missing scales", bad, -ENOENT, "missing tensor 'visual.layer2.0.conv1.weight_scale'",
		     "int8 tensor 'visual.layer2.0.conv1.weight'");
	int8_t z64[64] = {0};
	replace(qp, bad, "ln_final.weight", ST_I8, 1, w64, z64);
	expect_load_error("I8 where F16 expected", bad, -EINVAL, "'ln_final.weight' has dtype I8",
		     "only convolution and linear weights may be int8");
	/* a float weight next to scales: the file is inconsistent */
	{
		st_file *q;
		if (st_open(qp, &q, &err) == 0) {
			model_edit e = {.add = st_find(q, "text_projection_scale")};
			model_copy(fp, bad, &e);
			st_close(q);
		}
	}
	expect_load_error("scales of a float weight", bad, -EINVAL, "'text_projection' has scales 'text_projection_scale'",
		     "expected I8");
	CHECK(mmf_quantize_file(test_tmp("nope.safetensors"), bad, NULL, &err) == -ENOENT, "missing input");
	CHECK_MSG(err.msg, "nope.safetensors", "cannot open");
}

/* Embeddings of the int8 model (dequantised, on the CPU) against float. */
static void test_accuracy(const char *name, int n)
{
	clip_config cfg;
	clip_config_named(name, &cfg);
	mmf_err err = {0};
	const char *fp = test_tmp("acc.safetensors");
	clip_model *m[2] = {NULL, NULL};
	chain *ch[2][2] = {{NULL, NULL}, {NULL, NULL}};
	float *px = malloc((size_t)n * 3 * cfg.image_size * cfg.image_size * sizeof *px);
	int32_t *tok = malloc((size_t)n * cfg.context * sizeof *tok);
	float *emb[2][2];
	int i8;
	if (clip_synth_write(&cfg, 21, ST_F32, fp, &err) || clip_model_load_w(fp, CLIP_WEIGHTS_FP16, &m[0], &i8, &err) ||
	    clip_model_load_w(fp, CLIP_WEIGHTS_INT8, &m[1], &i8, &err)) {
		CHECK(0, "%s", err.msg);
		goto out;
	}
	clip_synth_inputs(&cfg, n, 4, px, tok);
	for (int v = 0; v < 2; v++)
		for (int t = 0; t < 2; t++) {
			cpu_engine *e = NULL;
			emb[v][t] = malloc((size_t)n * cfg.embed_dim * sizeof(float));
			if (chain_build(m[v], (tower)t, &ch[v][t], &err) || cpu_engine_new(ch[v][t], n, &e, &err) ||
			    (t ? cpu_embed_text(e, tok, n, emb[v][t], &err) : cpu_embed_image(e, px, n, emb[v][t], &err)))
				CHECK(0, "%s", err.msg);
			cpu_engine_free(e);
		}
	for (int t = 0; t < 2; t++) {
		double worst = 1;
		for (int i = 0; i < n; i++) {
			double c = test_cosine(emb[0][t] + (size_t)i * cfg.embed_dim, emb[1][t] + (size_t)i * cfg.embed_dim,
					       cfg.embed_dim);
			worst = c < worst ? c : worst;
		}
		printf("%s %s tower, int8 vs float, %d samples: worst cosine %.6f\n", name, t ? "text" : "image", n, worst);
		CHECK(worst >= 0.995, "%s %s: worst cosine %.6f < 0.995", name, t ? "text" : "image", worst);
	}
	for (int v = 0; v < 2; v++)
		for (int t = 0; t < 2; t++)
			free(emb[v][t]), chain_free(ch[v][t]);
out:
	clip_model_free(m[0]), clip_model_free(m[1]);
	free(px), free(tok);
}

int main(void)
{
	cpu_set_threads(2);
	test_quantiser();
	test_round_trip("tiny", ST_F32);
	test_round_trip("small", ST_BF16);
	test_bad_files();
	test_accuracy("small", 4);
	if (!getenv("MMF_TEST_QUICK"))
		test_accuracy("rn50", 2);
	return test_done("test_quant");
}
