/* float32 CPU backend. Layouts as in chain.h: NHWC activations, OHWI conv
 * weights, [out][in] linear weights. GEMMs go to OpenBLAS (which brings its
 * own threads); the loops around them use OpenMP. */
#include "config.h"
#include "cpu.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct cpu_engine {
	const chain *c;
	int max_batch;
	float **bufs;
	float *scratch;
	cpu_op_hook hook;
	void *hook_ud;
};

/* One thread pool: OpenMP's. OpenBLAS runs single-threaded inside our
 * parallel regions; with its own pthread pool as well, each pool's idle
 * threads spin on the cores the other needs (measured: 2.6x slower on two
 * cores). */
void cpu_set_threads(int n)
{
	openblas_set_num_threads(1);
#ifdef _OPENMP
	if (n <= 0)
		n = omp_get_num_procs();
	omp_set_num_threads(n);
#else
	(void)n;
#endif
}

/* C[M][N] = A[M][K] . B[N][K]^T (row-major, lda/ldc strides), split over the
 * OpenMP threads by rows of C (or by columns when there are few rows). */
static void sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, float *C, int ldc)
{
#ifdef _OPENMP
	int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
#else
	int nt = 1;
#endif
	if (nt <= 1 || (int64_t)M * N * K < (1 << 18)) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, K, 0.0f, C, ldc);
		return;
	}
	int by_rows = M >= 4 * nt;
	int total = by_rows ? M : N;
#pragma omp parallel for schedule(static) num_threads(nt)
	for (int t = 0; t < nt; t++) {
		int lo = (int)((int64_t)total * t / nt), hi = (int)((int64_t)total * (t + 1) / nt);
		if (hi <= lo)
			continue;
		if (by_rows)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, N, K, 1.0f, A + (int64_t)lo * lda, lda,
				    B, K, 0.0f, C + (int64_t)lo * ldc, ldc);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, hi - lo, K, 1.0f, A, lda,
				    B + (int64_t)lo * K, K, 0.0f, C + lo, ldc);
	}
}

int64_t cpu_op_scratch(const op *o)
{
	if (o->kind == OP_CONV && !(o->k == 1 && o->stride == 1))
		return (int64_t)o->oh * o->ow * o->k * o->k * o->cin;
	return 0;
}

static float act(op_act a, float x)
{
	switch (a) {
	case ACT_RELU:
		return x > 0 ? x : 0;
	case ACT_QUICKGELU:
		return x / (1.0f + expf(-1.702f * x));
	case ACT_GELU:
		return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
	default:
		return x;
	}
}

/* y[rows][n] += bias, += residual, then activation. */
static void epilogue(float *y, int64_t rows, int n, const float *bias, const float *res, op_act a)
{
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < rows; r++) {
		float *yr = y + r * n;
		const float *rr = res ? res + r * n : NULL;
		for (int j = 0; j < n; j++) {
			float v = yr[j] + (bias ? bias[j] : 0.0f);
			if (rr)
				v += rr[j];
			yr[j] = act(a, v);
		}
	}
}

static void im2col(const op *o, const float *x, float *col)
{
	int K = o->k * o->k * o->cin;
#pragma omp parallel for schedule(static)
	for (int oy = 0; oy < o->oh; oy++)
		for (int ox = 0; ox < o->ow; ox++) {
			float *dst = col + ((int64_t)oy * o->ow + ox) * K;
			for (int ky = 0; ky < o->k; ky++) {
				int iy = oy * o->stride - o->pad + ky;
				for (int kx = 0; kx < o->k; kx++, dst += o->cin) {
					int ix = ox * o->stride - o->pad + kx;
					if (iy < 0 || iy >= o->h || ix < 0 || ix >= o->w)
						memset(dst, 0, (size_t)o->cin * sizeof *dst);
					else
						memcpy(dst, x + ((int64_t)iy * o->w + ix) * o->cin, (size_t)o->cin * sizeof *dst);
				}
			}
		}
}

static void run_conv(const op *o, float *const *bufs, int batch, float *scratch)
{
	const float *x = bufs[o->in];
	float *y = bufs[o->out];
	const float *res = o->in2 >= 0 ? bufs[o->in2] : NULL;
	int K = o->k * o->k * o->cin;
	int64_t in_n = (int64_t)o->h * o->w * o->cin, out_rows = (int64_t)o->oh * o->ow;
	if (o->k == 1 && o->stride == 1) {
		sgemm_nt((int)(batch * out_rows), o->cout, K, x, K, o->wt, y, o->cout);
	} else {
		for (int s = 0; s < batch; s++) {
			im2col(o, x + s * in_n, scratch);
			sgemm_nt((int)out_rows, o->cout, K, scratch, K, o->wt, y + s * out_rows * o->cout, o->cout);
		}
	}
	epilogue(y, batch * out_rows, o->cout, o->bias, res, o->act);
}

static void run_avgpool(const op *o, float *const *bufs, int batch)
{
	const float *x = bufs[o->in];
	float *y = bufs[o->out];
	int C = o->cin;
#pragma omp parallel for collapse(2) schedule(static)
	for (int s = 0; s < batch; s++)
		for (int oy = 0; oy < o->oh; oy++)
			for (int ox = 0; ox < o->ow; ox++) {
				const float *a = x + (((int64_t)s * o->h + 2 * oy) * o->w + 2 * ox) * C;
				const float *b = a + (int64_t)o->w * C;
				float *d = y + (((int64_t)s * o->oh + oy) * o->ow + ox) * C;
				for (int c = 0; c < C; c++)
					d[c] = 0.25f * (a[c] + a[C + c] + b[c] + b[C + c]);
			}
}

static void run_pool_tokens(const op *o, float *const *bufs, int batch)
{
	int T = o->tokens, C = o->width;
	for (int s = 0; s < batch; s++) {
		const float *x = bufs[o->in] + (int64_t)s * (T - 1) * C;
		float *y = bufs[o->out] + (int64_t)s * T * C;
#pragma omp parallel for schedule(static)
		for (int c = 0; c < C; c++) {
			double sum = 0;
			for (int t = 0; t < T - 1; t++)
				sum += x[(int64_t)t * C + c];
			y[c] = (float)(sum / (T - 1)) + o->aux[c];
			for (int t = 1; t < T; t++)
				y[(int64_t)t * C + c] = x[(int64_t)(t - 1) * C + c] + o->aux[(int64_t)t * C + c];
		}
	}
}

static void run_linear(const op *o, float *const *bufs, int batch)
{
	const float *x = bufs[o->in];
	float *y = bufs[o->out];
	const float *res = o->in2 >= 0 ? bufs[o->in2] : NULL;
	int64_t contiguous = (int64_t)o->m * o->k_in;
	if (o->in_sample_stride == contiguous)
		sgemm_nt(batch * o->m, o->n, o->k_in, x, o->k_in, o->wt, y, o->n);
	else if (o->m == 1)	/* one row per sample at a stride: lda does it */
		sgemm_nt(batch, o->n, o->k_in, x, (int)o->in_sample_stride, o->wt, y, o->n);
	else
		for (int s = 0; s < batch; s++)
			sgemm_nt(o->m, o->n, o->k_in, x + s * o->in_sample_stride, o->k_in, o->wt,
				 y + (int64_t)s * o->m * o->n, o->n);
	epilogue(y, (int64_t)batch * o->m, o->n, o->bias, res, o->act);
}

/* Softmax-weighted sum for one query row q against keys/values with row
 * strides; the scores array holds n floats. */
static void attend(const float *q, const float *k, const float *v, int64_t kv_stride, int n, int dh,
		   float scale, float *scores, float *out)
{
	float mx = -INFINITY;
	for (int j = 0; j < n; j++) {
		const float *kj = k + j * kv_stride;
		float d = 0;
		for (int t = 0; t < dh; t++)
			d += q[t] * kj[t];
		scores[j] = d * scale;
		if (scores[j] > mx)
			mx = scores[j];
	}
	float sum = 0;
	for (int j = 0; j < n; j++) {
		scores[j] = expf(scores[j] - mx);
		sum += scores[j];
	}
	for (int t = 0; t < dh; t++)
		out[t] = 0;
	for (int j = 0; j < n; j++) {
		const float *vj = v + j * kv_stride;
		float p = scores[j] / sum;
		for (int t = 0; t < dh; t++)
			out[t] += p * vj[t];
	}
}

static void run_attn(const op *o, float *const *bufs, int batch)
{
	int T = o->tokens, W = o->width, H = o->heads, dh = W / H;
	float scale = 1.0f / sqrtf((float)dh);
#pragma omp parallel
	{
		float *scores = malloc((size_t)T * sizeof *scores);
#pragma omp for collapse(3) schedule(static)
		for (int s = 0; s < batch; s++)
			for (int h = 0; h < H; h++)
				for (int i = 0; i < T; i++) {
					const float *qkv = bufs[o->in] + (int64_t)s * T * 3 * W;
					const float *q = qkv + (int64_t)i * 3 * W + h * dh;
					attend(q, qkv + W + h * dh, qkv + 2 * W + h * dh, 3 * W, i + 1, dh, scale, scores,
					       bufs[o->out] + ((int64_t)s * T + i) * W + h * dh);
				}
		free(scores);
	}
}

static void run_attn_pool(const op *o, float *const *bufs, int batch)
{
	int T = o->tokens, C = o->width, H = o->heads, dh = C / H;
	float scale = 1.0f / sqrtf((float)dh);
#pragma omp parallel
	{
		float *scores = malloc((size_t)T * sizeof *scores);
#pragma omp for collapse(2) schedule(static)
		for (int s = 0; s < batch; s++)
			for (int h = 0; h < H; h++) {
				const float *kv = bufs[o->in2] + (int64_t)s * T * 2 * C;
				attend(bufs[o->in] + (int64_t)s * C + h * dh, kv + h * dh, kv + C + h * dh, 2 * C, T, dh,
				       scale, scores, bufs[o->out] + (int64_t)s * C + h * dh);
			}
		free(scores);
	}
}

static void run_embed(const op *o, float *const *bufs, int batch)
{
	const int32_t *ids = (const int32_t *)bufs[o->in];
	int T = o->tokens, W = o->width;
#pragma omp parallel for collapse(2) schedule(static)
	for (int s = 0; s < batch; s++)
		for (int t = 0; t < T; t++) {
			const float *e = o->wt + (int64_t)ids[(int64_t)s * T + t] * W, *p = o->aux + (int64_t)t * W;
			float *y = bufs[o->out] + ((int64_t)s * T + t) * W;
			for (int j = 0; j < W; j++)
				y[j] = e[j] + p[j];
		}
}

static void run_layernorm(const op *o, float *const *bufs, int batch)
{
	int W = o->width;
	int64_t rows = (int64_t)batch * o->tokens;
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < rows; r++) {
		const float *x = bufs[o->in] + r * W;
		float *y = bufs[o->out] + r * W;
		double mean = 0, var = 0;
		for (int j = 0; j < W; j++)
			mean += x[j];
		mean /= W;
		for (int j = 0; j < W; j++)
			var += (x[j] - mean) * (x[j] - mean);
		var /= W;
		float inv = (float)(1.0 / sqrt(var + 1e-5));
		for (int j = 0; j < W; j++)
			y[j] = (float)(x[j] - mean) * inv * o->wt[j] + o->bias[j];
	}
}

static void run_eot_gather(const op *o, float *const *bufs, int batch)
{
	const int32_t *ids = (const int32_t *)bufs[o->in2];
	int T = o->tokens, W = o->width;
	for (int s = 0; s < batch; s++) {
		int best = 0;	/* torch.argmax: the first maximal index */
		for (int t = 1; t < T; t++)
			if (ids[(int64_t)s * T + t] > ids[(int64_t)s * T + best])
				best = t;
		memcpy(bufs[o->out] + (int64_t)s * W, bufs[o->in] + ((int64_t)s * T + best) * W, (size_t)W * sizeof(float));
	}
}

static void run_l2norm(const op *o, float *const *bufs, int batch)
{
	int W = o->width;
	int64_t rows = (int64_t)batch * o->tokens;
	for (int64_t r = 0; r < rows; r++) {
		const float *x = bufs[o->in] + r * W;
		float *y = bufs[o->out] + r * W;
		double ss = 0;
		for (int j = 0; j < W; j++)
			ss += (double)x[j] * x[j];
		double n = sqrt(ss);
		float inv = (float)(1.0 / (n > 1e-12 ? n : 1e-12));	/* F.normalize's eps */
		for (int j = 0; j < W; j++)
			y[j] = x[j] * inv;
	}
}

void cpu_op_run(const op *o, float *const *bufs, int batch, float *scratch)
{
	switch (o->kind) {
	case OP_CONV: run_conv(o, bufs, batch, scratch); break;
	case OP_AVGPOOL: run_avgpool(o, bufs, batch); break;
	case OP_POOL_TOKENS: run_pool_tokens(o, bufs, batch); break;
	case OP_LINEAR: run_linear(o, bufs, batch); break;
	case OP_ATTN_POOL: run_attn_pool(o, bufs, batch); break;
	case OP_EMBED: run_embed(o, bufs, batch); break;
	case OP_LAYERNORM: run_layernorm(o, bufs, batch); break;
	case OP_ATTN: run_attn(o, bufs, batch); break;
	case OP_EOT_GATHER: run_eot_gather(o, bufs, batch); break;
	case OP_L2NORM: run_l2norm(o, bufs, batch); break;
	default: break;
	}
}

void cpu_engine_free(cpu_engine *e)
{
	if (!e)
		return;
	for (int i = 0; e->bufs && i < e->c->nbufs; i++)
		free(e->bufs[i]);
	free(e->bufs);
	free(e->scratch);
	free(e);
}

int cpu_engine_new(const chain *c, int max_batch, cpu_engine **out, mmf_err *err)
{
	*out = NULL;
	if (max_batch < 1)
		return mmf_err_set(err, -EINVAL, "cpu engine: max batch %d, expected >= 1", max_batch);
	cpu_engine *e = calloc(1, sizeof *e);
	if (!e)
		return mmf_err_set(err, -ENOMEM, "cpu engine: out of memory");
	e->c = c;
	e->max_batch = max_batch;
	openblas_set_num_threads(1);	/* see cpu_set_threads */
	int64_t scratch = 1;
	for (int i = 0; i < c->nops; i++)
		if (cpu_op_scratch(&c->ops[i]) > scratch)
			scratch = cpu_op_scratch(&c->ops[i]);
	e->bufs = calloc((size_t)c->nbufs, sizeof *e->bufs);
	e->scratch = malloc((size_t)scratch * sizeof *e->scratch);
	if (!e->bufs || !e->scratch)
		goto oom;
	for (int i = 0; i < c->nbufs; i++)
		if (!(e->bufs[i] = malloc((size_t)(c->bufs[i].elems * max_batch) * sizeof(float))))
			goto oom;
	*out = e;
	return 0;
oom:
	cpu_engine_free(e);
	return mmf_err_set(err, -ENOMEM, "cpu engine: out of memory for the %s tower's activations at batch %d",
			   tower_name(c->tower), max_batch);
}

void cpu_engine_set_hook(cpu_engine *e, cpu_op_hook hook, void *ud)
{
	e->hook = hook;
	e->hook_ud = ud;
}

static void run_chain(cpu_engine *e, int n, float *emb)
{
	const chain *c = e->c;
	for (int i = 0; i < c->nops; i++) {
		cpu_op_run(&c->ops[i], e->bufs, n, e->scratch);
		if (e->hook)
			e->hook(e->hook_ud, c, i, e->bufs[c->ops[i].out], n);
	}
	memcpy(emb, e->bufs[c->out], (size_t)(c->bufs[c->out].elems * n) * sizeof *emb);
}

static int check_batch(cpu_engine *e, int n, tower t, mmf_err *err)
{
	if (e->c->tower != t)
		return mmf_err_set(err, -EINVAL, "cpu engine: built for the %s tower, asked to run the %s tower",
				   tower_name(e->c->tower), tower_name(t));
	if (n < 1 || n > e->max_batch)
		return mmf_err_set(err, -EINVAL, "cpu engine: batch of %d, expected 1..%d", n, e->max_batch);
	return 0;
}

int cpu_embed_image(cpu_engine *e, const float *px, int n, float *emb, mmf_err *err)
{
	int rc = check_batch(e, n, TOWER_IMAGE, err);
	if (rc < 0)
		return rc;
	int S = e->c->model->cfg.image_size;
	float *x = e->bufs[e->c->in];
	for (int s = 0; s < n; s++)
		for (int ch = 0; ch < 3; ch++)
			for (int i = 0; i < S * S; i++) {
				float v = px[((int64_t)s * 3 + ch) * S * S + i];
				if (!isfinite(v))
					return mmf_err_set(err, -EINVAL, "image %d: pixel %d of channel %d is not finite", s, i, ch);
				x[((int64_t)s * S * S + i) * 3 + ch] = v;
			}
	run_chain(e, n, emb);
	return 0;
}

int cpu_embed_text(cpu_engine *e, const int32_t *tokens, int n, float *emb, mmf_err *err)
{
	int rc = check_batch(e, n, TOWER_TEXT, err);
	if (rc < 0)
		return rc;
	const clip_config *cfg = &e->c->model->cfg;
	int T = cfg->context;
	for (int64_t i = 0; i < (int64_t)n * T; i++)
		if (tokens[i] < 0 || tokens[i] >= cfg->vocab)
			return mmf_err_set(err, -EINVAL, "text %d: token %d at position %d is out of the vocabulary [0,%d)",
					   (int)(i / T), tokens[i], (int)(i % T), cfg->vocab);
	memcpy(e->bufs[e->c->in], tokens, (size_t)n * T * sizeof *tokens);
	run_chain(e, n, emb);
	return 0;
}

typedef struct zs_item {
	float p;
	int i;
} zs_item;

static int zs_cmp(const void *a, const void *b)
{
	const zs_item *x = a, *y = b;
	if (x->p != y->p)
		return x->p < y->p ? 1 : -1;
	return x->i - y->i;	/* ties keep the labels' order */
}

int clip_zero_shot(const float *logits, int n, float *probs, int *order)
{
	zs_item *it = malloc((size_t)n * sizeof *it);
	if (!it)
		return -ENOMEM;
	float mx = logits[0];
	for (int i = 1; i < n; i++)
		mx = logits[i] > mx ? logits[i] : mx;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += exp((double)logits[i] - mx);
	for (int i = 0; i < n; i++)
		it[i] = (zs_item){(float)(exp((double)logits[i] - mx) / sum), i};
	qsort(it, (size_t)n, sizeof *it, zs_cmp);
	for (int i = 0; i < n; i++)
		probs[i] = it[i].p, order[i] = it[i].i;
	free(it);
	return 0;
}

void clip_logits(const float *img, int ni, const float *txt, int nt, int dim, float logit_scale, float *logits)
{
	float s = expf(logit_scale);
	for (int i = 0; i < ni; i++)
		for (int j = 0; j < nt; j++) {
			double d = 0;
			for (int k = 0; k < dim; k++)
				d += (double)img[(int64_t)i * dim + k] * txt[(int64_t)j * dim + k];
			logits[(int64_t)i * nt + j] = (float)(s * d);
		}
}
