/* Lowers the two CLIP towers to op chains. The lowering follows open_clip's
 * forward exactly; the epilogues (bias, ReLU, residual, QuickGELU) fold into
 * the conv or linear they follow. */
#include "config.h"
#include "chain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_names[op_kind_max] = {
	[OP_CONV] = "conv", [OP_AVGPOOL] = "avgpool", [OP_POOL_TOKENS] = "pool_tokens",
	[OP_LINEAR] = "linear", [OP_ATTN_POOL] = "attn_pool", [OP_EMBED] = "embed",
	[OP_LAYERNORM] = "layernorm", [OP_ATTN] = "attn", [OP_EOT_GATHER] = "eot_gather",
	[OP_L2NORM] = "l2norm",
};

const char *op_kind_name(op_kind k) { return k < op_kind_max ? kind_names[k] : "?"; }
const char *tower_name(tower t) { return t == TOWER_IMAGE ? "image" : t == TOWER_TEXT ? "text" : "?"; }

static int new_buf(chain *c, int64_t elems, int is_int)
{
	if (c->nbufs == c->bcap) {
		int cap = c->bcap ? 2 * c->bcap : 64;
		chain_buf *b = realloc(c->bufs, (size_t)cap * sizeof *b);
		if (!b)
			return -ENOMEM;
		c->bufs = b;
		c->bcap = cap;
	}
	c->bufs[c->nbufs] = (chain_buf){.elems = elems, .is_int = is_int};
	return c->nbufs++;
}

/* Appends an op named by fmt; returns it zeroed but for kind, name and
 * in2 = -1, or NULL when out of memory. */
__attribute__((format(printf, 3, 4)))
static op *add(chain *c, op_kind kind, const char *fmt, ...)
{
	if (c->nops == c->cap) {
		int cap = c->cap ? 2 * c->cap : 128;
		op *o = realloc(c->ops, (size_t)cap * sizeof *o);
		if (!o)
			return NULL;
		c->ops = o;
		c->cap = cap;
	}
	op *o = &c->ops[c->nops++];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->in2 = -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->name, sizeof o->name, fmt, ap);
	va_end(ap);
	return o;
}

typedef struct fmap { int buf, h, w, c; } fmap;

static int conv(chain *c, const clip_conv *cv, fmap *x, int residual, op_act act, const char *name)
{
	op *o = add(c, OP_CONV, "%s", name);
	if (!o)
		return -ENOMEM;
	o->h = x->h, o->w = x->w, o->cin = cv->cin, o->cout = cv->cout;
	o->k = cv->k, o->stride = cv->stride, o->pad = cv->pad;
	o->oh = (x->h + 2 * cv->pad - cv->k) / cv->stride + 1;
	o->ow = (x->w + 2 * cv->pad - cv->k) / cv->stride + 1;
	o->wt = cv->w, o->bias = cv->b, o->act = act;
	o->wq = cv->q, o->wqs = cv->qs;
	o->in = x->buf, o->in2 = residual;
	o->w_elems = (int64_t)cv->cout * cv->k * cv->k * cv->cin + cv->cout;
	o->out_elems = (int64_t)o->oh * o->ow * o->cout;
	o->in_elems = (int64_t)o->h * o->w * o->cin + (residual >= 0 ? o->out_elems : 0);
	o->flops = 2.0 * o->oh * o->ow * o->cout * o->k * o->k * o->cin;
	int b = new_buf(c, o->out_elems, 0);
	if (b < 0)
		return b;
	c->ops[c->nops - 1].out = b;
	*x = (fmap){b, c->ops[c->nops - 1].oh, c->ops[c->nops - 1].ow, cv->cout};
	return 0;
}

static int avgpool(chain *c, fmap *x, const char *name)
{
	op *o = add(c, OP_AVGPOOL, "%s", name);
	if (!o)
		return -ENOMEM;
	o->h = x->h, o->w = x->w, o->cin = o->cout = x->c, o->k = 2, o->stride = 2;
	o->oh = x->h / 2, o->ow = x->w / 2;
	o->in = x->buf;
	o->in_elems = (int64_t)x->h * x->w * x->c;
	o->out_elems = (int64_t)o->oh * o->ow * x->c;
	o->flops = (double)o->in_elems;
	int b = new_buf(c, o->out_elems, 0);
	if (b < 0)
		return b;
	c->ops[c->nops - 1].out = b;
	*x = (fmap){b, x->h / 2, x->w / 2, x->c};
	return 0;
}

/* y = x W^T + b over m rows per sample. Returns the output buffer id. */
static int linear(chain *c, const char *name, int in, int64_t in_stride, int m, int k, int n,
		  const clip_linear *L, int residual, op_act act)
{
	op *o = add(c, OP_LINEAR, "%s", name);
	if (!o)
		return -ENOMEM;
	o->in = in, o->in2 = residual, o->m = m, o->k_in = k, o->n = n;
	o->in_sample_stride = in_stride;
	o->wt = L->w, o->bias = L->b, o->act = act;
	o->wq = L->q, o->wqs = L->qs;
	o->w_elems = (int64_t)n * k + (L->b ? n : 0);
	o->out_elems = (int64_t)m * n;
	o->in_elems = (int64_t)m * k + (residual >= 0 ? o->out_elems : 0);
	o->flops = 2.0 * m * n * k;
	int b = new_buf(c, o->out_elems, 0);
	if (b < 0)
		return b;
	c->ops[c->nops - 1].out = b;
	return b;
}

static int rowop(chain *c, op_kind kind, const char *name, int in, int tokens, int width,
		 const float *g, const float *bias)
{
	op *o = add(c, kind, "%s", name);
	if (!o)
		return -ENOMEM;
	o->in = in, o->tokens = tokens, o->width = width, o->wt = g, o->bias = bias;
	o->w_elems = g ? 2 * width : 0;
	o->in_elems = o->out_elems = (int64_t)tokens * width;
	o->flops = 8.0 * tokens * width;
	int b = new_buf(c, o->out_elems, 0);
	if (b < 0)
		return b;
	c->ops[c->nops - 1].out = b;
	return b;
}

#define TRY(x) do { int rc_ = (x); if (rc_ < 0) return rc_; } while (0)
#define TRYB(var, x) do { var = (x); if (var < 0) return var; } while (0)

static int build_image(chain *c, const clip_model *m)
{
	const clip_config *cfg = &m->cfg;
	int S = cfg->image_size;
	TRYB(c->in, new_buf(c, (int64_t)S * S * 3, 0));
	fmap x = {c->in, S, S, 3};
	TRY(conv(c, &m->stem[0], &x, -1, ACT_RELU, "stem.conv1"));
	TRY(conv(c, &m->stem[1], &x, -1, ACT_RELU, "stem.conv2"));
	TRY(conv(c, &m->stem[2], &x, -1, ACT_RELU, "stem.conv3"));
	TRY(avgpool(c, &x, "stem.avgpool"));
	for (int s = 0, bi = 0; s < 4; s++)
		for (int i = 0; i < cfg->vision_layers[s]; i++, bi++) {
			const clip_block *b = &m->blocks[bi];
			char n[40];
			fmap id = x, y = x;
			snprintf(n, sizeof n, "layer%d.%d.conv1", s + 1, i);
			TRY(conv(c, &b->c1, &y, -1, ACT_RELU, n));
			snprintf(n, sizeof n, "layer%d.%d.conv2", s + 1, i);
			TRY(conv(c, &b->c2, &y, -1, ACT_RELU, n));
			if (b->stride > 1) {
				snprintf(n, sizeof n, "layer%d.%d.avgpool", s + 1, i);
				TRY(avgpool(c, &y, n));
			}
			if (b->has_down) {
				if (b->stride > 1) {
					snprintf(n, sizeof n, "layer%d.%d.down.avgpool", s + 1, i);
					TRY(avgpool(c, &id, n));
				}
				snprintf(n, sizeof n, "layer%d.%d.down.conv", s + 1, i);
				TRY(conv(c, &b->down, &id, -1, ACT_NONE, n));
			}
			snprintf(n, sizeof n, "layer%d.%d.conv3", s + 1, i);
			TRY(conv(c, &b->c3, &y, id.buf, ACT_RELU, n));
			x = y;
		}
	/* Attention pool: tokens = [mean, HW...] + positional; q from token 0,
	 * k and v from all tokens (one linear with the two weights stacked). */
	int C = x.c, T = x.h * x.w + 1, E = cfg->embed_dim, H = cfg->vision_heads;
	op *o = add(c, OP_POOL_TOKENS, "attnpool.tokens");
	if (!o)
		return -ENOMEM;
	o->in = x.buf, o->tokens = T, o->width = C, o->aux = m->attn_pos;
	o->w_elems = (int64_t)T * C;
	o->in_elems = (int64_t)(T - 1) * C, o->out_elems = (int64_t)T * C;
	o->flops = 2.0 * T * C;
	int tok;
	TRYB(tok, new_buf(c, o->out_elems, 0));
	c->ops[c->nops - 1].out = tok;
	clip_linear *kvl = &c->kv;
	kvl->in = C, kvl->out = 2 * C;
	kvl->w = malloc((size_t)2 * C * C * sizeof *kvl->w);
	kvl->b = malloc((size_t)2 * C * sizeof *kvl->b);
	if (!kvl->w || !kvl->b)
		return -ENOMEM;
	memcpy(kvl->w, m->attn_k.w, (size_t)C * C * sizeof *kvl->w);
	memcpy(kvl->w + (size_t)C * C, m->attn_v.w, (size_t)C * C * sizeof *kvl->w);
	memcpy(kvl->b, m->attn_k.b, (size_t)C * sizeof *kvl->b);
	memcpy(kvl->b + C, m->attn_v.b, (size_t)C * sizeof *kvl->b);
	if (m->attn_k.q && m->attn_v.q) {	/* int8 only when both are */
		kvl->q = malloc((size_t)2 * C * C);
		kvl->qs = malloc((size_t)2 * C * sizeof *kvl->qs);
		if (!kvl->q || !kvl->qs)
			return -ENOMEM;
		memcpy(kvl->q, m->attn_k.q, (size_t)C * C);
		memcpy(kvl->q + (size_t)C * C, m->attn_v.q, (size_t)C * C);
		memcpy(kvl->qs, m->attn_k.qs, (size_t)C * sizeof *kvl->qs);
		memcpy(kvl->qs + C, m->attn_v.qs, (size_t)C * sizeof *kvl->qs);
	}
	int q, kv, a, e;
	TRYB(q, linear(c, "attnpool.q", tok, (int64_t)T * C, 1, C, C, &m->attn_q, -1, ACT_NONE));
	TRYB(kv, linear(c, "attnpool.kv", tok, (int64_t)T * C, T, C, 2 * C, kvl, -1, ACT_NONE));
	if (!(o = add(c, OP_ATTN_POOL, "attnpool.attn")))
		return -ENOMEM;
	o->in = q, o->in2 = kv, o->tokens = T, o->width = C, o->heads = H;
	o->in_elems = (int64_t)C + 2LL * T * C, o->out_elems = C;
	o->flops = 4.0 * T * C;
	TRYB(a, new_buf(c, C, 0));
	c->ops[c->nops - 1].out = a;
	TRYB(e, linear(c, "attnpool.c_proj", a, C, 1, C, E, &m->attn_c, -1, ACT_NONE));
	TRYB(c->out, rowop(c, OP_L2NORM, "normalize", e, 1, E, NULL, NULL));
	return 0;
}

static int build_text(chain *c, const clip_model *m)
{
	const clip_config *cfg = &m->cfg;
	int T = cfg->context, W = cfg->text_width, E = cfg->embed_dim;
	op_act act = cfg->quick_gelu ? ACT_QUICKGELU : ACT_GELU;
	TRYB(c->in, new_buf(c, T, 1));
	op *o = add(c, OP_EMBED, "embed");
	if (!o)
		return -ENOMEM;
	o->in = c->in, o->tokens = T, o->width = W, o->wt = m->tok_emb, o->aux = m->pos_emb;
	o->w_elems = (int64_t)T * W * 2;	/* the rows gathered plus positions */
	o->in_elems = T, o->out_elems = (int64_t)T * W;
	o->flops = (double)T * W;
	int x;
	TRYB(x, new_buf(c, (int64_t)T * W, 0));
	c->ops[c->nops - 1].out = x;
	for (int i = 0; i < cfg->text_layers; i++) {
		const clip_text_layer *l = &m->layers[i];
		char n[40];
		int h, qkv, att, x2, f;
		snprintf(n, sizeof n, "block%d.ln_1", i);
		TRYB(h, rowop(c, OP_LAYERNORM, n, x, T, W, l->ln1_w, l->ln1_b));
		snprintf(n, sizeof n, "block%d.attn.qkv", i);
		TRYB(qkv, linear(c, n, h, (int64_t)T * W, T, W, 3 * W, &l->qkv, -1, ACT_NONE));
		snprintf(n, sizeof n, "block%d.attn", i);
		if (!(o = add(c, OP_ATTN, "%s", n)))
			return -ENOMEM;
		o->in = qkv, o->tokens = T, o->width = W, o->heads = cfg->text_heads;
		o->in_elems = 3LL * T * W, o->out_elems = (int64_t)T * W;
		o->flops = 4.0 * W * (T * (T + 1) / 2.0);	/* QK^T and PV under the causal mask */
		TRYB(att, new_buf(c, (int64_t)T * W, 0));
		c->ops[c->nops - 1].out = att;
		snprintf(n, sizeof n, "block%d.attn.out", i);
		TRYB(x2, linear(c, n, att, (int64_t)T * W, T, W, W, &l->out, x, ACT_NONE));
		snprintf(n, sizeof n, "block%d.ln_2", i);
		TRYB(h, rowop(c, OP_LAYERNORM, n, x2, T, W, l->ln2_w, l->ln2_b));
		snprintf(n, sizeof n, "block%d.mlp.fc", i);
		TRYB(f, linear(c, n, h, (int64_t)T * W, T, W, 4 * W, &l->fc, -1, act));
		snprintf(n, sizeof n, "block%d.mlp.proj", i);
		TRYB(x, linear(c, n, f, 4LL * T * W, T, 4 * W, W, &l->proj, x2, ACT_NONE));
	}
	/* LayerNorm is per row, so gathering the EOT row first is exact and
	 * saves T-1 rows of work. */
	int g, ln, p;
	if (!(o = add(c, OP_EOT_GATHER, "eot_gather")))
		return -ENOMEM;
	o->in = x, o->in2 = c->in, o->tokens = T, o->width = W;
	o->in_elems = T + W, o->out_elems = W;
	TRYB(g, new_buf(c, W, 0));
	c->ops[c->nops - 1].out = g;
	TRYB(ln, rowop(c, OP_LAYERNORM, "ln_final", g, 1, W, m->lnf_w, m->lnf_b));
	TRYB(p, linear(c, "text_projection", ln, W, 1, W, E, &m->text_proj, -1, ACT_NONE));
	TRYB(c->out, rowop(c, OP_L2NORM, "normalize", p, 1, E, NULL, NULL));
	return 0;
}

int chain_build(const clip_model *m, tower t, chain **out, mmf_err *err)
{
	*out = NULL;
	chain *c = calloc(1, sizeof *c);
	if (!c)
		return mmf_err_set(err, -ENOMEM, "out of memory building the %s chain", tower_name(t));
	c->tower = t;
	c->model = m;
	int rc = t == TOWER_IMAGE ? build_image(c, m) : build_text(c, m);
	if (rc < 0) {
		chain_free(c);
		return mmf_err_set(err, rc, "out of memory building the %s chain", tower_name(t));
	}
	*out = c;
	return 0;
}

void chain_free(chain *c)
{
	if (!c)
		return;
	free(c->ops);
	free(c->bufs);
	free(c->kv.w), free(c->kv.b), free(c->kv.q), free(c->kv.qs);
	free(c);
}

double op_bytes(const op *o, int batch, int elem_size)
{
	/* Token ids are 4 bytes whatever the activation precision. */
	double in = (double)o->in_elems * elem_size;
	if (o->kind == OP_EMBED)
		in = (double)o->in_elems * 4;
	return (in + (double)o->out_elems * elem_size) * batch + (double)o->w_elems * elem_size;
}

double chain_flops(const chain *c)
{
	double f = 0;
	for (int i = 0; i < c->nops; i++)
		f += c->ops[i].flops;
	return f;
}

double chain_bytes(const chain *c, int batch, int elem_size)
{
	double b = 0;
	for (int i = 0; i < c->nops; i++)
		b += op_bytes(&c->ops[i], batch, elem_size);
	return b;
}

static const char *act_name(op_act a)
{
	static const char *n[op_act_max] = {"", "+relu", "+quickgelu", "+gelu"};
	return a < op_act_max ? n[a] : "?";
}

void chain_print(const chain *c, FILE *fp, int batch, int elem_size)
{
	fprintf(fp, "%s tower: %d ops, batch %d, bytes at %d B/element\n", tower_name(c->tower), c->nops, batch, elem_size);
	fprintf(fp, "%4s  %-26s %-18s %-30s %10s %10s %8s\n", "#", "op", "kind", "shape", "MFLOP", "KB", "FLOP/B");
	for (int i = 0; i < c->nops; i++) {
		const op *o = &c->ops[i];
		char shape[64], kind[32];
		snprintf(kind, sizeof kind, "%s%s%s", op_kind_name(o->kind), o->in2 >= 0 && (o->kind == OP_CONV || o->kind == OP_LINEAR) ? "+res" : "", act_name(o->act));
		switch (o->kind) {
		case OP_CONV:
			snprintf(shape, sizeof shape, "%dx%dx%d -> %dx%dx%d k%d s%d", o->h, o->w, o->cin, o->oh, o->ow, o->cout, o->k, o->stride);
			break;
		case OP_AVGPOOL:
			snprintf(shape, sizeof shape, "%dx%dx%d -> %dx%dx%d", o->h, o->w, o->cin, o->oh, o->ow, o->cout);
			break;
		case OP_LINEAR:
			snprintf(shape, sizeof shape, "[%d,%d] x [%d,%d]^T", o->m, o->k_in, o->n, o->k_in);
			break;
		case OP_ATTN:
		case OP_ATTN_POOL:
			snprintf(shape, sizeof shape, "T %d, W %d, heads %d", o->tokens, o->width, o->heads);
			break;
		default:
			snprintf(shape, sizeof shape, "[%d,%d]", o->tokens, o->width);
		}
		double by = op_bytes(o, batch, elem_size), fl = o->flops * batch;
		fprintf(fp, "%4d  %-26s %-18s %-30s %10.2f %10.1f %8.1f\n", i, o->name, kind, shape, fl / 1e6, by / 1e3, by > 0 ? fl / by : 0);
	}
	double f = chain_flops(c) * batch, b = chain_bytes(c, batch, elem_size);
	fprintf(fp, "      %-26s %-18s %-30s %10.2f %10.1f %8.1f\n", "total", "", "", f / 1e6, b / 1e3, b > 0 ? f / b : 0);
}
