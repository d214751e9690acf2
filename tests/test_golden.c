/* Golden tests: the CPU engine against open_clip on the same weights and
 * inputs (tests/golden/, made by tools/golden.py). Bar: cosine >= 0.99999
 * on every image and text embedding; the max abs errors are printed. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "testutil.h"

static float *read_f32(st_file *f, const char *name, int64_t d0, int64_t d1)
{
	const st_tensor *t = st_find(f, name);
	if (!t || t->dtype != ST_F32 || t->ndim != 2 || t->shape[0] != d0 || (d1 >= 0 && t->shape[1] != d1)) {
		fprintf(stderr, "golden: tensor '%s' missing or not F32 [%lld,%lld]\n", name, (long long)d0, (long long)d1);
		return NULL;
	}
	float *v = malloc(t->nbytes);
	if (v)
		st_tensor_read_f32(t, v);
	return v;
}

static void golden(const char *cfg)
{
	char rel[128], mpath[512], iopath[512];
	snprintf(rel, sizeof rel, "tests/golden/%s.safetensors", cfg);
	test_src(rel, mpath, sizeof mpath);
	snprintf(rel, sizeof rel, "tests/golden/%s_io.safetensors", cfg);
	test_src(rel, iopath, sizeof iopath);
	mmf_err err = {0};
	clip_model *m = NULL;
	st_file *io = NULL;
	chain *ci = NULL, *ct = NULL;
	cpu_engine *ei = NULL, *et = NULL;
	float *px = NULL, *want_i = NULL, *want_t = NULL, *want_l = NULL, *got_i = NULL, *got_t = NULL, *got_l = NULL;
	int rc = clip_model_load(mpath, &m, &err);
	CHECK(rc == 0, "%s", err.msg);
	if (rc)
		return;
	rc = st_open(iopath, &io, &err);
	CHECK(rc == 0, "%s", err.msg);
	if (rc)
		goto out;
	const clip_config *c = &m->cfg;
	const st_tensor *tt = st_find(io, "tokens"), *pt = st_find(io, "pixels");
	CHECK(tt && tt->dtype == ST_I32 && tt->ndim == 2 && tt->shape[1] == c->context, "tokens tensor");
	CHECK(pt && pt->dtype == ST_F32 && pt->ndim == 4 && pt->shape[2] == c->image_size, "pixels tensor");
	if (!tt || !pt || tt->ndim != 2 || pt->ndim != 4)
		goto out;
	int ni = (int)pt->shape[0], nt = (int)tt->shape[0], E = c->embed_dim;
	px = malloc(pt->nbytes);
	int32_t *tok = malloc(tt->nbytes);
	if (!px || !tok) {
		free(tok);
		goto out;
	}
	memcpy(px, pt->data, pt->nbytes);
	memcpy(tok, tt->data, tt->nbytes);
	want_i = read_f32(io, "image_features", ni, E);
	want_t = read_f32(io, "text_features", nt, E);
	want_l = read_f32(io, "logits_per_image", ni, nt);
	got_i = malloc((size_t)ni * E * sizeof *got_i);
	got_t = malloc((size_t)nt * E * sizeof *got_t);
	got_l = malloc((size_t)ni * nt * sizeof *got_l);
	CHECK(want_i && want_t && want_l, "golden outputs present");
	if (!want_i || !want_t || !want_l || !got_i || !got_t || !got_l) {
		free(tok);
		goto out;
	}
	rc = chain_build(m, TOWER_IMAGE, &ci, &err) || chain_build(m, TOWER_TEXT, &ct, &err) ||
	     cpu_engine_new(ci, ni, &ei, &err) || cpu_engine_new(ct, nt, &et, &err) ||
	     cpu_embed_image(ei, px, ni, got_i, &err) || cpu_embed_text(et, tok, nt, got_t, &err);
	free(tok);
	CHECK(rc == 0, "%s", err.msg);
	if (rc)
		goto out;
	for (int i = 0; i < ni; i++) {
		double cs = test_cosine(got_i + i * E, want_i + i * E, E);
		/* ours is normalised; compare the direction and the normalised values */
		float wn[4096];
		double n = 0;
		for (int j = 0; j < E; j++)
			n += (double)want_i[i * E + j] * want_i[i * E + j];
		for (int j = 0; j < E && j < 4096; j++)
			wn[j] = (float)(want_i[i * E + j] / sqrt(n));
		printf("%s image %d: cosine %.9f, max abs err (normalised) %.3g\n", cfg, i, cs, test_maxabs(got_i + i * E, wn, E));
		CHECK(cs >= 0.99999, "%s image %d cosine %.9f < 0.99999", cfg, i, cs);
	}
	for (int i = 0; i < nt; i++) {
		double cs = test_cosine(got_t + i * E, want_t + i * E, E);
		printf("%s text %d: cosine %.9f\n", cfg, i, cs);
		CHECK(cs >= 0.99999, "%s text %d cosine %.9f < 0.99999", cfg, i, cs);
	}
	clip_logits(got_i, ni, got_t, nt, E, m->logit_scale, got_l);
	double le = test_maxabs(got_l, want_l, ni * nt);
	printf("%s logits: max abs err %.3g (logit scale %.4f)\n", cfg, le, expf(m->logit_scale));
	CHECK(le < 1e-3 * expf(m->logit_scale), "%s logits max abs err %.3g", cfg, le);
out:
	free(px), free(want_i), free(want_t), free(want_l), free(got_i), free(got_t), free(got_l);
	cpu_engine_free(ei);
	cpu_engine_free(et);
	chain_free(ci);
	chain_free(ct);
	st_close(io);
	clip_model_free(m);
}

int main(void)
{
	golden("tiny");
	golden("small");
	return test_done("test_golden");
}
