/* Seeded CLIP weights. Each tensor draws from its own stream, seeded by the
 * model seed and a hash of the tensor's name, so a tensor's values do not
 * depend on the order tensors are written in. */
#include "config.h"
#include "synth.h"
#include "engine/hash.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void mmf_rng_seed(mmf_rng *r, uint64_t seed)
{
	r->s = seed;
	r->has = 0;
}

uint64_t mmf_rng_u64(mmf_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float mmf_rng_uniform(mmf_rng *r) { return (float)(mmf_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float mmf_rng_normal(mmf_rng *r)
{
	if (r->has) {
		r->has = 0;
		return r->spare;
	}
	double u1 = ((double)(mmf_rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double u2 = (double)(mmf_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
	double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
	r->spare = (float)(rad * sin(th));
	r->has = 1;
	return (float)(rad * cos(th));
}

int clip_config_named(const char *name, clip_config *c)
{
	static const struct { const char *name; clip_config cfg; } named[] = {
		{"tiny", {64, 16, {1, 1, 1, 1}, 8, 64, 64, 2, 2, 77, 49408, 1}},
		{"small", {224, 16, {3, 4, 6, 3}, 8, 128, 128, 2, 12, 77, 49408, 1}},
		{"rn50", {224, 64, {3, 4, 6, 3}, 32, 1024, 512, 8, 12, 77, 49408, 1}},
		{"rn101", {224, 64, {3, 4, 23, 3}, 32, 512, 512, 8, 12, 77, 49408, 1}},
		{"rn50x4", {288, 80, {4, 6, 10, 6}, 40, 640, 640, 10, 12, 77, 49408, 1}},
	};
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		if (strcmp(name, named[i].name) == 0) {
			*c = named[i].cfg;
			return 0;
		}
	return -ENOENT;
}

int clip_config_check(const clip_config *c, mmf_err *err)
{
	if (c->image_size < 32 || c->image_size % 32 || c->image_size > 4096)
		return mmf_err_set(err, -EINVAL, "image size %d: expected a multiple of 32 in [32,4096]", c->image_size);
	if (c->vision_width < 2 || c->vision_width % 2 || c->vision_width > 1024)
		return mmf_err_set(err, -EINVAL, "vision width %d: expected an even number in [2,1024]", c->vision_width);
	for (int s = 0; s < 4; s++)
		if (c->vision_layers[s] < 1 || c->vision_layers[s] > 64)
			return mmf_err_set(err, -EINVAL, "vision layers[%d] = %d: expected 1..64", s, c->vision_layers[s]);
	int C = clip_vision_channels(c);
	if (c->vision_heads < 1 || C % c->vision_heads)
		return mmf_err_set(err, -EINVAL, "vision heads %d: expected a divisor of the pool width %d", c->vision_heads, C);
	if (c->text_width < 1 || c->text_width > 8192 || c->text_heads < 1 || c->text_width % c->text_heads)
		return mmf_err_set(err, -EINVAL, "text width %d, heads %d: expected heads to divide the width", c->text_width, c->text_heads);
	if (c->text_layers < 1 || c->text_layers > 128)
		return mmf_err_set(err, -EINVAL, "text layers %d: expected 1..128", c->text_layers);
	if (c->context < 2 || c->context > 4096 || c->vocab < 3 || c->vocab > 1 << 20)
		return mmf_err_set(err, -EINVAL, "context %d, vocab %d: expected context 2..4096 and vocab 3..%d", c->context, c->vocab, 1 << 20);
	if (c->embed_dim < 1 || c->embed_dim > 16384)
		return mmf_err_set(err, -EINVAL, "embed dim %d: expected 1..16384", c->embed_dim);
	return 0;
}

typedef struct synth {
	st_writer *w;
	st_dtype dtype;
	uint64_t seed;
	float *buf;
	size_t cap;
	mmf_err *err;
} synth;

static uint64_t name_hash(const char *s) { return mmf_fnv1a(MMF_FNV1A_BASIS, s, strlen(s)); }

enum dist { NORMAL, UNIFORM, CONST };

/* Adds tensor `name` of the given shape, values mean + scale*N(0,1), or
 * U(lo,hi) with lo=mean, hi=scale, or the constant mean. */
static int tensor(synth *S, const char *name, enum dist d, float a, float b, int ndim, int64_t d0, int64_t d1,
		  int64_t d2, int64_t d3)
{
	int64_t shape[4] = {d0, d1, d2, d3};
	size_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	if (n > S->cap) {
		float *p = realloc(S->buf, n * sizeof *p);
		if (!p)
			return mmf_err_set(S->err, -ENOMEM, "out of memory for '%s'", name);
		S->buf = p;
		S->cap = n;
	}
	mmf_rng r;
	mmf_rng_seed(&r, S->seed ^ name_hash(name));
	for (size_t i = 0; i < n; i++)
		S->buf[i] = d == NORMAL ? a + b * mmf_rng_normal(&r) : d == UNIFORM ? a + (b - a) * mmf_rng_uniform(&r) : a;
	return st_writer_add_f32(S->w, name, S->dtype, ndim, shape, S->buf, S->err);
}

static int bn(synth *S, const char *prefix, int c, float gamma_lo, float gamma_hi)
{
	char n[160];
	int rc;
	snprintf(n, sizeof n, "%s.weight", prefix);
	if ((rc = tensor(S, n, UNIFORM, gamma_lo, gamma_hi, 1, c, 0, 0, 0)) < 0)
		return rc;
	snprintf(n, sizeof n, "%s.bias", prefix);
	if ((rc = tensor(S, n, NORMAL, 0, 0.1f, 1, c, 0, 0, 0)) < 0)
		return rc;
	snprintf(n, sizeof n, "%s.running_mean", prefix);
	if ((rc = tensor(S, n, NORMAL, 0, 0.1f, 1, c, 0, 0, 0)) < 0)
		return rc;
	snprintf(n, sizeof n, "%s.running_var", prefix);
	if ((rc = tensor(S, n, UNIFORM, 0.5f, 2.0f, 1, c, 0, 0, 0)) < 0)
		return rc;
	snprintf(n, sizeof n, "%s.num_batches_tracked", prefix);
	int64_t zero = 0;
	return st_writer_add(S->w, n, ST_I64, 0, NULL, &zero, S->err);
}

static int conv(synth *S, const char *name, int cin, int cout, int k)
{
	char n[160];
	snprintf(n, sizeof n, "%s.weight", name);
	return tensor(S, n, NORMAL, 0, sqrtf(2.0f / (float)(cin * k * k)), 4, cout, cin, k, k);
}

static int linear(synth *S, const char *prefix, int in, int out, float std)
{
	char n[160];
	int rc;
	snprintf(n, sizeof n, "%s.weight", prefix);
	if ((rc = tensor(S, n, NORMAL, 0, std, 2, out, in, 0, 0)) < 0)
		return rc;
	snprintf(n, sizeof n, "%s.bias", prefix);
	return tensor(S, n, NORMAL, 0, 0.02f, 1, out, 0, 0, 0);
}

#define TRY(x) do { if ((rc = (x)) < 0) return rc; } while (0)

static int vision(synth *S, const clip_config *c)
{
	int rc, w = c->vision_width;
	TRY(conv(S, "visual.conv1", 3, w / 2, 3));
	TRY(bn(S, "visual.bn1", w / 2, 0.5f, 1.5f));
	TRY(conv(S, "visual.conv2", w / 2, w / 2, 3));
	TRY(bn(S, "visual.bn2", w / 2, 0.5f, 1.5f));
	TRY(conv(S, "visual.conv3", w / 2, w, 3));
	TRY(bn(S, "visual.bn3", w, 0.5f, 1.5f));
	int inplanes = w;
	for (int s = 0; s < 4; s++) {
		int planes = w << s;
		for (int i = 0; i < c->vision_layers[s]; i++) {
			char p[96], n[128];
			snprintf(p, sizeof p, "visual.layer%d.%d", s + 1, i);
			snprintf(n, sizeof n, "%s.conv1", p);
			TRY(conv(S, n, inplanes, planes, 1));
			snprintf(n, sizeof n, "%s.bn1", p);
			TRY(bn(S, n, planes, 0.5f, 1.5f));
			snprintf(n, sizeof n, "%s.conv2", p);
			TRY(conv(S, n, planes, planes, 3));
			snprintf(n, sizeof n, "%s.bn2", p);
			TRY(bn(S, n, planes, 0.5f, 1.5f));
			snprintf(n, sizeof n, "%s.conv3", p);
			TRY(conv(S, n, planes, planes * 4, 1));
			/* A small residual-branch gain keeps activations sane
			 * through deep stages (the role zero-init BN plays in
			 * training). */
			snprintf(n, sizeof n, "%s.bn3", p);
			TRY(bn(S, n, planes * 4, 0.1f, 0.3f));
			if ((s > 0 && i == 0) || inplanes != planes * 4) {
				snprintf(n, sizeof n, "%s.downsample.0", p);
				TRY(conv(S, n, inplanes, planes * 4, 1));
				snprintf(n, sizeof n, "%s.downsample.1", p);
				TRY(bn(S, n, planes * 4, 0.5f, 1.5f));
			}
			inplanes = planes * 4;
		}
	}
	int C = clip_vision_channels(c), g = clip_grid(c);
	float std = 1.0f / sqrtf((float)C);
	TRY(tensor(S, "visual.attnpool.positional_embedding", NORMAL, 0, std, 2, g * g + 1, C, 0, 0));
	TRY(linear(S, "visual.attnpool.k_proj", C, C, std));
	TRY(linear(S, "visual.attnpool.q_proj", C, C, std));
	TRY(linear(S, "visual.attnpool.v_proj", C, C, std));
	TRY(linear(S, "visual.attnpool.c_proj", C, c->embed_dim, std));
	return 0;
}

static int text(synth *S, const clip_config *c)
{
	int rc, W = c->text_width;
	float attn_std = 1.0f / sqrtf((float)W), proj_std = attn_std / sqrtf(2.0f * c->text_layers),
	      fc_std = 1.0f / sqrtf(2.0f * W);
	TRY(tensor(S, "positional_embedding", NORMAL, 0, 0.01f, 2, c->context, W, 0, 0));
	TRY(tensor(S, "text_projection", NORMAL, 0, attn_std, 2, W, c->embed_dim, 0, 0));
	TRY(tensor(S, "logit_scale", CONST, logf(1.0f / 0.07f), 0, 0, 0, 0, 0, 0));
	TRY(tensor(S, "token_embedding.weight", NORMAL, 0, 0.02f, 2, c->vocab, W, 0, 0));
	for (int i = 0; i < c->text_layers; i++) {
		char p[96], n[160];
		snprintf(p, sizeof p, "transformer.resblocks.%d", i);
		snprintf(n, sizeof n, "%s.ln_1.weight", p);
		TRY(tensor(S, n, UNIFORM, 0.8f, 1.2f, 1, W, 0, 0, 0));
		snprintf(n, sizeof n, "%s.ln_1.bias", p);
		TRY(tensor(S, n, NORMAL, 0, 0.05f, 1, W, 0, 0, 0));
		snprintf(n, sizeof n, "%s.attn.in_proj_weight", p);
		TRY(tensor(S, n, NORMAL, 0, attn_std, 2, 3 * W, W, 0, 0));
		snprintf(n, sizeof n, "%s.attn.in_proj_bias", p);
		TRY(tensor(S, n, NORMAL, 0, 0.02f, 1, 3 * W, 0, 0, 0));
		snprintf(n, sizeof n, "%s.attn.out_proj", p);
		TRY(linear(S, n, W, W, proj_std));
		snprintf(n, sizeof n, "%s.ln_2.weight", p);
		TRY(tensor(S, n, UNIFORM, 0.8f, 1.2f, 1, W, 0, 0, 0));
		snprintf(n, sizeof n, "%s.ln_2.bias", p);
		TRY(tensor(S, n, NORMAL, 0, 0.05f, 1, W, 0, 0, 0));
		snprintf(n, sizeof n, "%s.mlp.c_fc", p);
		TRY(linear(S, n, W, 4 * W, fc_std));
		snprintf(n, sizeof n, "%s.mlp.c_proj", p);
		TRY(linear(S, n, 4 * W, W, proj_std));
	}
	TRY(tensor(S, "ln_final.weight", UNIFORM, 0.8f, 1.2f, 1, W, 0, 0, 0));
	TRY(tensor(S, "ln_final.bias", NORMAL, 0, 0.05f, 1, W, 0, 0, 0));
	return 0;
}

int clip_synth_write(const clip_config *c, uint64_t seed, st_dtype dtype, const char *path, mmf_err *err)
{
	int rc = clip_config_check(c, err);
	if (rc < 0)
		return rc;
	if (dtype != ST_F32 && dtype != ST_F16 && dtype != ST_BF16)
		return mmf_err_set(err, -EINVAL, "weights dtype %s: expected F32, F16 or BF16", st_dtype_name(dtype));
	synth S = {.w = st_writer_new(), .dtype = dtype, .seed = seed, .err = err};
	if (!S.w)
		return mmf_err_set(err, -ENOMEM, "out of memory");
	char v[32];
	if ((rc = vision(&S, c)) < 0 || (rc = text(&S, c)) < 0)
		goto out;
	snprintf(v, sizeof v, "%d", c->vision_heads);
	if ((rc = st_writer_meta(S.w, "mmf.vision_heads", v, err)) < 0)
		goto out;
	snprintf(v, sizeof v, "%d", c->text_heads);
	if ((rc = st_writer_meta(S.w, "mmf.text_heads", v, err)) < 0 ||
	    (rc = st_writer_meta(S.w, "mmf.act", c->quick_gelu ? "quickgelu" : "gelu", err)) < 0)
		goto out;
	snprintf(v, sizeof v, "%llu", (unsigned long long)seed);
	if ((rc = st_writer_meta(S.w, "mmf.seed", v, err)) < 0 || (rc = st_writer_meta(S.w, "format", "pt", err)) < 0)
		goto out;
	rc = st_writer_save(S.w, path, err);
out:
	st_writer_free(S.w);
	free(S.buf);
	return rc;
}

int clip_model_resolve(const char *arg, uint64_t seed, char *path, size_t len, void (*note)(const char *msg),
		       mmf_err *err)
{
	clip_config cfg;
	struct stat st;
	if (stat(arg, &st) == 0 || clip_config_named(arg, &cfg) < 0) {
		snprintf(path, len, "%s", arg);
		return 0;
	}
	const char *dir = getenv("MMF_CACHE");
	if (!dir || !*dir)
		dir = "/tmp/mmf-cache";
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return mmf_err_set(err, -errno, "%s: cannot create the model cache: %s", dir, strerror(errno));
	snprintf(path, len, "%s/%s-seed%llu.safetensors", dir, arg, (unsigned long long)seed);
	if (stat(path, &st) == 0)
		return 0;
	char tmp[4200], msg[4300];
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	snprintf(msg, sizeof msg, "writing synthetic %s model to %s", arg, path);
	if (note)
		note(msg);
	int rc = clip_synth_write(&cfg, seed, ST_F32, tmp, err);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = mmf_err_set(err, -errno, "%s: %s", path, strerror(errno));
	if (rc < 0)
		unlink(tmp);
	return rc;
}

void clip_synth_inputs(const clip_config *c, int n, uint64_t seed, float *px, int32_t *tok)
{
	mmf_rng r;
	if (px) {
		mmf_rng_seed(&r, seed * 7919 + 1);
		for (size_t i = 0; i < (size_t)n * 3 * c->image_size * c->image_size; i++)
			px[i] = mmf_rng_normal(&r);
	}
	if (tok) {
		mmf_rng_seed(&r, seed * 7919 + 2);
		memset(tok, 0, (size_t)n * c->context * sizeof *tok);
		for (int s = 0; s < n; s++) {
			int len = 2 + (int)(mmf_rng_u64(&r) % (uint64_t)(c->context - 1));
			int32_t *t = tok + (size_t)s * c->context;
			t[0] = c->vocab - 2;
			for (int i = 1; i < len - 1; i++)
				t[i] = 1 + (int32_t)(mmf_rng_u64(&r) % (uint64_t)(c->vocab - 3));
			t[len - 1] = c->vocab - 1;
		}
	}
}
