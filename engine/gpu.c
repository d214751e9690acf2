/* CUDA backend: resident weights, one arena per (chain, batch), and a
 * launch record per op resolved at build time, so a run is a plain sequence
 * of kernel launches. */
#include "config.h"
#include "gpu.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/mmf_fuse.h"
#include "kernels/mmf_kernels.h"
#include "kernels/mmf_ops.h"
#include "safetensors.h"

#define CU(call, err, what)                                                                           \
	do {                                                                                          \
		cudaError_t e_ = (call);                                                              \
		if (e_ != cudaSuccess)                                                                \
			return mmf_err_set(err, -EIO, "%s: %s: %s", what, #call, cudaGetErrorString(e_)); \
	} while (0)

/* Device copies of one op's weights. */
typedef struct gpu_w {
	void *w;	/* fp16 (fp32 on a CLIP_PREC_FP32 model), or int8 when scale is set */
	float *scale;	/* int8 weights: fp32 per output channel */
	float *bias;	/* fp32 (GEMM ops) */
	void *hbias;	/* LayerNorm beta, as w */
	void *aux;	/* positional embedding, as w */
} gpu_w;

struct gpu_model {
	const chain *c[2];
	gpu_w *w[2];	/* per op of each chain */
	void *mem;	/* one allocation for all weights */
	size_t bytes;
	int prec;	/* CLIP_PREC_FP16, CLIP_PREC_INT8 or CLIP_PREC_FP32 */
	/* fp16-only lowerings, read once from the environment (on unless set
	 * to 0): MMF_POOL_FOLD (kernels/pool_fold.cuh), MMF_GEMV (kernels/gemv.cuh). */
	int pool_fold, gemv;
};

typedef struct gpu_launch {
	mmf_gemm g;	/* GEMM ops */
	int cfg;	/* -1: not a GEMM */
	mmf_opdesc d;	/* what is launched, plain or fused */
	int gemv;	/* a linear of at most 8 rows run as gemv.cuh (fp16; MMF_GEMV=0 turns it off) */
} gpu_launch;

/* Split-K candidates; more splits than this buys nothing measurable. */
static const int split_choices[] = {1, 2, 4, 8, 16};
#define WS_CAP ((long long)64 << 20)	/* workspace bytes one candidate may use */

struct gpu_tower {
	gpu_model *g;
	const chain *c;
	int ti;		/* 0 image, 1 text */
	int batch;
	char *arena;
	size_t arena_bytes;
	size_t *off;	/* per buffer */
	gpu_launch *l;	/* per op */
	void *host_in;	/* pinned staging for inputs */
	size_t host_in_bytes;
	float *ws;	/* split-K partials, shared by the tower's GEMMs (run in order) */
	int *counters;	/* split-K tickets, zero between launches */
	long long ws_bytes;
	int ncounters;
	/* fp16 (MMF_POOL_FOLD=0 turns it off): the attention pool's k/v linear and
	 * its attention, folded (kernels/pool_fold.cuh); -1 when not. */
	int fold_kv, fold_attn;
};

/* ------------------------------------------------------------ weights */

/* The stem's 3 input channels are padded to 8 so every GEMM row is whole
 * 16-byte chunks. */
static int conv_cin_pad(const op *o) { return o->cin % 8 ? (o->cin + 7) / 8 * 8 : o->cin; }

typedef struct wplan { size_t off_w, off_b, off_hb, off_aux, off_s; size_t n_w, n_b, n_hb, n_aux, n_s; } wplan;

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

/* Bytes of one activation or float weight element. */
static size_t elem_bytes(int prec) { return prec == CLIP_PREC_FP32 ? 4 : 2; }

static void plan_op(const clip_model *m, const op *o, int prec, wplan *p, size_t *cursor)
{
	memset(p, 0, sizeof *p);
	const size_t fs = elem_bytes(prec);
	size_t es = prec == CLIP_PREC_INT8 && o->wq ? 1 : fs;	/* bytes per conv/linear weight */
	switch (o->kind) {
	case OP_CONV:
		p->n_w = es == 1 ? (size_t)o->cout * mmf_gemm_int8_ldb(o->k * o->k * conv_cin_pad(o))
				 : (size_t)o->cout * o->k * o->k * conv_cin_pad(o) * es;
		p->n_b = (size_t)o->cout * 4;
		p->n_s = es == 1 ? (size_t)o->cout * 4 : 0;
		break;
	case OP_LINEAR:
		p->n_w = es == 1 ? (size_t)o->n * mmf_gemm_int8_ldb(o->k_in) : (size_t)o->n * o->k_in * es;
		p->n_b = o->bias ? (size_t)o->n * 4 : 0;
		p->n_s = es == 1 ? (size_t)o->n * 4 : 0;
		break;
	case OP_LAYERNORM:
		p->n_w = (size_t)o->width * fs;
		p->n_hb = (size_t)o->width * fs;
		break;
	case OP_EMBED:
		p->n_w = (size_t)m->cfg.vocab * o->width * fs;
		p->n_aux = (size_t)o->tokens * o->width * fs;
		break;
	case OP_POOL_TOKENS:
		p->n_aux = (size_t)o->tokens * o->width * fs;
		break;
	default:
		break;
	}
	size_t *offs[5] = {&p->off_w, &p->off_b, &p->off_hb, &p->off_aux, &p->off_s},
	       ns[5] = {p->n_w, p->n_b, p->n_hb, p->n_aux, p->n_s};
	for (int i = 0; i < 5; i++)
		if (ns[i]) {
			*offs[i] = *cursor;
			*cursor = align256(*cursor + ns[i]);
		}
}

/* n floats into element i.. of dst, as fp16 or fp32 (f32). */
static void put(void *dst, size_t i, const float *src, size_t n, int f32)
{
	if (f32)
		memcpy((float *)dst + i, src, n * sizeof(float));
	else
		for (size_t k = 0; k < n; k++)
			((uint16_t *)dst)[i + k] = mmf_float_to_half(src[k]);
}

/* Fills the host image of op o's weights at base (laid out by p). */
static int fill_op(const clip_model *m, const op *o, const wplan *p, int prec, char *base)
{
	const int f32 = prec == CLIP_PREC_FP32;
	static const float zero = 0.f;
	switch (o->kind) {
	case OP_CONV: {
		int cp = conv_cin_pad(o), K = o->k * o->k * cp;
		void *w = base + p->off_w;
		int8_t *q = p->n_s ? malloc((size_t)o->cout * K) : NULL;	/* cin padded, before packing */
		if (p->n_s && !q)
			return -ENOMEM;
		for (int co = 0; co < o->cout; co++)
			for (int t = 0; t < o->k * o->k; t++)
				for (int ci = 0; ci < cp; ci++) {
					size_t d = ((size_t)co * o->k * o->k + t) * cp + ci, s = ((size_t)co * o->k * o->k + t) * o->cin + ci;
					if (q)
						q[d] = ci < o->cin ? o->wq[s] : 0;
					else
						put(w, d, ci < o->cin ? &o->wt[s] : &zero, 1, f32);
				}
		if (q) {
			mmf_gemm_pack_int8(q, o->cout, K, (uint8_t *)(base + p->off_w));
			memcpy(base + p->off_s, o->wqs, p->n_s);
			free(q);
		}
		memcpy(base + p->off_b, o->bias, p->n_b);
		break;
	}
	case OP_LINEAR:
		if (p->n_s) {
			mmf_gemm_pack_int8(o->wq, o->n, o->k_in, (uint8_t *)(base + p->off_w));
			memcpy(base + p->off_s, o->wqs, p->n_s);
		} else
			put(base + p->off_w, 0, o->wt, (size_t)o->n * o->k_in, f32);
		if (p->n_b)
			memcpy(base + p->off_b, o->bias, p->n_b);
		break;
	case OP_LAYERNORM:
		put(base + p->off_w, 0, o->wt, (size_t)o->width, f32);
		put(base + p->off_hb, 0, o->bias, (size_t)o->width, f32);
		break;
	case OP_EMBED:
		put(base + p->off_w, 0, o->wt, (size_t)m->cfg.vocab * o->width, f32);
		put(base + p->off_aux, 0, o->aux, (size_t)o->tokens * o->width, f32);
		break;
	case OP_POOL_TOKENS:
		put(base + p->off_aux, 0, o->aux, (size_t)o->tokens * o->width, f32);
		break;
	default:
		break;
	}
	return 0;
}

/* An on/off switch from the environment: unset, empty or "1" on, "0" off;
 * anything else is an error naming the variable. */
static int env_switch(const char *name, int *on, mmf_err *err)
{
	const char *v = getenv(name);
	if (!v || !*v || !strcmp(v, "1")) {
		*on = 1;
		return 0;
	}
	if (!strcmp(v, "0")) {
		*on = 0;
		return 0;
	}
	return mmf_err_set(err, -EINVAL, "gpu: %s='%s': expected 0 (off) or 1 (on, the default)", name, v);
}

int gpu_model_new(const chain *img, const chain *txt, int prec, gpu_model **out, mmf_err *err)
{
	*out = NULL;
	gpu_model *g = calloc(1, sizeof *g);
	wplan *plans[2] = {NULL, NULL};
	char *host = NULL;
	int rc = -ENOMEM;
	if (!g)
		return mmf_err_set(err, -ENOMEM, "gpu: out of memory");
	if (prec != CLIP_PREC_FP16 && prec != CLIP_PREC_INT8 && prec != CLIP_PREC_FP32) {
		free(g);
		return mmf_err_set(err, -EINVAL, "gpu: unknown precision %d", prec);
	}
	g->c[0] = img, g->c[1] = txt;
	g->prec = prec;
	/* The switches the environment may turn off (for comparison), each 0
	 * or 1: a typo must not leave a default on without a word. */
	int pdl, cluster, fold, gemv;
	if ((rc = env_switch("MMF_PDL", &pdl, err)) < 0 || (rc = env_switch("MMF_CLUSTER", &cluster, err)) < 0 ||
	    (rc = env_switch("MMF_POOL_FOLD", &fold, err)) < 0 || (rc = env_switch("MMF_GEMV", &gemv, err)) < 0) {
		free(g);
		return rc;
	}
	/* Programmatic dependent launch and split-K through thread-block
	 * clusters where the device has them (MMF_CLUSTER=0 keeps the global
	 * ticket). */
	int dev = 0;
	struct cudaDeviceProp prop;
	if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
		mmf_set_pdl(prop.major >= 9 && pdl);
		mmf_set_cluster(prop.major >= 9 && cluster);
	}
	/* fp16 lowerings for batch-1 latency (MMF_POOL_FOLD, MMF_GEMV). */
	g->pool_fold = prec == CLIP_PREC_FP16 && fold;
	g->gemv = prec == CLIP_PREC_FP16 && gemv;
	/* The kernels move 8 channels per 16-byte access; only the image input
	 * is padded (3 -> 8), so every other convolution needs multiples of 8,
	 * which all OpenAI CLIP ResNets have (stem width/2 >= 32). */
	for (int i = 0; i < img->nops; i++) {
		const op *o = &img->ops[i];
		if (o->kind == OP_CONV && ((o->in != img->in && o->cin % 8) || o->cout % 8)) {
			free(g);
			return mmf_err_set(err, -ENOTSUP, "gpu: convolution '%s' has %d input and %d output channels; the GPU kernels need multiples of 8 (a vision width that is a multiple of 16)",
					   o->name, o->cin, o->cout);
		}
	}
	size_t cursor = 0;
	for (int t = 0; t < 2; t++) {
		plans[t] = calloc((size_t)g->c[t]->nops, sizeof **plans);
		g->w[t] = calloc((size_t)g->c[t]->nops, sizeof **g->w);
		if (!plans[t] || !g->w[t])
			goto fail;
		for (int i = 0; i < g->c[t]->nops; i++)
			plan_op(img->model, &g->c[t]->ops[i], prec, &plans[t][i], &cursor);
	}
	g->bytes = cursor;
	if (!(host = malloc(cursor ? cursor : 1)))
		goto fail;
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < g->c[t]->nops; i++)
			if (fill_op(img->model, &g->c[t]->ops[i], &plans[t][i], prec, host) < 0)
				goto fail;
	cudaError_t e = cudaMalloc(&g->mem, cursor ? cursor : 1);
	if (e != cudaSuccess) {
		rc = mmf_err_set(err, -ENOMEM, "gpu: cannot allocate %.1f MB for the weights: %s", cursor / 1e6, cudaGetErrorString(e));
		goto fail;
	}
	if ((e = cudaMemcpy(g->mem, host, cursor, cudaMemcpyHostToDevice)) != cudaSuccess) {
		rc = mmf_err_set(err, -EIO, "gpu: uploading the weights: %s", cudaGetErrorString(e));
		goto fail;
	}
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < g->c[t]->nops; i++) {
			wplan *p = &plans[t][i];
			gpu_w *w = &g->w[t][i];
			char *b = g->mem;
			w->w = p->n_w ? b + p->off_w : NULL;
			w->bias = p->n_b ? (float *)(b + p->off_b) : NULL;
			w->hbias = p->n_hb ? b + p->off_hb : NULL;
			w->aux = p->n_aux ? b + p->off_aux : NULL;
			w->scale = p->n_s ? (float *)(b + p->off_s) : NULL;
		}
	free(plans[0]), free(plans[1]), free(host);
	*out = g;
	return 0;
fail:
	if (rc == -ENOMEM && (!err || err->code != -ENOMEM))
		mmf_err_set(err, -ENOMEM, "gpu: out of host memory preparing the weights");
	free(plans[0]), free(plans[1]), free(host);
	gpu_model_free(g);
	return rc;
}

void gpu_model_free(gpu_model *g)
{
	if (!g)
		return;
	cudaFree(g->mem);
	free(g->w[0]);
	free(g->w[1]);
	free(g);
}

size_t gpu_model_bytes(const gpu_model *g) { return g->bytes; }

int gpu_model_precision(const gpu_model *g) { return g->prec; }
int gpu_model_pool_fold(const gpu_model *g) { return g->pool_fold; }
int gpu_model_gemv(const gpu_model *g) { return g->gemv; }

int gpu_model_int8(const gpu_model *g)
{
	int n = 0;
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < g->c[t]->nops; i++)
			n += g->w[t][i].scale != NULL;
	return n;
}

/* ------------------------------------------------------------ towers */

static int op_desc(gpu_tower *t, int i, mmf_opdesc *d);

static size_t buf_bytes(const gpu_tower *t, int b)
{
	const chain *c = t->c;
	if (b == c->in && c->tower == TOWER_IMAGE) {
		int S = c->model->cfg.image_size;
		return (size_t)S * S * 8 * elem_bytes(t->g->prec) * t->batch;	/* NHWC, channels padded to 8 */
	}
	if (c->bufs[b].is_int || b == c->out)
		return (size_t)c->bufs[b].elems * 4 * t->batch;
	return (size_t)c->bufs[b].elems * elem_bytes(t->g->prec) * t->batch;
}

static void *bufp(const gpu_tower *t, int b) { return t->arena + t->off[b]; }

static void gemm_record(gpu_tower *t, int i, mmf_gemm *g)
{
	const op *o = &t->c->ops[i];
	const gpu_w *w = &t->g->w[t->ti][i];
	memset(g, 0, sizeof *g);
	g->A = bufp(t, o->in);
	g->B = w->w;
	g->bscale = w->scale;
	g->f32 = t->g->prec == CLIP_PREC_FP32;
	g->bias = w->bias;
	g->R = o->in2 >= 0 ? bufp(t, o->in2) : NULL;
	g->C = bufp(t, o->out);
	g->act = o->act == ACT_RELU ? 1 : o->act == ACT_QUICKGELU ? 2 : o->act == ACT_GELU ? 3 : 0;
	if (o->kind == OP_CONV) {
		int cp = conv_cin_pad(o);
		g->conv = 1;
		g->M = t->batch * o->oh * o->ow, g->N = o->cout, g->K = o->k * o->k * cp;
		g->h = o->h, g->w = o->w, g->cin = cp, g->kh = g->kw = o->k;
		g->stride = o->stride, g->pad = o->pad, g->oh = o->oh, g->ow = o->ow;
	} else {
		g->M = t->batch * o->m, g->N = o->n, g->K = o->k_in;
		g->rps = o->m, g->lda = o->k_in, g->sstride = o->in_sample_stride;
	}
}

/* Whether (cfg, splits) is worth trying: splitting only when the output
 * tiles alone leave SMs idle, at least 4 k-slices per split, and a bounded
 * workspace. */
static int candidate(const mmf_gemm *g0, int cfg, int splits, int sms, mmf_gemm *g)
{
	*g = *g0;
	g->splits = splits;
	int tiles, th, sm, cnt;
	long long ws;
	if (mmf_gemm_info(g, cfg, &tiles, &th, &sm) < 0 || mmf_gemm_workspace(g, cfg, &ws, &cnt) < 0)
		return 0;
	int kt = (g->K + 31) / 32;
	if (splits > 1 && (tiles / splits >= 2 * sms || kt / splits < 4 || ws > WS_CAP))
		return 0;
	return 1;
}

/* Heuristic when not tuning: the configuration with the fewest waves of
 * (tile area / efficiency), then the fewest splits that give each SM a tile. */
static void gemm_pick(const mmf_gemm *g0, int sms, int *cfg, int *splits)
{
	static const double eff[MMF_GEMM_NCFG] = {1.0, 0.75, 0.55, 0.9, 0.7};
	static const int per_sm[MMF_GEMM_NCFG] = {1, 3, 4, 2, 2};
	static const double area[MMF_GEMM_NCFG] = {128 * 128, 64 * 64, 32 * 64, 128 * 64, 128 * 32};
	double best_t = INFINITY;
	*cfg = MMF_GEMM_M, *splits = 1;
	for (int c = 0; c < MMF_GEMM_NCFG; c++)
		for (size_t k = 0; k < sizeof split_choices / sizeof *split_choices; k++) {
			mmf_gemm g;
			int tiles, th, sm;
			if (!candidate(g0, c, split_choices[k], sms, &g) || mmf_gemm_info(&g, c, &tiles, &th, &sm) < 0)
				continue;
			double waves = ceil((double)tiles / (sms * per_sm[c]));
			double t = waves * area[c] / eff[c] * per_sm[c] / split_choices[k] * (1 + 0.1 * k);
			if (t < best_t)
				best_t = t, *cfg = c, *splits = split_choices[k];
		}
}

static int ensure_ws(gpu_tower *t, long long bytes, int counters, mmf_err *err)
{
	if (bytes > t->ws_bytes) {
		cudaFree(t->ws);
		t->ws = NULL;
		CU(cudaMalloc((void **)&t->ws, (size_t)bytes), err, "gpu split-K workspace");
		t->ws_bytes = bytes;
	}
	if (counters > t->ncounters) {
		cudaFree(t->counters);
		t->counters = NULL;
		CU(cudaMalloc((void **)&t->counters, (size_t)counters * sizeof(int)), err, "gpu split-K counters");
		CU(cudaMemset(t->counters, 0, (size_t)counters * sizeof(int)), err, "gpu split-K counters");
		t->ncounters = counters;
	}
	return 0;
}

/* Whether t runs its attention pool folded (gpu_model_pool_fold): sets
 * fold_kv to the k/v linear (which then computes the folded query,
 * kernels/pool_fold.cuh, into its own output buffer) and fold_attn to the
 * attention (which then applies the v weights itself). */
static void pool_fold_find(gpu_tower *t)
{
	const chain *c = t->c;
	t->fold_kv = t->fold_attn = -1;
	if (!t->g->pool_fold)
		return;
	for (int i = 0; i < c->nops; i++) {
		const op *a = &c->ops[i];
		if (a->kind != OP_ATTN_POOL)
			continue;
		for (int k = 0; k < i; k++) {
			const op *kv = &c->ops[k];
			const gpu_w *w = &t->g->w[t->ti][k];
			if (kv->kind != OP_LINEAR || kv->out != a->in2 || !w->w || w->scale ||
			    buf_bytes(t, kv->out) < (size_t)t->batch * a->heads * a->width * sizeof(float))
				continue;
			t->fold_kv = k, t->fold_attn = i;
			return;
		}
	}
}

/* Times every candidate (cfg, splits) of one GEMM on stream s. */
static int gemm_tune(gpu_tower *t, const mmf_gemm *g0, int sms, cudaStream_t s, int *cfg, int *splits, mmf_err *err)
{
	cudaEvent_t a, b;
	CU(cudaEventCreate(&a), err, "gpu tune");
	CU(cudaEventCreate(&b), err, "gpu tune");
	float best = INFINITY;
	int rc = 0;
	for (int c = 0; c < MMF_GEMM_NCFG && rc == 0; c++)
		for (size_t k = 0; k < sizeof split_choices / sizeof *split_choices && rc == 0; k++) {
			mmf_gemm g;
			long long ws;
			int cnt;
			float ms = 0;
			if (!candidate(g0, c, split_choices[k], sms, &g))
				continue;
			if (mmf_gemm_workspace(&g, c, &ws, &cnt) < 0 || (rc = ensure_ws(t, ws, cnt, err)) < 0)
				break;
			g.ws = t->ws, g.counters = t->counters;
			for (int r = 0; r < 2 && rc == 0; r++)	/* warm-up */
				rc = mmf_gemm_f16(&g, c, 0, (mmf_stream)s);
			/* The best of three samples of 5 launches: one sample let
			 * noise pick a different, sometimes worse, shape in 5 to 18
			 * of the GEMMs from one run to the next (H100, whole GPU:
			 * the two-stream time spread 0.70-0.74 ms; bench/results/
			 * tuner-spread-h100-2026-11-26.json). */
			ms = INFINITY;
			for (int sample = 0; sample < 3 && rc == 0; sample++) {
				float m = 0;
				cudaEventRecord(a, s);
				for (int r = 0; r < 5 && rc == 0; r++)
					rc = mmf_gemm_f16(&g, c, 0, (mmf_stream)s);
				cudaEventRecord(b, s);
				if (rc < 0 || cudaEventSynchronize(b) != cudaSuccess) {
					rc = rc < 0 ? rc : -EIO;
					break;
				}
				cudaEventElapsedTime(&m, a, b);
				ms = m < ms ? m : ms;
			}
			if (rc < 0) {
				rc = mmf_err_set(err, -EIO, "gpu: tuning GEMM configuration %d x %d splits failed", c, split_choices[k]);
				break;
			}
			if (ms < best * 0.97f)	/* prefer the earlier (fewer splits) within noise */
				best = ms, *cfg = c, *splits = split_choices[k];
		}
	cudaEventDestroy(a), cudaEventDestroy(b);
	return rc;
}

int gpu_tower_new(gpu_model *g, const chain *c, int batch, int sms, cudaStream_t tune, gpu_tower **out, mmf_err *err)
{
	*out = NULL;
	if (batch < 1)
		return mmf_err_set(err, -EINVAL, "gpu: batch %d, expected >= 1", batch);
	gpu_tower *t = calloc(1, sizeof *t);
	if (!t)
		return mmf_err_set(err, -ENOMEM, "gpu: out of memory");
	t->g = g, t->c = c, t->batch = batch, t->ti = c == g->c[0] ? 0 : 1;
	int rc = -ENOMEM;
	t->off = calloc((size_t)c->nbufs, sizeof *t->off);
	t->l = calloc((size_t)c->nops, sizeof *t->l);
	if (!t->off || !t->l)
		goto fail;
	size_t cursor = 0;
	for (int b = 0; b < c->nbufs; b++) {
		t->off[b] = cursor;
		cursor = align256(cursor + buf_bytes(t, b));
	}
	t->arena_bytes = cursor;
	cudaError_t e = cudaMalloc((void **)&t->arena, cursor);
	if (e != cudaSuccess) {
		rc = mmf_err_set(err, -ENOMEM, "gpu: cannot allocate a %.1f MB arena for the %s tower at batch %d: %s",
				 cursor / 1e6, tower_name(c->tower), batch, cudaGetErrorString(e));
		goto fail;
	}
	/* Zero once: the padding channels of the image input stay zero. */
	if ((e = cudaMemset(t->arena, 0, cursor)) != cudaSuccess) {
		rc = mmf_err_set(err, -EIO, "gpu: clearing the arena: %s", cudaGetErrorString(e));
		goto fail;
	}
	t->host_in_bytes = buf_bytes(t, c->in);
	if ((e = cudaMallocHost(&t->host_in, t->host_in_bytes)) != cudaSuccess) {
		rc = mmf_err_set(err, -ENOMEM, "gpu: cannot allocate %zu pinned bytes: %s", t->host_in_bytes, cudaGetErrorString(e));
		goto fail;
	}
	memset(t->host_in, 0, t->host_in_bytes);
	pool_fold_find(t);
	for (int i = 0; i < c->nops; i++) {
		const op *o = &c->ops[i];
		t->l[i].cfg = -1;
		if ((o->kind != OP_CONV && o->kind != OP_LINEAR) || i == t->fold_kv)
			continue;
		gemm_record(t, i, &t->l[i].g);
		if (g->gemv && !t->l[i].g.conv && !t->l[i].g.bscale && t->l[i].g.M <= 8) {	/* the matrix-vector tile */
			t->l[i].gemv = 1;
			continue;
		}
		int cfg, splits;
		gemm_pick(&t->l[i].g, sms, &cfg, &splits);
		if (tune && (rc = gemm_tune(t, &t->l[i].g, sms, tune, &cfg, &splits, err)) < 0)
			goto fail;
		t->l[i].cfg = cfg;
		t->l[i].g.splits = splits;
	}
	/* One workspace for the tower's GEMMs, which run one after another. */
	long long need = 0;
	int ncnt = 0;
	for (int i = 0; i < c->nops; i++) {
		long long ws;
		int cnt;
		if (t->l[i].cfg < 0 || mmf_gemm_workspace(&t->l[i].g, t->l[i].cfg, &ws, &cnt) < 0)
			continue;
		need = ws > need ? ws : need;
		ncnt = cnt > ncnt ? cnt : ncnt;
	}
	if ((rc = ensure_ws(t, need, ncnt, err)) < 0)
		goto fail;
	for (int i = 0; i < c->nops; i++)
		if (t->l[i].cfg >= 0)
			t->l[i].g.ws = t->ws, t->l[i].g.counters = t->counters;
	for (int i = 0; i < c->nops; i++)
		if ((rc = op_desc(t, i, &t->l[i].d)) < 0) {
			rc = mmf_err_set(err, -EINVAL, "gpu: the %s tower's op %d (%s) does not fit the kernels' preconditions",
					 tower_name(c->tower), i, c->ops[i].name);
			goto fail;
		}
	*out = t;
	return 0;
fail:
	if (rc == -ENOMEM && (!err || err->code != -ENOMEM))
		mmf_err_set(err, -ENOMEM, "gpu: out of memory building the %s tower", tower_name(c->tower));
	gpu_tower_free(t);
	return rc;
}

void gpu_tower_free(gpu_tower *t)
{
	if (!t)
		return;
	cudaFree(t->arena);
	cudaFree(t->ws);
	cudaFree(t->counters);
	cudaFreeHost(t->host_in);
	free(t->off);
	free(t->l);
	free(t);
}

int gpu_tower_gemm_choices(const gpu_tower *t, int i, int sms, int *cfg, int *splits, int max)
{
	int n = 0;
	if (i < 0 || i >= t->c->nops || t->l[i].cfg < 0)
		return 0;
	for (int c = 0; c < MMF_GEMM_NCFG; c++)
		for (size_t k = 0; k < sizeof split_choices / sizeof *split_choices; k++) {
			mmf_gemm g;
			if (n < max && candidate(&t->l[i].g, c, split_choices[k], sms, &g))
				cfg[n] = c, splits[n++] = split_choices[k];
		}
	return n;
}

int gpu_tower_set_gemm(gpu_tower *t, int i, int cfg, int splits, mmf_err *err)
{
	if (i < 0 || i >= t->c->nops || t->l[i].cfg < 0)
		return mmf_err_set(err, -EINVAL, "gpu: op %d of the %s tower is not a GEMM", i, tower_name(t->c->tower));
	mmf_gemm g = t->l[i].g;
	g.splits = splits;
	long long ws;
	int cnt, tiles, th, sm, rc;
	if (cfg < 0 || cfg >= MMF_GEMM_NCFG || splits < 1 || mmf_gemm_info(&g, cfg, &tiles, &th, &sm) < 0 ||
	    mmf_gemm_workspace(&g, cfg, &ws, &cnt) < 0)
		return mmf_err_set(err, -EINVAL, "gpu: op %d (%s): GEMM configuration %d with %d splits does not fit", i,
				   t->c->ops[i].name, cfg, splits);
	const float *ws0 = t->ws;
	const int *cnt0 = t->counters;
	if ((rc = ensure_ws(t, ws, cnt, err)) < 0)
		return rc;
	const int moved = t->ws != ws0 || t->counters != cnt0;
	t->l[i].g = g, t->l[i].cfg = cfg;
	/* A grown workspace moves: every GEMM's descriptor points at it. The
	 * descriptor takes the checks mmf_gemm_info made above, so it cannot
	 * fail here for a shape that got this far. */
	for (int j = 0; j < t->c->nops; j++)
		if (t->l[j].cfg >= 0 && (j == i || moved)) {
			t->l[j].g.ws = t->ws, t->l[j].g.counters = t->counters;
			if ((rc = op_desc(t, j, &t->l[j].d)) < 0)
				return mmf_err_set(err, rc, "gpu: op %d (%s): no descriptor for GEMM configuration %d with %d splits",
						   j, t->c->ops[j].name, t->l[j].cfg, t->l[j].g.splits);
		}
	return 0;
}

size_t gpu_tower_bytes(const gpu_tower *t) { return t->arena_bytes; }
const void *gpu_tower_op_output(const gpu_tower *t, int i) { return bufp(t, t->c->ops[i].out); }
const void *gpu_tower_buf(const gpu_tower *t, int b) { return bufp(t, b); }
int gpu_tower_op_cfg(const gpu_tower *t, int i) { return t->l[i].cfg; }
int gpu_tower_op_splits(const gpu_tower *t, int i) { return t->l[i].cfg >= 0 ? t->l[i].g.splits : 0; }
const chain *gpu_tower_chain(const gpu_tower *t) { return t->c; }

int gpu_tower_set_image(gpu_tower *t, const float *px, int n, cudaStream_t s, mmf_err *err)
{
	const chain *c = t->c;
	if (c->tower != TOWER_IMAGE)
		return mmf_err_set(err, -EINVAL, "gpu: the %s tower takes no image", tower_name(c->tower));
	if (n < 1 || n > t->batch)
		return mmf_err_set(err, -EINVAL, "gpu: %d images for a tower of batch %d", n, t->batch);
	int S = c->model->cfg.image_size, f32 = t->g->prec == CLIP_PREC_FP32;
	/* A stream's previous upload must have left the staging buffer. */
	CU(cudaStreamSynchronize(s), err, "gpu set image");
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < 3; ch++)
			for (int p = 0; p < S * S; p++) {
				const float *v = &px[((size_t)i * 3 + ch) * S * S + p];
				if (!isfinite(*v))
					return mmf_err_set(err, -EINVAL, "image %d: pixel %d of channel %d is not finite", i, p, ch);
				put(t->host_in, ((size_t)i * S * S + p) * 8 + ch, v, 1, f32);
			}
	CU(cudaMemcpyAsync(bufp(t, c->in), t->host_in, (size_t)n * S * S * 8 * elem_bytes(t->g->prec), cudaMemcpyHostToDevice, s),
	   err, "gpu set image");
	return 0;
}

int gpu_tower_set_text(gpu_tower *t, const int32_t *tok, int n, cudaStream_t s, mmf_err *err)
{
	const chain *c = t->c;
	if (c->tower != TOWER_TEXT)
		return mmf_err_set(err, -EINVAL, "gpu: the %s tower takes no text", tower_name(c->tower));
	if (n < 1 || n > t->batch)
		return mmf_err_set(err, -EINVAL, "gpu: %d texts for a tower of batch %d", n, t->batch);
	const clip_config *cfg = &c->model->cfg;
	int T = cfg->context;
	for (int64_t i = 0; i < (int64_t)n * T; i++)
		if (tok[i] < 0 || tok[i] >= cfg->vocab)
			return mmf_err_set(err, -EINVAL, "text %d: token %d at position %d is out of the vocabulary [0,%d)",
					   (int)(i / T), tok[i], (int)(i % T), cfg->vocab);
	CU(cudaStreamSynchronize(s), err, "gpu set text");
	memcpy(t->host_in, tok, (size_t)n * T * 4);
	CU(cudaMemcpyAsync(bufp(t, c->in), t->host_in, (size_t)n * T * 4, cudaMemcpyHostToDevice, s), err, "gpu set text");
	return 0;
}

/* The descriptor of op i as the mmf_*_desc functions make it. */
static int op_desc_elem(gpu_tower *t, int i, mmf_opdesc *d);

/* The descriptor of op i, resolved once when the tower is built: fp16, or
 * the fp32 form on a CLIP_PREC_FP32 model. */
static int op_desc(gpu_tower *t, int i, mmf_opdesc *d)
{
	int rc = op_desc_elem(t, i, d);
	if (rc == 0 && t->g->prec == CLIP_PREC_FP32)
		rc = mmf_op_set_f32(d);
	return rc;
}

static int op_desc_elem(gpu_tower *t, int i, mmf_opdesc *d)
{
	const op *o = &t->c->ops[i];
	const gpu_w *w = &t->g->w[t->ti][i];
	int B = t->batch;
	void *in = bufp(t, o->in), *out = bufp(t, o->out);
	if (i == t->fold_kv) {
		const op *a = &t->c->ops[t->fold_attn];
		return mmf_pool_qk_desc(bufp(t, a->in), w->w, (float *)out, B, a->width, a->heads, d);
	}
	if (i == t->fold_attn) {
		const op *kv = &t->c->ops[t->fold_kv];
		const gpu_w *wkv = &t->g->w[t->ti][t->fold_kv];
		const size_t C = (size_t)o->width;
		const void *x = bufp(t, kv->in), *wv = (const char *)wkv->w + C * C * 2;
		const float *qt = (const float *)bufp(t, kv->out), *bv = wkv->bias ? wkv->bias + C : NULL;
		return mmf_pool_fold_desc(x, qt, wv, bv, out, B, o->tokens, o->width, o->heads, d);
	}
	if (t->l[i].gemv)
		return mmf_gemv_desc(&t->l[i].g, d);
	switch (o->kind) {
	case OP_CONV:
	case OP_LINEAR:
		return mmf_gemm_desc(&t->l[i].g, t->l[i].cfg, d);
	case OP_AVGPOOL:
		return mmf_avgpool2_desc(in, out, B, o->h, o->w, o->cin, d);
	case OP_POOL_TOKENS:
		return mmf_pool_tokens_desc(in, out, w->aux, B, o->tokens - 1, o->width, d);
	case OP_ATTN_POOL:
		return mmf_attn_pool_desc(in, bufp(t, o->in2), out, B, o->tokens, o->width, o->heads, d);
	case OP_EMBED:
		return mmf_embed_desc(in, out, w->w, w->aux, B, o->tokens, o->width, t->c->model->cfg.vocab, d);
	case OP_LAYERNORM:
		return mmf_layernorm_desc(in, out, w->w, w->hbias, B * o->tokens, o->width, d);
	case OP_ATTN:
		return mmf_attn_causal_desc(in, out, B, o->tokens, o->width, o->heads, d);
	case OP_EOT_GATHER:
		return mmf_eot_gather_desc(in, bufp(t, o->in2), out, B, o->tokens, o->width, d);
	case OP_L2NORM:
		return mmf_l2norm_desc(in, out, B * o->tokens, o->width, d);
	default:
		return -EINVAL;
	}
}

int gpu_tower_enqueue_op(gpu_tower *t, int i, cudaStream_t s)
{
	return mmf_op_launch(&t->l[i].d, (mmf_stream)s);
}

const mmf_opdesc *gpu_tower_desc(const gpu_tower *t, int i) { return &t->l[i].d; }
int gpu_tower_nops(const gpu_tower *t) { return t->c->nops; }
int gpu_tower_batch(const gpu_tower *t) { return t->batch; }

/* Op i on s, saying which op failed to launch. */
static int enqueue_reported(gpu_tower *t, int i, cudaStream_t s)
{
	int rc = gpu_tower_enqueue_op(t, i, s);
	if (rc < 0)
		fprintf(stderr, "gpu: %s tower op %d (%s) failed to launch: %d\n", tower_name(t->c->tower), i,
			t->c->ops[i].name, rc);
	return rc;
}

int gpu_towers_enqueue2(gpu_tower *img, gpu_tower *txt, cudaStream_t s0, cudaStream_t s1, cudaEvent_t fork,
			cudaEvent_t join, const cudaEvent_t *ends)
{
	int rc;
	if (cudaEventRecord(fork, s0) != cudaSuccess || cudaStreamWaitEvent(s1, fork, 0) != cudaSuccess)
		return -EIO;
	const int ni = img->c->nops, nt = txt->c->nops;
	for (int k = 0; k < ni + nt; k++) {
		int t, i;
		chain_turn(ni, nt, k, &t, &i);
		if ((rc = enqueue_reported(t ? txt : img, i, t ? s1 : s0)) < 0)
			return rc;
	}
	if (ends && (cudaEventRecordWithFlags(ends[0], s0, cudaEventRecordExternal) != cudaSuccess ||
		     cudaEventRecordWithFlags(ends[1], s1, cudaEventRecordExternal) != cudaSuccess))
		return -EIO;
	if (cudaEventRecord(join, s1) != cudaSuccess || cudaStreamWaitEvent(s0, join, 0) != cudaSuccess)
		return -EIO;
	return 0;
}

int gpu_tower_enqueue(gpu_tower *t, cudaStream_t s)
{
	for (int i = 0; i < t->c->nops; i++) {
		int rc = enqueue_reported(t, i, s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int gpu_tower_get_output(gpu_tower *t, float *emb, int n, cudaStream_t s, mmf_err *err)
{
	int E = t->c->model->cfg.embed_dim;
	CU(cudaMemcpyAsync(emb, bufp(t, t->c->out), (size_t)n * E * 4, cudaMemcpyDeviceToHost, s), err, "gpu output");
	CU(cudaStreamSynchronize(s), err, "gpu output");
	return 0;
}
