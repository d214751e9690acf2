/* CPU backend tests: ops against naive double-precision references at odd
 * sizes, batched runs against single runs, and input validation. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/synth.h"
#include "testutil.h"

static void fill(float *x, int64_t n, uint64_t seed)
{
	mmf_rng r;
	mmf_rng_seed(&r, seed);
	for (int64_t i = 0; i < n; i++)
		x[i] = mmf_rng_normal(&r);
}

static void test_attn(int T, int W, int H, int batch)
{
	op o = {.kind = OP_ATTN, .in = 0, .out = 1, .in2 = -1, .tokens = T, .width = W, .heads = H};
	float *qkv = malloc((size_t)batch * T * 3 * W * 4), *y = malloc((size_t)batch * T * W * 4),
	      *ref = malloc((size_t)batch * T * W * 4);
	fill(qkv, (int64_t)batch * T * 3 * W, 42 + T);
	int dh = W / H;
	for (int s = 0; s < batch; s++)
		for (int h = 0; h < H; h++)
			for (int i = 0; i < T; i++) {
				const float *base = qkv + (size_t)s * T * 3 * W;
				double sc[512], mx = -1e300, sum = 0;
				for (int j = 0; j <= i; j++) {
					double d = 0;
					for (int t = 0; t < dh; t++)
						d += (double)base[i * 3 * W + h * dh + t] * base[j * 3 * W + W + h * dh + t];
					sc[j] = d / sqrt((double)dh);
					mx = sc[j] > mx ? sc[j] : mx;
				}
				for (int j = 0; j <= i; j++)
					sum += (sc[j] = exp(sc[j] - mx));
				for (int t = 0; t < dh; t++) {
					double acc = 0;
					for (int j = 0; j <= i; j++)
						acc += sc[j] / sum * base[j * 3 * W + 2 * W + h * dh + t];
					ref[((size_t)s * T + i) * W + h * dh + t] = (float)acc;
				}
			}
	float *bufs[2] = {qkv, y};
	cpu_op_run(&o, bufs, batch, NULL);
	double e = test_maxabs(y, ref, batch * T * W);
	CHECK(e < 1e-5, "attn T%d W%d H%d batch %d: max abs err %g", T, W, H, batch, e);
	free(qkv), free(y), free(ref);
}

/* The attention pool folded as kernels/pool_fold.cuh computes it (Wk_h^T q_h
 * per head, bk dropped, then Wv applied to the softmax-weighted token sum),
 * in plain C with the kernel's index order, against the CPU's attention pool
 * on keys and values projected the usual way: the algebra the GPU fold
 * rests on (the GPU default for fp16; MMF_POOL_FOLD=0 turns it off; tests/gpu/test_ops checks the kernels). */
static void test_pool_fold(int B, int T, int C, int H)
{
	const int dh = C / H;
	float *q = malloc((size_t)B * C * 4), *x = malloc((size_t)B * T * C * 4), *wk = malloc((size_t)C * C * 4),
	      *wv = malloc((size_t)C * C * 4), *bk = malloc((size_t)C * 4), *bv = malloc((size_t)C * 4),
	      *kv = malloc((size_t)B * T * 2 * C * 4), *ref = malloc((size_t)B * C * 4), *qt = malloc((size_t)H * C * 4),
	      *xbar = malloc((size_t)C * 4), *sc = malloc((size_t)T * 4);
	fill(q, (int64_t)B * C, 101), fill(x, (int64_t)B * T * C, 102), fill(wk, (int64_t)C * C, 103);
	fill(wv, (int64_t)C * C, 104), fill(bk, C, 105), fill(bv, C, 106);
	for (int64_t i = 0; i < (int64_t)C * C; i++)
		wk[i] /= sqrtf((float)C), wv[i] /= sqrtf((float)C);
	for (int64_t row = 0; row < (int64_t)B * T; row++)
		for (int n = 0; n < 2 * C; n++) {
			const float *w = n < C ? wk + (int64_t)n * C : wv + (int64_t)(n - C) * C;
			double a = n < C ? bk[n] : bv[n - C];
			for (int k = 0; k < C; k++)
				a += (double)w[k] * x[row * C + k];
			kv[row * 2 * C + n] = (float)a;
		}
	op o = {.kind = OP_ATTN_POOL, .in = 0, .in2 = 1, .out = 2, .tokens = T, .width = C, .heads = H};
	float *bufs[3] = {q, kv, ref};
	cpu_op_run(&o, bufs, B, NULL);
	double err2 = 0, ref2 = 0;
	for (int b = 0; b < B; b++) {
		for (int h = 0; h < H; h++)
			for (int c = 0; c < C; c++) {
				double a = 0;
				for (int r = 0; r < dh; r++)
					a += (double)q[b * C + h * dh + r] * wk[(int64_t)(h * dh + r) * C + c];
				qt[h * C + c] = (float)(a / sqrt((double)dh));
			}
		for (int h = 0; h < H; h++) {
			double mx = -INFINITY, sum = 0;
			for (int j = 0; j < T; j++) {
				double s = 0;
				for (int c = 0; c < C; c++)
					s += (double)qt[h * C + c] * x[((int64_t)b * T + j) * C + c];
				sc[j] = (float)s;
				mx = s > mx ? s : mx;
			}
			for (int j = 0; j < T; j++)
				sum += exp(sc[j] - mx);
			for (int c = 0; c < C; c++) {
				double a = 0;
				for (int j = 0; j < T; j++)
					a += exp(sc[j] - mx) / sum * x[((int64_t)b * T + j) * C + c];
				xbar[c] = (float)a;
			}
			for (int r = 0; r < dh; r++) {
				const int n = h * dh + r;
				double a = bv[n];
				for (int c = 0; c < C; c++)
					a += (double)wv[(int64_t)n * C + c] * xbar[c];
				const double d = a - ref[b * C + n];
				err2 += d * d, ref2 += (double)ref[b * C + n] * ref[b * C + n];
			}
		}
	}
	const double rel = sqrt(err2 / (ref2 > 0 ? ref2 : 1));
	CHECK(rel < 1e-5, "pool fold B=%d T=%d C=%d H=%d: relative L2 error %.3g against the attention pool", B, T, C, H, rel);
	free(q), free(x), free(wk), free(wv), free(bk), free(bv), free(kv), free(ref), free(qt), free(xbar), free(sc);
}

static void test_linear_strided(void)
{
	/* One row per sample, read at a stride (the attention pool's query). */
	int batch = 3, K = 24, N = 10, T = 5;
	float *x = malloc((size_t)batch * T * K * 4), *w = malloc((size_t)N * K * 4), *b = malloc(N * 4),
	      *y = malloc((size_t)batch * N * 4);
	fill(x, batch * T * K, 1), fill(w, N * K, 2), fill(b, N, 3);
	op o = {.kind = OP_LINEAR, .in = 0, .out = 1, .in2 = -1, .m = 1, .k_in = K, .n = N,
		.in_sample_stride = (int64_t)T * K, .wt = w, .bias = b, .act = ACT_QUICKGELU};
	float *bufs[2] = {x, y};
	cpu_op_run(&o, bufs, batch, NULL);
	double e = 0;
	for (int s = 0; s < batch; s++)
		for (int n = 0; n < N; n++) {
			double acc = b[n];
			for (int k = 0; k < K; k++)
				acc += (double)x[(size_t)s * T * K + k] * w[n * K + k];
			acc = acc / (1 + exp(-1.702 * acc));
			e = fmax(e, fabs(acc - y[s * N + n]));
		}
	CHECK(e < 1e-5, "strided linear + quickgelu: max abs err %g", e);
	free(x), free(w), free(b), free(y);
}

/* A batch of n gives each sample what a batch of 1 gives it. */
static void test_batch(clip_model *m)
{
	mmf_err err = {0};
	const clip_config *c = &m->cfg;
	int n = 3, E = c->embed_dim, S = c->image_size, T = c->context;
	for (int t = 0; t < 2; t++) {
		chain *ch;
		cpu_engine *e1, *en;
		if (chain_build(m, (tower)t, &ch, &err) || cpu_engine_new(ch, 1, &e1, &err) || cpu_engine_new(ch, n, &en, &err)) {
			CHECK(0, "%s", err.msg);
			return;
		}
		float *px = malloc((size_t)n * 3 * S * S * 4), *one = malloc((size_t)E * 4), *all = malloc((size_t)n * E * 4);
		int32_t *tok = calloc((size_t)n * T, 4);
		fill(px, (int64_t)n * 3 * S * S, 9);
		for (int s = 0; s < n; s++) {
			tok[s * T] = c->vocab - 2;
			for (int i = 1; i < 3 + 7 * s; i++)
				tok[s * T + i] = 1 + (i * 37 + s) % (c->vocab - 3);
			tok[s * T + 3 + 7 * s] = c->vocab - 1;
		}
		int rc = t == TOWER_IMAGE ? cpu_embed_image(en, px, n, all, &err) : cpu_embed_text(en, tok, n, all, &err);
		CHECK(rc == 0, "%s", err.msg);
		for (int s = 0; s < n; s++) {
			rc = t == TOWER_IMAGE ? cpu_embed_image(e1, px + (size_t)s * 3 * S * S, 1, one, &err)
					      : cpu_embed_text(e1, tok + (size_t)s * T, 1, one, &err);
			CHECK(rc == 0, "%s", err.msg);
			double d = test_maxabs(one, all + (size_t)s * E, E);
			CHECK(d < 1e-5, "%s sample %d: batch-of-%d differs from batch-of-1 by %g", tower_name((tower)t), s, n, d);
		}
		/* Input validation. */
		float nan_px[3 * 64 * 64];
		if (t == TOWER_IMAGE && S == 64) {
			memcpy(nan_px, px, sizeof nan_px);
			nan_px[100] = NAN;
			CHECK(cpu_embed_image(e1, nan_px, 1, one, &err) == -EINVAL, "NaN pixel accepted");
			CHECK_MSG(err.msg, "pixel 100 of channel 0 is not finite");
			CHECK(cpu_embed_text(e1, tok, 1, one, &err) == -EINVAL, "text on the image engine");
			CHECK_MSG(err.msg, "built for the image tower");
		}
		if (t == TOWER_TEXT) {
			tok[5] = c->vocab;
			CHECK(cpu_embed_text(e1, tok, 1, one, &err) == -EINVAL, "token out of range accepted");
			CHECK_MSG(err.msg, "token 500 at position 5", "[0,500)");
			tok[5] = -3;
			CHECK(cpu_embed_text(e1, tok, 1, one, &err) == -EINVAL, "negative token accepted");
			CHECK_MSG(err.msg, "token -3 at position 5");
			CHECK(cpu_embed_text(e1, tok, 2, one, &err) == -EINVAL, "batch over max accepted");
			CHECK_MSG(err.msg, "batch of 2, expected 1..1");
			CHECK(cpu_embed_text(e1, tok, 0, one, &err) == -EINVAL, "batch 0 accepted");
		}
		free(px), free(one), free(all), free(tok);
		cpu_engine_free(e1);
		cpu_engine_free(en);
		chain_free(ch);
	}
}

static void test_chain(clip_model *m)
{
	mmf_err err = {0};
	chain *img, *txt;
	CHECK(chain_build(m, TOWER_IMAGE, &img, &err) == 0, "%s", err.msg);
	CHECK(chain_build(m, TOWER_TEXT, &txt, &err) == 0, "%s", err.msg);
	/* tiny: stem 3 convs + pool, 4 blocks of 3 convs + down (+2 pools for
	 * strided blocks), attention pool (tokens, q, kv, attn, c_proj), norm. */
	int convs = 0, pools = 0;
	for (int i = 0; i < img->nops; i++)
		convs += img->ops[i].kind == OP_CONV, pools += img->ops[i].kind == OP_AVGPOOL;
	CHECK(convs == 3 + 4 * 4, "convs %d", convs);
	CHECK(pools == 1 + 3 * 2, "pools %d", pools);
	CHECK(img->ops[img->nops - 1].kind == OP_L2NORM && img->out == img->ops[img->nops - 1].out, "image chain ends in l2norm");
	CHECK(txt->nops == 1 + 7 * m->cfg.text_layers + 4, "text ops %d", txt->nops);
	/* FLOPs of a 1x1 conv and a linear follow 2*M*N*K. */
	const op *fc = NULL;
	for (int i = 0; i < txt->nops; i++)
		if (!strcmp(txt->ops[i].name, "block0.mlp.fc"))
			fc = &txt->ops[i];
	CHECK(fc && fc->flops == 2.0 * 77 * 256 * 64 && fc->act == ACT_QUICKGELU, "block0.mlp.fc");
	CHECK(op_bytes(fc, 1, 2) == 2.0 * (77 * 64 + 77 * 256) + 2.0 * (256 * 64 + 256), "fc bytes %g", op_bytes(fc, 1, 2));
	chain_free(img);
	chain_free(txt);
}

int main(void)
{
	cpu_set_threads(2);
	test_attn(77, 64, 2, 1);
	test_attn(13, 96, 3, 2);
	test_attn(1, 32, 1, 1);
	test_linear_strided();
	test_pool_fold(1, 50, 256, 4);
	test_pool_fold(2, 7, 96, 3);
	test_pool_fold(1, 1, 64, 2);
	clip_config cfg;
	clip_config_named("tiny", &cfg);
	cfg.vocab = 500;
	mmf_err err = {0};
	char path[512];
	snprintf(path, sizeof path, "%s/cpu.safetensors", test_tmpdir());
	clip_model *m = NULL;
	if (clip_synth_write(&cfg, 4, ST_F32, path, &err) || clip_model_load(path, &m, &err)) {
		CHECK(0, "%s", err.msg);
		return test_done("test_cpu");
	}
	test_chain(m);
	test_batch(m);
	clip_model_free(m);
	return test_done("test_cpu");
}
