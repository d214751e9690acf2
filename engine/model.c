/* Loads an open_clip CLIP ModifiedResNet state dict. Every tensor the model
 * needs is looked up by its open_clip name with the shape the inferred
 * configuration demands; every tensor in the file must be used (int64
 * num_batches_tracked buffers excepted), so a file of another architecture
 * or a damaged one fails with a message naming the tensor. */
#include "config.h"
#include "model.h"
#include "quant.h"
#include "safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f

typedef struct loader {
	st_file *f;
	clip_model *m;
	unsigned char *used;
	mmf_err *err;
	int quantize;	/* quantise float conv/linear weights as they are read */
} loader;

static const st_tensor *find_used(loader *L, const char *name)
{
	const st_tensor *t = st_find(L->f, name);
	if (t)
		L->used[t - st_at(L->f, 0)] = 1;
	return t;
}

/* Looks up tensor `name` (marking it used) and checks its shape against
 * want[0..ndim). NULL with err set when missing or of another shape. */
static const st_tensor *lookup(loader *L, const char *name, int ndim, const int64_t *want)
{
	const st_tensor *t = find_used(L, name);
	if (!t) {
		mmf_err_set(L->err, -ENOENT, "%s: missing tensor '%s'", st_path(L->f), name);
		return NULL;
	}
	int ok = t->ndim == ndim;
	for (int i = 0; ok && i < ndim; i++)
		ok = t->shape[i] == want[i];
	if (!ok) {
		char got[128], exp[128];
		st_tensor w = {.ndim = ndim};
		memcpy(w.shape, want, (size_t)ndim * sizeof *want);
		mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has shape %s, expected %s", st_path(L->f), name,
			    st_shape_str(t, got, sizeof got), st_shape_str(&w, exp, sizeof exp));
		return NULL;
	}
	return t;
}

/* Tensor t as float32 (malloc'd), checked finite; NULL with err set. */
static float *read_float(loader *L, const st_tensor *t)
{
	if (t->dtype == ST_I8) {
		mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has dtype I8, expected F32, F16 or BF16 (only convolution and linear weights may be int8)",
			    st_path(L->f), t->name);
		return NULL;
	}
	if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64) {
		mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16",
			    st_path(L->f), t->name, st_dtype_name(t->dtype));
		return NULL;
	}
	float *v = malloc((t->nelem ? t->nelem : 1) * sizeof *v);
	if (!v) {
		mmf_err_set(L->err, -ENOMEM, "%s: out of memory for '%s'", st_path(L->f), t->name);
		return NULL;
	}
	st_tensor_read_f32(t, v);
	for (uint64_t i = 0; i < t->nelem; i++)
		if (!isfinite(v[i])) {
			mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' holds a non-finite value at element %llu",
				    st_path(L->f), t->name, (unsigned long long)i);
			free(v);
			return NULL;
		}
	return v;
}

/* Reads tensor `name` as float32, checking its shape against the ndim
 * expected dims (varargs). Returns a malloc'd array or NULL with err set. */
static float *get(loader *L, const char *name, int ndim, ...)
{
	int64_t want[ST_MAX_DIMS];
	va_list ap;
	va_start(ap, ndim);
	for (int i = 0; i < ndim; i++)
		want[i] = va_arg(ap, int64_t);
	va_end(ap);
	const st_tensor *t = lookup(L, name, ndim, want);
	float *v = t ? read_float(L, t) : NULL;
	if (v)
		L->m->nparams += t->nelem;
	return v;
}

/* A convolution or linear weight: float (quantised here when L->quantize)
 * or I8 with its scales in `name`_scale. out_dim is the output channel's
 * dimension (quant.h). *w gets float32 values in the file's layout
 * (dequantised when int8); *q and *s the int8 values and scales, or NULL. */
static int get_weight(loader *L, const char *name, int ndim, const int64_t *want, int out_dim, float **w, int8_t **q,
		      float **s)
{
	*w = NULL, *q = NULL, *s = NULL;
	const st_tensor *t = lookup(L, name, ndim, want);
	if (!t)
		return L->err ? L->err->code : -EINVAL;
	/* rows x cols: dim 0 against the rest (a conv's [out][in][k][k] too) */
	int64_t rows = want[0], cols = rows ? (int64_t)(t->nelem / (uint64_t)rows) : 0, nout = out_dim ? want[1] : rows;
	L->m->nweights++;
	L->m->nparams += t->nelem;
	char sname[300];
	snprintf(sname, sizeof sname, "%s_scale", name);
	if (t->dtype != ST_I8) {
		if (st_find(L->f, sname))
			return mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has scales '%s' but dtype %s, expected I8",
					   st_path(L->f), name, sname, st_dtype_name(t->dtype));
		if (!(*w = read_float(L, t)))
			return L->err ? L->err->code : -EINVAL;
		if (!L->quantize)
			return 0;
		*q = malloc(t->nelem ? t->nelem : 1);
		*s = malloc((size_t)(nout ? nout : 1) * sizeof **s);
		if (!*q || !*s)
			return mmf_err_set(L->err, -ENOMEM, "out of memory quantising '%s'", name);
		mmf_quant(*w, rows, cols, out_dim, *q, *s);
	} else {
		if (!st_find(L->f, sname))
			return mmf_err_set(L->err, -ENOENT, "%s: missing tensor '%s' (the per-output-channel scales of int8 tensor '%s')",
					   st_path(L->f), sname, name);
		const st_tensor *ts = lookup(L, sname, 1, &nout);
		if (!ts)
			return L->err ? L->err->code : -EINVAL;
		if (ts->dtype != ST_F32 && ts->dtype != ST_F16)
			return mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has dtype %s, expected F32 or F16 (int8 scales)",
					   st_path(L->f), sname, st_dtype_name(ts->dtype));
		if (!(*s = read_float(L, ts)))
			return L->err ? L->err->code : -EINVAL;
		for (int64_t i = 0; i < nout; i++)
			if ((*s)[i] < 0)
				return mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has a negative scale %g at channel %lld",
						   st_path(L->f), sname, (*s)[i], (long long)i);
		*q = malloc(t->nelem ? t->nelem : 1);
		*w = malloc((t->nelem ? t->nelem : 1) * sizeof **w);
		if (!*q || !*w)
			return mmf_err_set(L->err, -ENOMEM, "%s: out of memory for '%s'", st_path(L->f), name);
		memcpy(*q, t->data, t->nelem);
	}
	mmf_dequant(*q, *s, rows, cols, out_dim, *w);
	L->m->nint8++;
	return 0;
}

#define I(x) ((int64_t)(x))

/* conv (no bias) + BatchNorm under prefix conv_name / bn_name, folded. */
static int load_conv_bn(loader *L, clip_conv *c, const char *conv_name, const char *bn_name,
			int cin, int cout, int k, int stride)
{
	char n[256];
	c->cin = cin, c->cout = cout, c->k = k, c->stride = stride, c->pad = k / 2;
	snprintf(n, sizeof n, "%s.weight", conv_name);
	const int64_t shape[4] = {cout, cin, k, k};
	float *w, *g = NULL, *bt = NULL, *mu = NULL, *var = NULL, *s8;
	int8_t *q8;
	int rc = get_weight(L, n, 4, shape, 0, &w, &q8, &s8);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
#define BN(var_, field) \
	snprintf(n, sizeof n, "%s.%s", bn_name, field); \
	if (!(var_ = get(L, n, 1, I(cout)))) goto out;
	BN(g, "weight") BN(bt, "bias") BN(mu, "running_mean") BN(var, "running_var")
#undef BN
	c->w = malloc((size_t)cout * k * k * cin * sizeof *c->w);
	c->b = malloc((size_t)cout * sizeof *c->b);
	if (q8) {
		c->q = malloc((size_t)cout * k * k * cin);
		c->qs = malloc((size_t)cout * sizeof *c->qs);
	}
	if (!c->w || !c->b || (q8 && (!c->q || !c->qs))) {
		rc = mmf_err_set(L->err, -ENOMEM, "out of memory for '%s'", conv_name);
		goto out;
	}
	for (int o = 0; o < cout; o++) {
		if (var[o] < 0) {
			rc = mmf_err_set(L->err, -EINVAL, "%s: tensor '%s.running_var' has a negative value %g at %d",
					 st_path(L->f), bn_name, var[o], o);
			goto out;
		}
		float s = g[o] / sqrtf(var[o] + BN_EPS);
		c->b[o] = bt[o] - mu[o] * s;
		/* int8: BN folds into the channel's scale, the values stay. */
		if (q8)
			c->qs[o] = s8[o] * s;
		for (int ky = 0; ky < k; ky++)
			for (int kx = 0; kx < k; kx++)
				for (int i = 0; i < cin; i++) {
					size_t d = (((size_t)o * k + ky) * k + kx) * cin + i, f = (((size_t)o * cin + i) * k + ky) * k + kx;
					if (q8) {
						c->q[d] = q8[f];
						c->w[d] = (float)q8[f] * c->qs[o];
					} else
						c->w[d] = w[f] * s;
				}
	}
	rc = 0;
out:
	if (rc < 0 && L->err && L->err->code < 0)
		rc = L->err->code;
	free(w), free(g), free(bt), free(mu), free(var), free(q8), free(s8);
	return rc;
}

static int load_linear(loader *L, clip_linear *l, const char *prefix, int in, int out, int bias)
{
	char n[256];
	l->in = in, l->out = out;
	snprintf(n, sizeof n, "%s.weight", prefix);
	const int64_t shape[2] = {out, in};
	int rc = get_weight(L, n, 2, shape, 0, &l->w, &l->q, &l->qs);
	if (rc < 0)
		return rc;
	if (bias) {
		snprintf(n, sizeof n, "%s.bias", prefix);
		if (!(l->b = get(L, n, 1, I(out))))
			return L->err ? L->err->code : -EINVAL;
	}
	return 0;
}

static const st_tensor *need(loader *L, const char *name, int ndim)
{
	const st_tensor *t = st_find(L->f, name);
	if (!t)
		mmf_err_set(L->err, -ENOENT, "%s: missing tensor '%s'", st_path(L->f), name);
	else if (t->ndim != ndim) {
		char sh[128];
		mmf_err_set(L->err, -EINVAL, "%s: tensor '%s' has shape %s, expected %d dimensions",
			    st_path(L->f), name, st_shape_str(t, sh, sizeof sh), ndim);
		t = NULL;
	}
	return t;
}

static int meta_int(loader *L, const char *key, int dflt, int *out)
{
	const char *v = st_metadata(L->f, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	char *end;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end || x <= 0 || x > 4096)
		return mmf_err_set(L->err, -EINVAL, "%s: metadata '%s' is '%s', expected a positive integer", st_path(L->f), key, v);
	*out = (int)x;
	return 0;
}

/* Infers the configuration from tensor shapes (and heads/activation from
 * mmf.* metadata when present, else open_clip's head width of 64). */
static int infer_config(loader *L, clip_config *c)
{
	const char *p = st_path(L->f);
	if (st_find(L->f, "visual.class_embedding") || st_find(L->f, "visual.transformer.resblocks.0.attn.in_proj_weight"))
		return mmf_err_set(L->err, -ENOTSUP, "%s: this is a ViT checkpoint (it has 'visual.class_embedding'); mmf supports the ModifiedResNet image tower (RN50, RN101, RN50x4, ...) only", p);
	if (st_find(L->f, "visual.trunk.stem.0.weight") || st_find(L->f, "visual.trunk.conv1.weight"))
		return mmf_err_set(L->err, -ENOTSUP, "%s: this checkpoint has a timm image tower ('visual.trunk.*'); mmf supports the ModifiedResNet image tower only", p);
	const st_tensor *t;
	if (!(t = need(L, "visual.conv1.weight", 4)))
		return L->err ? L->err->code : -EINVAL;
	if (t->shape[1] != 3 || t->shape[2] != 3 || t->shape[3] != 3 || t->shape[0] < 1) {
		char sh[128];
		return mmf_err_set(L->err, -EINVAL, "%s: tensor 'visual.conv1.weight' has shape %s, expected [width/2,3,3,3] (ModifiedResNet stem)", p, st_shape_str(t, sh, sizeof sh));
	}
	c->vision_width = (int)t->shape[0] * 2;
	for (int s = 0; s < 4; s++) {
		int n = 0;
		char name[128];
		for (;; n++) {
			snprintf(name, sizeof name, "visual.layer%d.%d.conv1.weight", s + 1, n);
			if (!st_find(L->f, name))
				break;
		}
		if (n == 0)
			return mmf_err_set(L->err, -ENOENT, "%s: missing tensor 'visual.layer%d.0.conv1.weight' (stage %d has no blocks)", p, s + 1, s + 1);
		c->vision_layers[s] = n;
	}
	int C = clip_vision_channels(c);
	if (!(t = need(L, "visual.attnpool.positional_embedding", 2)))
		return L->err ? L->err->code : -EINVAL;
	int64_t tokens = t->shape[0], g = (int64_t)llround(sqrt((double)(tokens - 1)));
	if (tokens < 2 || g * g + 1 != tokens || t->shape[1] != C) {
		char sh[128];
		return mmf_err_set(L->err, -EINVAL, "%s: tensor 'visual.attnpool.positional_embedding' has shape %s, expected [grid^2+1,%d]", p, st_shape_str(t, sh, sizeof sh), C);
	}
	c->image_size = (int)g * 32;
	if (!(t = need(L, "visual.attnpool.c_proj.weight", 2)))
		return L->err ? L->err->code : -EINVAL;
	c->embed_dim = (int)t->shape[0];
	int rc;
	if ((rc = meta_int(L, "mmf.vision_heads", C / 64 ? C / 64 : 1, &c->vision_heads)) < 0)
		return rc;
	if (C % c->vision_heads)
		return mmf_err_set(L->err, -EINVAL, "%s: %d vision heads do not divide the attention pool width %d", p, c->vision_heads, C);
	if (!(t = need(L, "token_embedding.weight", 2)))
		return L->err ? L->err->code : -EINVAL;
	c->vocab = (int)t->shape[0];
	c->text_width = (int)t->shape[1];
	if (!(t = need(L, "positional_embedding", 2)))
		return L->err ? L->err->code : -EINVAL;
	c->context = (int)t->shape[0];
	for (c->text_layers = 0;; c->text_layers++) {
		char name[128];
		snprintf(name, sizeof name, "transformer.resblocks.%d.attn.in_proj_weight", c->text_layers);
		if (!st_find(L->f, name))
			break;
	}
	if (c->text_layers == 0)
		return mmf_err_set(L->err, -ENOENT, "%s: missing tensor 'transformer.resblocks.0.attn.in_proj_weight' (no text transformer)", p);
	int W = c->text_width;
	if ((rc = meta_int(L, "mmf.text_heads", W / 64 ? W / 64 : 1, &c->text_heads)) < 0)
		return rc;
	if (W % c->text_heads)
		return mmf_err_set(L->err, -EINVAL, "%s: %d text heads do not divide the text width %d", p, c->text_heads, W);
	const char *act = st_metadata(L->f, "mmf.act");
	if (!act || strcmp(act, "quickgelu") == 0)
		c->quick_gelu = 1;
	else if (strcmp(act, "gelu") == 0)
		c->quick_gelu = 0;
	else
		return mmf_err_set(L->err, -EINVAL, "%s: metadata 'mmf.act' is '%s', expected 'quickgelu' or 'gelu'", p, act);
	if (c->vocab < 2 || c->context < 1 || W < 1 || c->embed_dim < 1)
		return mmf_err_set(L->err, -EINVAL, "%s: degenerate text tower (vocab %d, context %d, width %d, embed %d)", p, c->vocab, c->context, W, c->embed_dim);
	return 0;
}

const char *clip_config_str(const clip_config *c, char *buf, int len)
{
	snprintf(buf, (size_t)len,
		 "image %d, width %d, layers %d,%d,%d,%d, heads %d, embed %d; text %dx%d, heads %d, ctx %d, vocab %d, %s",
		 c->image_size, c->vision_width, c->vision_layers[0], c->vision_layers[1], c->vision_layers[2],
		 c->vision_layers[3], c->vision_heads, c->embed_dim, c->text_width, c->text_layers, c->text_heads,
		 c->context, c->vocab, c->quick_gelu ? "quickgelu" : "gelu");
	return buf;
}

static int load_vision(loader *L)
{
	clip_model *m = L->m;
	const clip_config *c = &m->cfg;
	int w = c->vision_width, rc;
	if ((rc = load_conv_bn(L, &m->stem[0], "visual.conv1", "visual.bn1", 3, w / 2, 3, 2)) < 0 ||
	    (rc = load_conv_bn(L, &m->stem[1], "visual.conv2", "visual.bn2", w / 2, w / 2, 3, 1)) < 0 ||
	    (rc = load_conv_bn(L, &m->stem[2], "visual.conv3", "visual.bn3", w / 2, w, 3, 1)) < 0)
		return rc;
	m->nblocks = c->vision_layers[0] + c->vision_layers[1] + c->vision_layers[2] + c->vision_layers[3];
	if (!(m->blocks = calloc((size_t)m->nblocks, sizeof *m->blocks)))
		return mmf_err_set(L->err, -ENOMEM, "out of memory");
	int inplanes = w, bi = 0;
	for (int s = 0; s < 4; s++) {
		int planes = w << s;
		for (int i = 0; i < c->vision_layers[s]; i++, bi++) {
			clip_block *b = &m->blocks[bi];
			b->stride = (s > 0 && i == 0) ? 2 : 1;
			b->has_down = b->stride > 1 || inplanes != planes * 4;
			char pc[96], pb[96];
#define CB(conv, idx, cin_, cout_, k_) \
	snprintf(pc, sizeof pc, "visual.layer%d.%d.conv%d", s + 1, i, idx); \
	snprintf(pb, sizeof pb, "visual.layer%d.%d.bn%d", s + 1, i, idx); \
	if ((rc = load_conv_bn(L, &b->conv, pc, pb, cin_, cout_, k_, 1)) < 0) return rc;
			CB(c1, 1, inplanes, planes, 1)
			CB(c2, 2, planes, planes, 3)
			CB(c3, 3, planes, planes * 4, 1)
#undef CB
			if (b->has_down) {
				snprintf(pc, sizeof pc, "visual.layer%d.%d.downsample.0", s + 1, i);
				snprintf(pb, sizeof pb, "visual.layer%d.%d.downsample.1", s + 1, i);
				if ((rc = load_conv_bn(L, &b->down, pc, pb, inplanes, planes * 4, 1, 1)) < 0)
					return rc;
			}
			inplanes = planes * 4;
		}
	}
	int C = clip_vision_channels(c), g = clip_grid(c);
	if (!(m->attn_pos = get(L, "visual.attnpool.positional_embedding", 2, I(g * g + 1), I(C))))
		return L->err ? L->err->code : -EINVAL;
	if ((rc = load_linear(L, &m->attn_q, "visual.attnpool.q_proj", C, C, 1)) < 0 ||
	    (rc = load_linear(L, &m->attn_k, "visual.attnpool.k_proj", C, C, 1)) < 0 ||
	    (rc = load_linear(L, &m->attn_v, "visual.attnpool.v_proj", C, C, 1)) < 0 ||
	    (rc = load_linear(L, &m->attn_c, "visual.attnpool.c_proj", C, c->embed_dim, 1)) < 0)
		return rc;
	return 0;
}

static int load_text(loader *L)
{
	clip_model *m = L->m;
	const clip_config *c = &m->cfg;
	int W = c->text_width, rc;
	if (!(m->tok_emb = get(L, "token_embedding.weight", 2, I(c->vocab), I(W))) ||
	    !(m->pos_emb = get(L, "positional_embedding", 2, I(c->context), I(W))))
		return L->err ? L->err->code : -EINVAL;
	if (!(m->layers = calloc((size_t)c->text_layers, sizeof *m->layers)))
		return mmf_err_set(L->err, -ENOMEM, "out of memory");
	for (int i = 0; i < c->text_layers; i++) {
		clip_text_layer *l = &m->layers[i];
		char n[128], p[96];
		snprintf(p, sizeof p, "transformer.resblocks.%d", i);
#define VEC(dst, suffix) \
	snprintf(n, sizeof n, "%s.%s", p, suffix); \
	if (!(l->dst = get(L, n, 1, I(W)))) return L->err ? L->err->code : -EINVAL;
		VEC(ln1_w, "ln_1.weight") VEC(ln1_b, "ln_1.bias") VEC(ln2_w, "ln_2.weight") VEC(ln2_b, "ln_2.bias")
#undef VEC
		l->qkv.in = W, l->qkv.out = 3 * W;
		snprintf(n, sizeof n, "%s.attn.in_proj_weight", p);
		const int64_t qkv_shape[2] = {3 * W, W};
		if ((rc = get_weight(L, n, 2, qkv_shape, 0, &l->qkv.w, &l->qkv.q, &l->qkv.qs)) < 0)
			return rc;
		snprintf(n, sizeof n, "%s.attn.in_proj_bias", p);
		if (!(l->qkv.b = get(L, n, 1, I(3 * W))))
			return L->err ? L->err->code : -EINVAL;
		char q[128];
		snprintf(q, sizeof q, "%s.attn.out_proj", p);
		if ((rc = load_linear(L, &l->out, q, W, W, 1)) < 0)
			return rc;
		snprintf(q, sizeof q, "%s.mlp.c_fc", p);
		if ((rc = load_linear(L, &l->fc, q, W, 4 * W, 1)) < 0)
			return rc;
		snprintf(q, sizeof q, "%s.mlp.c_proj", p);
		if ((rc = load_linear(L, &l->proj, q, 4 * W, W, 1)) < 0)
			return rc;
	}
	if (!(m->lnf_w = get(L, "ln_final.weight", 1, I(W))) || !(m->lnf_b = get(L, "ln_final.bias", 1, I(W))))
		return L->err ? L->err->code : -EINVAL;
	/* open_clip's text_projection is [W][embed] (x @ P): transposed into
	 * a linear [embed][W]; its output channel is the file's dimension 1. */
	const int64_t tp_shape[2] = {W, c->embed_dim};
	float *tp;
	int8_t *tq;
	clip_linear *P = &m->text_proj;
	P->in = W, P->out = c->embed_dim;
	if ((rc = get_weight(L, "text_projection", 2, tp_shape, 1, &tp, &tq, &P->qs)) < 0) {
		free(tp), free(tq);
		return rc;
	}
	P->w = malloc((size_t)W * c->embed_dim * sizeof *P->w);
	if (tq)
		P->q = malloc((size_t)W * c->embed_dim);
	if (!P->w || (tq && !P->q)) {
		free(tp), free(tq);
		return mmf_err_set(L->err, -ENOMEM, "out of memory");
	}
	for (int i = 0; i < W; i++)
		for (int e = 0; e < c->embed_dim; e++) {
			P->w[(size_t)e * W + i] = tp[(size_t)i * c->embed_dim + e];
			if (tq)
				P->q[(size_t)e * W + i] = tq[(size_t)i * c->embed_dim + e];
		}
	free(tp), free(tq);
	const st_tensor *ls = find_used(L, "logit_scale");
	if (!ls)
		return mmf_err_set(L->err, -ENOENT, "%s: missing tensor 'logit_scale'", st_path(L->f));
	if (ls->nelem != 1) {
		char sh[64];
		return mmf_err_set(L->err, -EINVAL, "%s: tensor 'logit_scale' has shape %s, expected a scalar", st_path(L->f), st_shape_str(ls, sh, sizeof sh));
	}
	if (st_tensor_read_f32(ls, &m->logit_scale) < 0 || !isfinite(m->logit_scale))
		return mmf_err_set(L->err, -EINVAL, "%s: tensor 'logit_scale' is not a finite float", st_path(L->f));
	return 0;
}

static int is_bn_counter(const char *name)
{
	const char *suf = ".num_batches_tracked";
	size_t n = strlen(name), s = strlen(suf);
	return n > s && strcmp(name + n - s, suf) == 0;
}

int clip_model_load(const char *path, clip_model **out, mmf_err *err) { return clip_model_load_q(path, 0, out, err); }

int clip_model_load_q(const char *path, int quantize, clip_model **out, mmf_err *err)
{
	*out = NULL;
	loader L = {.err = err, .quantize = quantize};
	int rc = st_open(path, &L.f, err);
	if (rc < 0)
		return rc;
	L.m = calloc(1, sizeof *L.m);
	L.used = calloc(st_count(L.f) + 1, 1);
	if (!L.m || !L.used || !(L.m->path = strdup(path))) {
		rc = mmf_err_set(err, -ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	if ((rc = infer_config(&L, &L.m->cfg)) < 0 || (rc = load_vision(&L)) < 0 || (rc = load_text(&L)) < 0)
		goto fail;
	for (size_t i = 0; i < st_count(L.f); i++) {
		const st_tensor *t = st_at(L.f, i);
		if (!L.used[i] && !is_bn_counter(t->name) && strcmp(t->name, "attn_mask") != 0) {
			rc = mmf_err_set(err, -EINVAL, "%s: unexpected tensor '%s' (not part of a CLIP ModifiedResNet model of this configuration)", path, t->name);
			goto fail;
		}
	}
	free(L.used);
	st_close(L.f);
	*out = L.m;
	return 0;
fail:
	free(L.used);
	st_close(L.f);
	clip_model_free(L.m);
	return rc;
}

static void conv_free(clip_conv *c)
{
	free(c->w);
	free(c->b);
	free(c->q);
	free(c->qs);
}

static void linear_free(clip_linear *l)
{
	free(l->w);
	free(l->b);
	free(l->q);
	free(l->qs);
}

void clip_model_free(clip_model *m)
{
	if (!m)
		return;
	for (int i = 0; i < 3; i++)
		conv_free(&m->stem[i]);
	for (int i = 0; m->blocks && i < m->nblocks; i++) {
		conv_free(&m->blocks[i].c1);
		conv_free(&m->blocks[i].c2);
		conv_free(&m->blocks[i].c3);
		conv_free(&m->blocks[i].down);
	}
	free(m->blocks);
	free(m->attn_pos);
	linear_free(&m->attn_q), linear_free(&m->attn_k), linear_free(&m->attn_v), linear_free(&m->attn_c);
	free(m->tok_emb);
	free(m->pos_emb);
	for (int i = 0; m->layers && i < m->cfg.text_layers; i++) {
		clip_text_layer *l = &m->layers[i];
		free(l->ln1_w), free(l->ln1_b), free(l->ln2_w), free(l->ln2_b);
		linear_free(&l->qkv), linear_free(&l->out), linear_free(&l->fc), linear_free(&l->proj);
	}
	free(m->layers);
	free(m->lnf_w);
	free(m->lnf_b);
	linear_free(&m->text_proj);
	free(m->path);
	free(m);
}

int clip_weights_parse(const char *s, clip_weights *out)
{
	static const char *names[] = {"auto", "fp16", "int8", "fp32"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (clip_weights)i;
			return 0;
		}
	return -EINVAL;
}

const char *clip_weights_name(clip_weights w)
{
	return w == CLIP_WEIGHTS_FP16 ? "fp16" : w == CLIP_WEIGHTS_INT8 ? "int8" : w == CLIP_WEIGHTS_FP32 ? "fp32" : "auto";
}

const char *clip_prec_name(int prec)
{
	return prec == CLIP_PREC_INT8 ? "int8" : prec == CLIP_PREC_FP32 ? "fp32" : "fp16";
}

int clip_model_load_w(const char *path, clip_weights w, clip_model **out, int *prec, mmf_err *err)
{
	int rc = clip_model_load_q(path, w == CLIP_WEIGHTS_INT8, out, err);
	if (rc < 0)
		return rc;
	*prec = w == CLIP_WEIGHTS_FP32 ? CLIP_PREC_FP32
		: w == CLIP_WEIGHTS_INT8 || (w == CLIP_WEIGHTS_AUTO && (*out)->nint8 > 0) ? CLIP_PREC_INT8
											: CLIP_PREC_FP16;
	return 0;
}
