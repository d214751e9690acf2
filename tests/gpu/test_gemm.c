/* GEMM kernel tests (make check-gpu): every tile configuration, in both
 * address modes (rows and implicit-GEMM convolution), with every epilogue,
 * against the CPU reference (cpu_op_run) on fp16-rounded random inputs, at
 * RN50 shapes and odd sizes that leave partial tiles. Outputs are poisoned
 * with NaN first. Bar: relative L2 error <= 5e-3. Every case runs again
 * with int8 weights (quantised per output channel; the reference uses the
 * same quantised weights, dequantised), and in the fp32 SIMT form
 * (mmf_gemm.f32: unrounded inputs; bar 2e-5, what fp32 accumulation in
 * another order than the CPU's leaves over K <= 4608, about 1e-7 sqrt(K)
 * with margin). */
#include "config.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/quant.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "kernels/mmf_kernels.h"
#include "tests/gpu/gputest.h"
#include "tests/testutil.h"


/* Precision of a case: fp16 tensors, int8 weights, or the fp32 SIMT form. */
enum { P16, PQ8, P32 };
static const char *const pname[] = {"", "int8 ", "fp32 "};

static void *upload_float(const float *x, size_t n)
{
	void *d;
	CK(cudaMalloc(&d, n * 4 + 16));
	CK(cudaMemcpy(d, x, n * 4, cudaMemcpyHostToDevice));
	return d;
}

static void *upload_half(float *x, size_t n)	/* rounds x to fp16 in place */
{
	uint16_t *h = malloc(n * 2);
	for (size_t i = 0; i < n; i++) {
		h[i] = mmf_float_to_half(x[i]);
		x[i] = mmf_half_to_float(h[i]);
	}
	void *d;
	CK(cudaMalloc(&d, n * 2 + 16));
	CK(cudaMemcpy(d, h, n * 2, cudaMemcpyHostToDevice));
	free(h);
	return d;
}

/* Quantises w [rows][cols] per row, replaces it by its dequantised values
 * (the reference) and uploads the int8 values packed for the GEMM; *dscale
 * gets the scales. */
static void *upload_int8(float *w, int rows, int cols, float **dscale)
{
	int8_t *q = malloc((size_t)rows * cols);
	float *s = malloc((size_t)rows * 4);
	mmf_quant(w, rows, cols, 0, q, s);
	mmf_dequant(q, s, rows, cols, 0, w);
	size_t nb = (size_t)rows * mmf_gemm_int8_ldb(cols);
	uint8_t *packed = malloc(nb);
	mmf_gemm_pack_int8(q, rows, cols, packed);
	void *d;
	CK(cudaMalloc(&d, nb + 16));
	CK(cudaMemcpy(d, packed, nb, cudaMemcpyHostToDevice));
	free(packed);
	CK(cudaMalloc((void **)dscale, (size_t)rows * 4));
	CK(cudaMemcpy(*dscale, s, (size_t)rows * 4, cudaMemcpyHostToDevice));
	free(q), free(s);
	return d;
}

static void randn(float *x, size_t n, uint64_t seed, float scale)
{
	mmf_rng r;
	mmf_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		x[i] = scale * mmf_rng_normal(&r);
}

/* Activations of precision prec: fp16 (rounding x in place) or fp32. */
static void *upload_act(float *x, size_t n, int prec) { return prec == P32 ? upload_float(x, n) : upload_half(x, n); }

static double check(const char *what, const float *ref, void *dC, size_t n, int prec)
{
	size_t es = prec == P32 ? 4 : 2;
	void *h = malloc(n * es);
	CK(cudaMemcpy(h, dC, n * es, cudaMemcpyDeviceToHost));
	double num = 0, den = 0, bar = prec == P32 ? 2e-5 : 5e-3;
	int bad = 0;
	size_t first = n;
	for (size_t i = 0; i < n; i++) {
		float g = prec == P32 ? ((float *)h)[i] : mmf_half_to_float(((uint16_t *)h)[i]);
		if (!isfinite(g)) {
			if (first == n)
				first = i;
			bad++;
		}
		num += ((double)g - ref[i]) * ((double)g - ref[i]);
		den += (double)ref[i] * ref[i];
	}
	double e = sqrt(num / (den + 1e-300));
	printf("%-58s rel L2 %.2e%s\n", what, e, bad ? "  NON-FINITE" : "");
	CHECK(!bad && e <= bar, "%s: rel L2 %g (bar %g), %d non-finite (first at %zu)", what, e, bar, bad, first);
	free(h);
	return e;
}

/* Split-K counts tested (16: more than a portable cluster, the ticket). */
static const int split_tests[] = {1, 3, 5, 16};
#define NSPLITS (int)(sizeof split_tests / sizeof *split_tests)

/* Split GEMMs whose cluster and ticket results were compared. */
static int cluster_compared;

/* Runs g (poisoned output first) with configuration cfg, twice when split
 * (the second launch checks the counters were left at zero and the result
 * is bitwise the same), and checks it against ref. */
__attribute__((format(printf, 7, 8)))
static void run_and_check(mmf_gemm *g, int cfg, int grid, const float *ref, void *dy, size_t ny, const char *fmt, ...)
{
	const int prec = g->f32 ? P32 : g->bscale ? PQ8 : P16;
	const size_t nb = ny * (prec == P32 ? 4 : 2);
	long long wsb;
	int cnt;
	CHECK(mmf_gemm_workspace(g, cfg, &wsb, &cnt) == 0, "workspace query");
	if (g->splits > 1) {
		CK(cudaMalloc((void **)&g->ws, (size_t)wsb));
		CK(cudaMalloc((void **)&g->counters, (size_t)cnt * 4));
		CK(cudaMemset(g->counters, 0, (size_t)cnt * 4));
	}
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(what + n, sizeof what - (size_t)n, " cfg%d x%d", cfg, g->splits);
	char *first = malloc(nb), *second = malloc(nb);
	for (int rep = 0; rep < (g->splits > 1 ? 2 : 1); rep++) {
		CK(cudaMemset(dy, 0xff, nb));
		int rc = mmf_gemm_f16(g, cfg, grid, NULL);
		CHECK(rc == 0, "%s: launch rc %d", what, rc);
		CK(cudaDeviceSynchronize());
		CK(cudaMemcpy(rep ? second : first, dy, nb, cudaMemcpyDeviceToHost));
	}
	check(what, ref, dy, ny, prec);
	if (g->splits > 1)
		CHECK(memcmp(first, second, nb) == 0, "%s: a second split-K launch differs", what);
	/* Split-K through clusters (sm_90+, on in main; the tensor-core
	 * form, at most 8 splits) must give the ticket's bits: run the ticket
	 * path once more and compare. */
	if (g->splits > 1 && g->splits <= mmf_get_cluster() && !g->f32) {
		int max = mmf_get_cluster();
		mmf_set_cluster(0);
		CK(cudaMemset(dy, 0xff, nb));
		int rc = mmf_gemm_f16(g, cfg, grid, NULL);
		mmf_set_cluster(max > 0);
		CHECK(rc == 0, "%s: ticket launch rc %d", what, rc);
		CK(cudaDeviceSynchronize());
		CK(cudaMemcpy(second, dy, nb, cudaMemcpyDeviceToHost));
		CHECK(memcmp(first, second, nb) == 0, "%s: split-K through clusters and through the ticket differ", what);
		cluster_compared++;
	}
	free(first), free(second);
	if (g->splits > 1) {
		cudaFree(g->ws), cudaFree(g->counters);
		g->ws = NULL, g->counters = NULL;
	}
}

/* conv: batch x h x w x cin -> k x k, stride, cout; optional residual. */
static void test_conv_w(int batch, int h, int w, int cin, int cout, int k, int stride, int residual, op_act act, int prec)
{
	int pad = k / 2, oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
	size_t nx = (size_t)batch * h * w * cin, nw = (size_t)cout * k * k * cin, ny = (size_t)batch * oh * ow * cout;
	float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc(cout * 4), *r = malloc(ny * 4), *ref = malloc(ny * 4);
	randn(x, nx, 1 + h + cin, 1.0f);
	randn(wt, nw, 2 + cout, sqrtf(2.0f / (k * k * cin)));
	randn(b, cout, 3, 0.1f);
	randn(r, ny, 4, 1.0f);
	float *dsc = NULL;
	void *dx = upload_act(x, nx, prec), *dw = prec == PQ8 ? upload_int8(wt, cout, k * k * cin, &dsc) : upload_act(wt, nw, prec),
	     *dr = upload_act(r, ny, prec), *dy;
	float *db;
	CK(cudaMalloc((void **)&db, cout * 4));
	CK(cudaMemcpy(db, b, cout * 4, cudaMemcpyHostToDevice));
	CK(cudaMalloc(&dy, ny * 4));
	op o = {.kind = OP_CONV, .in = 0, .out = 1, .in2 = residual ? 2 : -1, .h = h, .w = w, .cin = cin, .cout = cout,
		.k = k, .stride = stride, .pad = pad, .oh = oh, .ow = ow, .wt = wt, .bias = b, .act = act};
	float *scratch = malloc((cpu_op_scratch(&o) * batch + 1) * 4);
	float *bufs[3] = {x, ref, r};
	cpu_op_run(&o, bufs, batch, scratch);
	for (int cfg = 0; cfg < MMF_GEMM_NCFG; cfg++)
		for (int si = 0; si < NSPLITS; si++) {
			const int splits = split_tests[si];
			mmf_gemm g = {.A = dx, .B = dw, .R = residual ? dr : NULL, .bias = db, .C = dy, .M = batch * oh * ow, .N = cout,
				      .K = k * k * cin, .act = act, .conv = 1, .h = h, .w = w, .cin = cin, .kh = k, .kw = k,
				      .stride = stride, .pad = pad, .oh = oh, .ow = ow, .splits = splits, .bscale = dsc,
				      .f32 = prec == P32};
			if (splits > (g.K + 31) / 32)
				continue;
			run_and_check(&g, cfg, cfg == 1 ? 3 : 0, ref, dy, ny, "%sconv b%d %dx%dx%d -> %dx%dx%d k%d s%d%s act%d",
				      pname[prec], batch, h, w, cin, oh, ow, cout, k, stride, residual ? " +res" : "", act);
		}
	cudaFree(dx), cudaFree(dw), cudaFree(dr), cudaFree(dy), cudaFree(db), cudaFree(dsc);
	free(x), free(wt), free(b), free(r), free(ref), free(scratch);
}

static void test_conv(int batch, int h, int w, int cin, int cout, int k, int stride, int residual, op_act act)
{
	for (int prec = P16; prec <= P32; prec++)
		test_conv_w(batch, h, w, cin, cout, k, stride, residual, act, prec);
}

/* linear: batch samples of m rows (read at sample stride), k -> n. */
static void test_linear_w(int batch, int m, int k, int n, int tokens_stride, int residual, op_act act, int bias, int prec)
{
	size_t sstride = (size_t)(tokens_stride ? tokens_stride : m) * k;
	size_t nx = (size_t)batch * sstride, nw = (size_t)n * k, ny = (size_t)batch * m * n;
	float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc(n * 4), *r = malloc(ny * 4), *ref = malloc(ny * 4);
	randn(x, nx, 11 + m, 1.0f);
	randn(wt, nw, 12 + n, 1.0f / sqrtf((float)k));
	randn(b, n, 13, 0.1f);
	randn(r, ny, 14, 1.0f);
	float *dsc = NULL;
	void *dx = upload_act(x, nx, prec), *dw = prec == PQ8 ? upload_int8(wt, n, k, &dsc) : upload_act(wt, nw, prec),
	     *dr = upload_act(r, ny, prec), *dy;
	float *db;
	CK(cudaMalloc((void **)&db, n * 4));
	CK(cudaMemcpy(db, b, n * 4, cudaMemcpyHostToDevice));
	CK(cudaMalloc(&dy, ny * 4));
	op o = {.kind = OP_LINEAR, .in = 0, .out = 1, .in2 = residual ? 2 : -1, .m = m, .k_in = k, .n = n,
		.in_sample_stride = (int64_t)sstride, .wt = wt, .bias = bias ? b : NULL, .act = act};
	float *bufs[3] = {x, ref, r};
	cpu_op_run(&o, bufs, batch, NULL);
	for (int cfg = 0; cfg < MMF_GEMM_NCFG; cfg++)
		for (int si = 0; si < NSPLITS; si++) {
			const int splits = split_tests[si];
			mmf_gemm g = {.A = dx, .B = dw, .R = residual ? dr : NULL, .bias = bias ? db : NULL, .C = dy, .M = batch * m,
				      .N = n, .K = k, .act = act, .rps = m, .lda = k, .sstride = (long long)sstride, .splits = splits,
				      .bscale = dsc, .f32 = prec == P32};
			if (splits > (g.K + 31) / 32)
				continue;
			run_and_check(&g, cfg, 0, ref, dy, ny, "%slinear b%d [%d,%d]x[%d,%d]^T%s%s act%d", pname[prec], batch,
				      m, k, n, k, tokens_stride ? " strided" : "", residual ? " +res" : "", act);
		}
	/* At most 8 rows in fp16: the matrix-vector tile too (MMF_GEMV). */
	if (prec == P16 && batch * m <= 8) {
		mmf_gemm g = {.A = dx, .B = dw, .R = residual ? dr : NULL, .bias = bias ? db : NULL, .C = dy, .M = batch * m,
			      .N = n, .K = k, .act = act, .rps = m, .lda = k, .sstride = (long long)sstride};
		mmf_opdesc d;
		char what[160];
		snprintf(what, sizeof what, "gemv b%d [%d,%d]x[%d,%d]^T%s%s act%d", batch, m, k, n, k,
			 tokens_stride ? " strided" : "", residual ? " +res" : "", act);
		CK(cudaMemset(dy, 0xff, ny * 2));
		int rc = mmf_gemv_desc(&g, &d);
		if (rc == 0)
			rc = mmf_op_launch(&d, NULL);
		CHECK(rc == 0, "%s: rc %d", what, rc);
		CK(cudaDeviceSynchronize());
		check(what, ref, dy, ny, prec);
	}
	cudaFree(dx), cudaFree(dw), cudaFree(dr), cudaFree(dy), cudaFree(db), cudaFree(dsc);
	free(x), free(wt), free(b), free(r), free(ref);
}

static void test_linear(int batch, int m, int k, int n, int tokens_stride, int residual, op_act act, int bias)
{
	for (int prec = P16; prec <= P32; prec++)
		test_linear_w(batch, m, k, n, tokens_stride, residual, act, bias, prec);
}

int main(void)
{
	gpu_test_require_device();
	cpu_set_threads(0);
	struct cudaDeviceProp prop;
	CK(cudaGetDeviceProperties(&prop, 0));
	mmf_set_cluster(prop.major >= 9);
	printf("split-K through clusters: %s\n", prop.major >= 9 ? "on (checked bitwise against the ticket)" : "not on this device");
	/* RN50 shapes */
	test_conv(1, 224, 224, 8, 32, 3, 2, 0, ACT_RELU);	/* stem conv1, channels padded to 8 */
	test_conv(1, 112, 112, 32, 64, 3, 1, 0, ACT_RELU);	/* stem conv3 */
	test_conv(1, 56, 56, 64, 256, 1, 1, 1, ACT_RELU);	/* layer1 conv3 + residual */
	test_conv(2, 28, 28, 128, 128, 3, 1, 0, ACT_RELU);
	test_conv(1, 7, 7, 2048, 512, 1, 1, 0, ACT_RELU);	/* layer4 conv1 */
	test_conv(1, 7, 7, 512, 512, 3, 1, 0, ACT_NONE);
	/* odd sizes: partial tiles in M and N, K tails */
	test_conv(3, 9, 11, 16, 24, 3, 2, 1, ACT_RELU);
	test_conv(1, 5, 7, 8, 136, 3, 1, 0, ACT_NONE);
	test_conv(2, 13, 3, 40, 8, 1, 1, 1, ACT_RELU);
	test_linear(1, 77, 512, 1536, 0, 0, ACT_NONE, 1);	/* qkv */
	test_linear(1, 77, 512, 2048, 0, 0, ACT_QUICKGELU, 1);	/* mlp fc */
	test_linear(1, 77, 2048, 512, 0, 1, ACT_NONE, 1);	/* mlp proj + residual */
	test_linear(4, 77, 512, 512, 0, 1, ACT_NONE, 1);
	test_linear(1, 50, 2048, 4096, 0, 0, ACT_NONE, 1);	/* attnpool kv */
	test_linear(3, 1, 2048, 2048, 50, 0, ACT_NONE, 1);	/* attnpool q, token 0 at a stride */
	test_linear(2, 1, 512, 1024, 0, 0, ACT_NONE, 0);	/* text_projection, no bias */
	test_linear(2, 13, 24, 10, 0, 1, ACT_GELU, 1);
	test_linear(5, 3, 40, 130, 7, 0, ACT_RELU, 1);
	test_linear(8, 1, 520, 34, 3, 1, ACT_QUICKGELU, 1);	/* gemv: 8 rows, a partial tile, K not a multiple of 256 */
	test_linear(1, 1, 2048, 1024, 50, 0, ACT_NONE, 1);	/* attnpool c_proj (gemv) */
	/* preconditions */
	mmf_gemm bad = {.A = (void *)16, .B = (void *)16, .C = (void *)16, .M = 4, .N = 8, .K = 12, .rps = 4, .lda = 12};
	CHECK(mmf_gemm_f16(&bad, 0, 0, NULL) == -EINVAL, "K %% 8 != 0 accepted");
	bad.K = 16, bad.lda = 16, bad.A = (void *)18;
	CHECK(mmf_gemm_f16(&bad, 0, 0, NULL) == -EINVAL, "misaligned A accepted");
	bad.A = (void *)16;
	CHECK(mmf_gemm_f16(&bad, 7, 0, NULL) == -EINVAL, "unknown configuration accepted");
	bad.f32 = 1, bad.bscale = (const float *)16;
	CHECK(mmf_gemm_f16(&bad, 0, 0, NULL) == -EINVAL, "fp32 with int8 weights accepted");
	mmf_gemm gv = {.A = (void *)16, .B = (void *)16, .C = (void *)16, .M = 8, .N = 8, .K = 16, .rps = 1, .lda = 16};
	mmf_opdesc gd;
	CHECK(mmf_gemv_desc(&gv, &gd) == 0 && gd.kind == MMF_OP_GEMV, "gemv: valid descriptor refused");
	gv.M = 9;
	CHECK(mmf_gemv_desc(&gv, &gd) == -EINVAL, "gemv: 9 rows accepted");
	gv.M = 1, gv.K = 12;
	CHECK(mmf_gemv_desc(&gv, &gd) == -EINVAL, "gemv: K %% 8 != 0 accepted");
	gv.K = 16, gv.bscale = (const float *)16;
	CHECK(mmf_gemv_desc(&gv, &gd) == -EINVAL, "gemv: int8 weights accepted");
	gv.bscale = NULL, gv.conv = 1;
	CHECK(mmf_gemv_desc(&gv, &gd) == -EINVAL, "gemv: a convolution accepted");
	gv.conv = 0, gv.C = (void *)24;
	CHECK(mmf_gemv_desc(&gv, &gd) == -EINVAL, "gemv: misaligned C accepted");
	/* the fp32 form keeps the tiles and the split-K workspace, not the team */
	mmf_gemm g16 = {.A = (void *)16, .B = (void *)16, .C = (void *)16, .M = 77, .N = 512, .K = 2048, .rps = 77,
			.lda = 2048, .splits = 4, .ws = (float *)16, .counters = (int *)16},
		 g32 = g16;
	g32.f32 = 1;
	for (int cfg = 0; cfg < MMF_GEMM_NCFG; cfg++) {
		int t16, th16, sm16, t32, th32, sm32, c16, c32;
		long long w16, w32;
		CHECK(mmf_gemm_info(&g16, cfg, &t16, &th16, &sm16) == 0 && mmf_gemm_info(&g32, cfg, &t32, &th32, &sm32) == 0 &&
			      mmf_gemm_workspace(&g16, cfg, &w16, &c16) == 0 && mmf_gemm_workspace(&g32, cfg, &w32, &c32) == 0,
		      "cfg %d: info refused", cfg);
		CHECK(t16 == t32 && w16 == w32 && c16 == c32 && sm32 > 0 && sm32 <= 48 << 10,
		      "cfg %d: fp32 tiles %d/%d, workspace %lld/%lld, counters %d/%d, smem %d", cfg, t16, t32, w16, w32, c16, c32, sm32);
		mmf_opdesc d;
		CHECK(mmf_gemm_desc(&g32, cfg, &d) == 0 && d.f32 == 1 && d.team == th32 && d.smem == sm32 && mmf_op_set_f32(&d) == 0,
		      "cfg %d: fp32 descriptor", cfg);
		CHECK(mmf_gemm_desc(&g16, cfg, &d) == 0 && d.f32 == 0 && mmf_op_set_f32(&d) == -EINVAL,
		      "cfg %d: an fp16 GEMM descriptor turned fp32", cfg);
	}
	if (mmf_get_cluster())
		CHECK(cluster_compared > 0, "no split GEMM compared clusters against the ticket");
	printf("split-K clusters vs ticket: %d GEMMs bitwise equal\n", cluster_compared);
	return test_done("test_gemm");
}
