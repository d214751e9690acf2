/* GPU tests of the small ops (make check-gpu): every entry point of
 * kernels/mmf_ops.h, and LayerNorm, against cpu_op_run on random inputs, at
 * CLIP shapes and at odd sizes that end tiles part-way, outputs poisoned
 * with NaN first so unwritten elements fail. Each op runs in both forms:
 * fp16 (the mmf_*_f16 entry points; the reference gets exactly the fp16
 * values the kernel gets; bar: relative L2 error <= 5e-3) and fp32 (the
 * op's descriptor turned by mmf_op_set_f32, float inputs that fp16 cannot
 * hold; bar: every element within 1e-4 of (|ref| + rms(ref)), see
 * compare). On a failure the first bad element is printed. Then the
 * preconditions (-EINVAL). */
#include "config.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "kernels/mmf_ops.h"
#include "tests/gpu/gputest.h"
#include "tests/testutil.h"


/* Bytes of one element of a tensor in the fp16 or the fp32 form. */
static size_t esize(int f32)
{
	return f32 ? sizeof(float) : sizeof(uint16_t);
}

/* n values shift + scale * N(0,1), the kernel's copy in *dev_form: fp16
 * halves (the values rounded to fp16) or, with f32, floats. The exact
 * values that copy holds are returned. */
static float *rand_vals(size_t n, float scale, float shift, mmf_rng *r, int f32, void **dev_form)
{
	float *f = malloc(n * sizeof *f);
	if (f32) {
		float *g = malloc(n * sizeof *g);
		for (size_t i = 0; i < n; i++)
			g[i] = f[i] = shift + scale * mmf_rng_normal(r);
		*dev_form = g;
		return f;
	}
	uint16_t *h = malloc(n * sizeof *h);
	for (size_t i = 0; i < n; i++) {
		h[i] = mmf_float_to_half(shift + scale * mmf_rng_normal(r));
		f[i] = mmf_half_to_float(h[i]);
	}
	*dev_form = h;
	return f;
}

static void *dev_put(const void *host, size_t bytes)
{
	void *d;
	CK(cudaMalloc(&d, bytes));
	CK(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
	return d;
}

static void *dev_nan(size_t bytes)
{
	void *d;
	CK(cudaMalloc(&d, bytes));
	CK(cudaMemset(d, 0xff, bytes));	/* 0xffff is an fp16 NaN, 0xffffffff an fp32 one */
	return d;
}

/* Waits for the launch, then copies n values of the fp16 or the fp32 form
 * back as floats. */
static float *get_vals(const void *d, size_t n, int f32)
{
	float *f = malloc(n * sizeof *f);
	CK(cudaDeviceSynchronize());
	if (f32) {
		CK(cudaMemcpy(f, d, n * sizeof *f, cudaMemcpyDeviceToHost));
		return f;
	}
	uint16_t *h = malloc(n * sizeof *h);
	CK(cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost));
	for (size_t i = 0; i < n; i++)
		f[i] = mmf_half_to_float(h[i]);
	free(h);
	return f;
}

/* Launches, in its fp32 form, the descriptor d that a mmf_*_desc call
 * returning rc made. */
static int launch_f32(int rc, mmf_opdesc *d)
{
	if (rc == 0)
		rc = mmf_op_set_f32(d);
	return rc ? rc : mmf_op_launch(d, NULL);
}

/* got against ref, printed on one line. fp16 passes at a relative L2 error
 * <= 5e-3. fp32 passes when every element is within 1e-4 of (|ref| +
 * rms(ref)): kernel and reference both compute in fp32 (unit roundoff
 * 6e-8), in different orders (sums of up to a few thousand terms, exp2f
 * against expf), which leaves errors near 1e-6, while rounding to fp16
 * moves a value by up to 2^-11 = 4.9e-4 of itself, so a value that passed
 * through fp16 anywhere fails. On a failure also the first element that is
 * not finite or off by more than 1% (fp32: 1e-4) of (|ref| + rms(ref)),
 * and the worst one. */
static void compare(const char *what, const float *got, const float *ref, size_t n, int f32)
{
	const double tol = f32 ? 1e-4 : 0.01;
	double num = 0, den = 0, worst = -1, wrel = 0;
	size_t nonfinite = 0, first = n, wi = 0;
	for (size_t i = 0; i < n; i++)
		den += (double)ref[i] * ref[i];
	double rms = sqrt(den / (double)n);
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - ref[i]);
		if (!isfinite(got[i])) {
			nonfinite++;
			d = INFINITY;
		} else {
			num += d * d;
		}
		if (first == n && d > tol * (fabs(ref[i]) + rms))
			first = i;
		if (d > worst)
			worst = d, wi = i;
		if (d / (fabs(ref[i]) + rms + 1e-300) > wrel)
			wrel = d / (fabs(ref[i]) + rms + 1e-300);
	}
	double e = sqrt(num / (den + 1e-300));
	int ok = nonfinite == 0 && (f32 ? first == n : e <= 5e-3);
	printf("%-44s rel L2 %.2e", what, e);
	if (f32)
		printf(", max err %.2e", wrel);
	printf("%s\n", nonfinite ? " (non-finite outputs)" : "");
	if (!ok) {
		if (first < n)
			fprintf(stderr, "  %s: first bad element %zu of %zu: got %g, expected %g\n", what, first, n,
				got[first], ref[first]);
		fprintf(stderr, "  %s: worst element %zu: got %g, expected %g; %zu non-finite\n", what, wi, got[wi],
			ref[wi], nonfinite);
	}
	CHECK(ok, "%s: rel L2 %g, max err %g, %zu non-finite", what, e, wrel, nonfinite);
}

/* Checks a launch's return code, then its n outputs at dy (fp32 when
 * out_f32) against ref to the bar of the form f32; returns the outputs. */
static float *check_out(const char *what, int rc, const void *dy, const float *ref, size_t n, int out_f32, int f32)
{
	CHECK(rc == 0, "%s: rc %d", what, rc);
	float *got = get_vals(dy, n, out_f32);
	compare(what, got, ref, n, f32);
	return got;
}

static void test_attn_causal(int B, int T, int W, int H, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "attn_causal B=%d T=%d W=%d H=%d%s", B, T, W, H, f32 ? " fp32" : "");
	size_t nin = (size_t)B * T * 3 * W, nout = (size_t)B * T * W, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + T * 1009 + W * 7 + H);
	void *hx;
	float *x = rand_vals(nin, 1.5f, 0.f, &r, f32, &hx), *ref = malloc(nout * sizeof *ref);
	op o = {.kind = OP_ATTN, .in = 0, .out = 1, .in2 = -1, .tokens = T, .width = W, .heads = H};
	float *bufs[2] = {x, ref};
	cpu_op_run(&o, bufs, B, NULL);
	void *dx = dev_put(hx, nin * es), *dy = dev_nan(nout * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_attn_causal_desc(dx, dy, B, T, W, H, &d), &d)
		     : mmf_attn_causal_f16(dx, dy, B, T, W, H, NULL);
	float *got = check_out(what, rc, dy, ref, nout, f32, f32);
	cudaFree(dx), cudaFree(dy);
	free(x), free(hx), free(ref), free(got);
}

static void test_attn_pool(int B, int T, int C, int H, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "attn_pool B=%d T=%d C=%d H=%d%s", B, T, C, H, f32 ? " fp32" : "");
	size_t nq = (size_t)B * C, nkv = (size_t)B * T * 2 * C, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + T * 1009 + C * 7 + H + 1);
	void *hq, *hkv;
	float *q = rand_vals(nq, 1.5f, 0.f, &r, f32, &hq), *kv = rand_vals(nkv, 1.5f, 0.f, &r, f32, &hkv);
	float *ref = malloc(nq * sizeof *ref);
	op o = {.kind = OP_ATTN_POOL, .in = 0, .in2 = 1, .out = 2, .tokens = T, .width = C, .heads = H};
	float *bufs[3] = {q, kv, ref};
	cpu_op_run(&o, bufs, B, NULL);
	void *dq = dev_put(hq, nq * es), *dkv = dev_put(hkv, nkv * es), *dy = dev_nan(nq * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_attn_pool_desc(dq, dkv, dy, B, T, C, H, &d), &d)
		     : mmf_attn_pool_f16(dq, dkv, dy, B, T, C, H, NULL);
	float *got = check_out(what, rc, dy, ref, nq, f32, f32);
	cudaFree(dq), cudaFree(dkv), cudaFree(dy);
	free(q), free(hq), free(kv), free(hkv), free(ref), free(got);
}

/* The folded attention pool (pool_qk then pool_fold) against the plain
 * one on the CPU: k and v computed from the tokens and the weights in
 * double, then the CPU's attention pool. */
static void test_pool_fold(int B, int T, int C, int H)
{
	char what[96];
	snprintf(what, sizeof what, "pool_fold B=%d T=%d C=%d H=%d", B, T, C, H);
	size_t nq = (size_t)B * C, nx = (size_t)B * T * C, nw = (size_t)C * C;
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + T * 1009 + C * 7 + H + 5);
	void *hq, *hx, *hwk, *hwv;
	float *q = rand_vals(nq, 1.5f, 0.f, &r, 0, &hq), *x = rand_vals(nx, 1.0f, 0.f, &r, 0, &hx);
	float *wk = rand_vals(nw, 1.f / sqrtf((float)C), 0.f, &r, 0, &hwk), *wv = rand_vals(nw, 1.f / sqrtf((float)C), 0.f, &r, 0, &hwv);
	float *bk = malloc((size_t)C * sizeof *bk), *bv = malloc((size_t)C * sizeof *bv);
	for (int i = 0; i < C; i++)
		bk[i] = 0.5f * mmf_rng_normal(&r), bv[i] = 0.5f * mmf_rng_normal(&r);
	float *kv = malloc(nx * 2 * sizeof *kv), *ref = malloc(nq * sizeof *ref);
	for (size_t row = 0; row < (size_t)B * T; row++)
		for (int n = 0; n < 2 * C; n++) {
			const float *w = n < C ? wk + (size_t)n * C : wv + (size_t)(n - C) * C, *xr = x + row * C;
			double acc = n < C ? bk[n] : bv[n - C];
			for (int k = 0; k < C; k++)
				acc += (double)w[k] * xr[k];
			kv[row * 2 * C + n] = (float)acc;
		}
	op o = {.kind = OP_ATTN_POOL, .in = 0, .in2 = 1, .out = 2, .tokens = T, .width = C, .heads = H};
	float *bufs[3] = {q, kv, ref};
	cpu_op_run(&o, bufs, B, NULL);
	void *dq = dev_put(hq, nq * 2), *dx = dev_put(hx, nx * 2), *dwk = dev_put(hwk, nw * 2), *dwv = dev_put(hwv, nw * 2);
	void *dbv = dev_put(bv, (size_t)C * sizeof *bv), *dqt = dev_nan((size_t)B * H * C * sizeof(float)), *dy = dev_nan(nq * 2);
	mmf_opdesc d1, d2;
	int rc = mmf_pool_qk_desc(dq, dwk, dqt, B, C, H, &d1);
	if (rc == 0)
		rc = mmf_op_launch(&d1, NULL);
	if (rc == 0 && (rc = mmf_pool_fold_desc(dx, dqt, dwv, dbv, dy, B, T, C, H, &d2)) == 0)
		rc = mmf_op_launch(&d2, NULL);
	float *got = check_out(what, rc, dy, ref, nq, 0, 0);
	cudaFree(dq), cudaFree(dx), cudaFree(dwk), cudaFree(dwv), cudaFree(dbv), cudaFree(dqt), cudaFree(dy);
	free(q), free(hq), free(x), free(hx), free(wk), free(hwk), free(wv), free(hwv), free(bk), free(bv), free(kv);
	free(ref), free(got);
}

static void test_pool_tokens(int B, int HW, int C, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "pool_tokens B=%d HW=%d C=%d%s", B, HW, C, f32 ? " fp32" : "");
	size_t nx = (size_t)B * HW * C, npos = (size_t)(HW + 1) * C, ny = (size_t)B * (HW + 1) * C, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + HW * 1009 + C + 2);
	void *hx, *hpos;
	float *x = rand_vals(nx, 1.0f, 0.5f, &r, f32, &hx), *pos = rand_vals(npos, 0.1f, 0.f, &r, f32, &hpos);
	float *ref = malloc(ny * sizeof *ref);
	op o = {.kind = OP_POOL_TOKENS, .in = 0, .out = 1, .in2 = -1, .tokens = HW + 1, .width = C, .aux = pos};
	float *bufs[2] = {x, ref};
	cpu_op_run(&o, bufs, B, NULL);
	void *dx = dev_put(hx, nx * es), *dpos = dev_put(hpos, npos * es), *dy = dev_nan(ny * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_pool_tokens_desc(dx, dy, dpos, B, HW, C, &d), &d)
		     : mmf_pool_tokens_f16(dx, dy, dpos, B, HW, C, NULL);
	float *got = check_out(what, rc, dy, ref, ny, f32, f32);
	cudaFree(dx), cudaFree(dpos), cudaFree(dy);
	free(x), free(hx), free(pos), free(hpos), free(ref), free(got);
}

/* bad: some ids outside [0, V), whose rows must come out as zeros. */
static void test_embed(int B, int T, int W, int V, int bad, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "embed B=%d T=%d W=%d V=%d%s%s", B, T, W, V, bad ? " bad ids" : "", f32 ? " fp32" : "");
	size_t ntok = (size_t)V * W, npos = (size_t)T * W, ny = (size_t)B * T * W, nid = (size_t)B * T, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + T * 1009 + W * 7 + V + bad);
	void *htok, *hpos;
	float *tok = rand_vals(ntok, 0.02f, 0.f, &r, f32, &htok), *pos = rand_vals(npos, 0.01f, 0.f, &r, f32, &hpos);
	int32_t *ids = malloc(nid * sizeof *ids), *safe = malloc(nid * sizeof *safe);
	const int32_t wrong[] = {-1, V, INT_MIN, INT_MAX};
	for (size_t i = 0; i < nid; i++) {
		ids[i] = (int32_t)(mmf_rng_u64(&r) % (uint64_t)V);
		if (bad && i % 7 == 3)
			ids[i] = wrong[(i / 7) % 4];
		safe[i] = ids[i] >= 0 && ids[i] < V ? ids[i] : 0;
	}
	float *ref = malloc(ny * sizeof *ref);
	op o = {.kind = OP_EMBED, .in = 0, .out = 1, .in2 = -1, .tokens = T, .width = W, .wt = tok, .aux = pos};
	float *bufs[2] = {(float *)safe, ref};
	cpu_op_run(&o, bufs, B, NULL);
	for (size_t i = 0; i < nid; i++)
		if (ids[i] != safe[i])
			memset(ref + i * W, 0, (size_t)W * sizeof *ref);
	void *dtok = dev_put(htok, ntok * es), *dpos = dev_put(hpos, npos * es), *did = dev_put(ids, nid * 4);
	void *dy = dev_nan(ny * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_embed_desc(did, dy, dtok, dpos, B, T, W, V, &d), &d)
		     : mmf_embed_f16(did, dy, dtok, dpos, B, T, W, V, NULL);
	float *got = check_out(what, rc, dy, ref, ny, f32, f32);
	cudaFree(dtok), cudaFree(dpos), cudaFree(did), cudaFree(dy);
	free(tok), free(htok), free(pos), free(hpos), free(ids), free(safe), free(ref), free(got);
}

/* Each sample's maximal id is placed twice (the first must win); sample 1,
 * if any, has all ids equal (index 0 must win). */
static void test_eot_gather(int B, int T, int W, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "eot_gather B=%d T=%d W=%d%s", B, T, W, f32 ? " fp32" : "");
	size_t nx = (size_t)B * T * W, nid = (size_t)B * T, ny = (size_t)B * W, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + T * 1009 + W + 3);
	void *hx;
	float *x = rand_vals(nx, 1.0f, 0.f, &r, f32, &hx), *ref = malloc(ny * sizeof *ref);
	int32_t *ids = malloc(nid * sizeof *ids);
	for (int s = 0; s < B; s++) {
		int32_t *row = ids + (size_t)s * T;
		for (int t = 0; t < T; t++)
			row[t] = s == 1 ? 7 : (int32_t)(mmf_rng_u64(&r) % 49407);
		if (s != 1) {
			int a = (int)(mmf_rng_u64(&r) % (uint64_t)T), b = (int)(mmf_rng_u64(&r) % (uint64_t)T);
			row[a] = row[b] = 49407;
		}
	}
	op o = {.kind = OP_EOT_GATHER, .in = 0, .in2 = 1, .out = 2, .tokens = T, .width = W};
	float *bufs[3] = {x, (float *)ids, ref};
	cpu_op_run(&o, bufs, B, NULL);
	void *dx = dev_put(hx, nx * es), *did = dev_put(ids, nid * 4), *dy = dev_nan(ny * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_eot_gather_desc(dx, did, dy, B, T, W, &d), &d)
		     : mmf_eot_gather_f16(dx, did, dy, B, T, W, NULL);
	float *got = check_out(what, rc, dy, ref, ny, f32, f32);
	CHECK(memcmp(got, ref, ny * sizeof *got) == 0, "%s: the copy is not exact", what);
	cudaFree(dx), cudaFree(did), cudaFree(dy);
	free(x), free(hx), free(ids), free(ref), free(got);
}

/* Row 1, if any, is all zeros: it must come out as zeros, not NaN. y is
 * fp32 in both forms. */
static void test_l2norm(int rows, int E, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "l2norm rows=%d E=%d%s", rows, E, f32 ? " fp32" : "");
	size_t n = (size_t)rows * E, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)rows * 1009 + E + 4);
	void *hx;
	float *x = rand_vals(n, 0.3f, 0.f, &r, f32, &hx), *ref = malloc(n * sizeof *ref);
	if (rows > 1) {
		for (int i = 0; i < E; i++)
			x[E + i] = 0.f;
		memset((char *)hx + E * es, 0, E * es);
	}
	op o = {.kind = OP_L2NORM, .in = 0, .out = 1, .in2 = -1, .tokens = rows, .width = E};
	float *bufs[2] = {x, ref};
	cpu_op_run(&o, bufs, 1, NULL);
	void *dx = dev_put(hx, n * es);
	float *dy = dev_nan(n * 4);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_l2norm_desc(dx, dy, rows, E, &d), &d) : mmf_l2norm_f16_f32(dx, dy, rows, E, NULL);
	float *got = check_out(what, rc, dy, ref, n, 1, f32);
	cudaFree(dx), cudaFree(dy);
	free(x), free(hx), free(ref), free(got);
}

static void test_avgpool2(int B, int H, int W, int C, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "avgpool2 B=%d H=%d W=%d C=%d%s", B, H, W, C, f32 ? " fp32" : "");
	size_t nx = (size_t)B * H * W * C, ny = (size_t)B * (H / 2) * (W / 2) * C, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)B * 1000003 + H * 1009 + W * 7 + C + 5);
	void *hx;
	float *x = rand_vals(nx, 1.0f, 0.5f, &r, f32, &hx), *ref = malloc(ny * sizeof *ref);
	op o = {.kind = OP_AVGPOOL, .in = 0, .out = 1, .in2 = -1, .h = H, .w = W, .cin = C, .cout = C,
		.k = 2, .stride = 2, .oh = H / 2, .ow = W / 2};
	float *bufs[2] = {x, ref};
	cpu_op_run(&o, bufs, B, NULL);
	void *dx = dev_put(hx, nx * es), *dy = dev_nan(ny * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_avgpool2_desc(dx, dy, B, H, W, C, &d), &d) : mmf_avgpool2_f16(dx, dy, B, H, W, C, NULL);
	float *got = check_out(what, rc, dy, ref, ny, f32, f32);
	cudaFree(dx), cudaFree(dy);
	free(x), free(hx), free(ref), free(got);
}

static void test_layernorm(int rows, int W, int f32)
{
	char what[96];
	snprintf(what, sizeof what, "layernorm rows=%d W=%d%s", rows, W, f32 ? " fp32" : "");
	size_t n = (size_t)rows * W, es = esize(f32);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)rows * 7919 + W + 6);
	void *hx, *hg, *hb;
	float *x = rand_vals(n, 3.0f, 0.5f, &r, f32, &hx), *g = rand_vals(W, 0.1f, 1.0f, &r, f32, &hg);
	float *b = rand_vals(W, 0.05f, 0.f, &r, f32, &hb), *ref = malloc(n * sizeof *ref);
	op o = {.kind = OP_LAYERNORM, .in = 0, .out = 1, .in2 = -1, .tokens = rows, .width = W, .wt = g, .bias = b};
	float *bufs[2] = {x, ref};
	cpu_op_run(&o, bufs, 1, NULL);
	void *dx = dev_put(hx, n * es), *dg = dev_put(hg, W * es), *db = dev_put(hb, W * es), *dy = dev_nan(n * es);
	mmf_opdesc d;
	int rc = f32 ? launch_f32(mmf_layernorm_desc(dx, dy, dg, db, rows, W, &d), &d)
		     : mmf_layernorm_f16(dx, dy, dg, db, rows, W, NULL);
	float *got = check_out(what, rc, dy, ref, n, f32, f32);
	cudaFree(dx), cudaFree(dg), cudaFree(db), cudaFree(dy);
	free(x), free(hx), free(g), free(hg), free(b), free(hb), free(ref), free(got);
}

/* Each call breaks exactly one precondition; valid arguments otherwise. */
static void test_preconditions(void)
{
	char *d, *o;
	int32_t *ids;
	CK(cudaMalloc((void **)&d, 1 << 20));
	CK(cudaMalloc((void **)&o, 1 << 20));
	CK(cudaMalloc((void **)&ids, 4096));
	CK(cudaMemset(d, 0, 1 << 20));	/* the valid calls run: keep compute-sanitizer's initcheck quiet */
	CK(cudaMemset(ids, 0, 4096));
	CHECK(mmf_attn_causal_f16(d, o, 1, 77, 512, 8, NULL) == 0, "attn_causal: valid call refused");
	CHECK(mmf_attn_causal_f16(d, o, 1, 129, 512, 8, NULL) == -EINVAL, "attn_causal: 129 tokens accepted");
	CHECK(mmf_attn_causal_f16(d, o, 1, 77, 100, 4, NULL) == -EINVAL, "attn_causal: dh 25 accepted");
	CHECK(mmf_attn_causal_f16(d, o, 1, 77, 136, 1, NULL) == -EINVAL, "attn_causal: dh 136 accepted");
	CHECK(mmf_attn_causal_f16(d, o, 1, 77, 512, 7, NULL) == -EINVAL, "attn_causal: 512 %% 7 heads accepted");
	CHECK(mmf_attn_causal_f16(d + 2, o, 1, 77, 512, 8, NULL) == -EINVAL, "attn_causal: misaligned qkv accepted");
	CHECK(mmf_attn_causal_f16(d, o, 0, 77, 512, 8, NULL) == -EINVAL, "attn_causal: batch 0 accepted");
	CHECK(mmf_attn_pool_f16(d, d, o, 1, 50, 2048, 32, NULL) == 0, "attn_pool: valid call refused");
	CHECK(mmf_attn_pool_f16(d, d, o, 1, 50, 2048, 30, NULL) == -EINVAL, "attn_pool: 2048 %% 30 heads accepted");
	CHECK(mmf_attn_pool_f16(d, d, o, 1, 50, 48, 4, NULL) == -EINVAL, "attn_pool: dh 12 accepted");
	CHECK(mmf_attn_pool_f16(d, d, o, 1, 50, 528, 1, NULL) == -EINVAL, "attn_pool: dh 528 accepted");
	CHECK(mmf_attn_pool_f16(d, d, o + 8, 1, 50, 2048, 32, NULL) == -EINVAL, "attn_pool: misaligned out accepted");
	CHECK(mmf_attn_pool_f16(d, NULL, o, 1, 50, 2048, 32, NULL) == -EINVAL, "attn_pool: NULL kv accepted");
	mmf_opdesc pd;
	CHECK(mmf_pool_qk_desc(d, d, (float *)o, 1, 2048, 32, &pd) == 0, "pool_qk: valid call refused");
	CHECK(mmf_pool_qk_desc(d, d, (float *)o, 1, 2048, 30, &pd) == -EINVAL, "pool_qk: 2048 %% 30 heads accepted");
	CHECK(mmf_pool_qk_desc(d, d, (float *)o, 1, 48, 4, &pd) == -EINVAL, "pool_qk: dh 12 accepted");
	CHECK(mmf_pool_qk_desc(d, d, (float *)o, 1, 4104, 1, &pd) == -EINVAL, "pool_qk: width 4104 accepted");
	CHECK(mmf_pool_qk_desc(d, d, (float *)(o + 4), 1, 2048, 32, &pd) == -EINVAL, "pool_qk: misaligned qt accepted");
	CHECK(mmf_pool_fold_desc(d, (float *)d, d, NULL, o, 1, 50, 2048, 32, &pd) == 0, "pool_fold: valid call refused");
	CHECK(mmf_pool_fold_desc(d, (float *)d, d, NULL, o, 1, 1025, 2048, 32, &pd) == -EINVAL, "pool_fold: 1025 tokens accepted");
	CHECK(mmf_pool_fold_desc(d, (float *)d, d, NULL, o, 1, 0, 2048, 32, &pd) == -EINVAL, "pool_fold: 0 tokens accepted");
	CHECK(mmf_pool_fold_desc(d, (float *)d, NULL, NULL, o, 1, 50, 2048, 32, &pd) == -EINVAL, "pool_fold: NULL wv accepted");
	CHECK(mmf_pool_fold_desc(d, (float *)d, d, NULL, o + 8, 1, 50, 2048, 32, &pd) == -EINVAL, "pool_fold: misaligned out accepted");
	CHECK(mmf_pool_tokens_f16(d, o, d, 1, 49, 2048, NULL) == 0, "pool_tokens: valid call refused");
	CHECK(mmf_pool_tokens_f16(d, o, d, 1, 49, 12, NULL) == -EINVAL, "pool_tokens: 12 channels accepted");
	CHECK(mmf_pool_tokens_f16(d, o, d + 4, 1, 49, 2048, NULL) == -EINVAL, "pool_tokens: misaligned pos accepted");
	CHECK(mmf_pool_tokens_f16(d, o, d, 1, 0, 2048, NULL) == -EINVAL, "pool_tokens: 0 positions accepted");
	CHECK(mmf_embed_f16(ids, o, d, d, 1, 77, 512, 1000, NULL) == 0, "embed: valid call refused");
	CHECK(mmf_embed_f16(ids, o, d, d, 1, 77, 12, 1000, NULL) == -EINVAL, "embed: width 12 accepted");
	CHECK(mmf_embed_f16(ids, o, d, d, 1, 77, 512, 0, NULL) == -EINVAL, "embed: vocab 0 accepted");
	CHECK(mmf_embed_f16((int32_t *)((char *)ids + 2), o, d, d, 1, 77, 512, 1000, NULL) == -EINVAL,
	      "embed: misaligned ids accepted");
	CHECK(mmf_eot_gather_f16(d, ids, o, 2, 77, 512, NULL) == 0, "eot_gather: valid call refused");
	CHECK(mmf_eot_gather_f16(d, ids, o, 2, 0, 512, NULL) == -EINVAL, "eot_gather: 0 tokens accepted");
	CHECK(mmf_eot_gather_f16(d, ids, o, 2, 77, 4, NULL) == -EINVAL, "eot_gather: width 4 accepted");
	CHECK(mmf_l2norm_f16_f32(d, (float *)o, 2, 512, NULL) == 0, "l2norm: valid call refused");
	CHECK(mmf_l2norm_f16_f32(d, (float *)o, 0, 512, NULL) == -EINVAL, "l2norm: 0 rows accepted");
	CHECK(mmf_l2norm_f16_f32(d, (float *)o, 2, 12, NULL) == -EINVAL, "l2norm: width 12 accepted");
	CHECK(mmf_l2norm_f16_f32(d, (float *)(o + 4), 2, 512, NULL) == -EINVAL, "l2norm: misaligned y accepted");
	CHECK(mmf_avgpool2_f16(d, o, 1, 14, 14, 64, NULL) == 0, "avgpool2: valid call refused");
	CHECK(mmf_avgpool2_f16(d, o, 1, 7, 14, 64, NULL) == -EINVAL, "avgpool2: odd height accepted");
	CHECK(mmf_avgpool2_f16(d, o, 1, 14, 7, 64, NULL) == -EINVAL, "avgpool2: odd width accepted");
	CHECK(mmf_avgpool2_f16(d, o, 1, 14, 14, 12, NULL) == -EINVAL, "avgpool2: 12 channels accepted");
	CHECK(mmf_avgpool2_f16(d, o + 2, 1, 14, 14, 64, NULL) == -EINVAL, "avgpool2: misaligned y accepted");
	/* The fp32 attention tile has its own tiles and shared memory: it must
	 * take the fp16 limits within 48 KB, and refuse a descriptor that no
	 * mmf_attn_causal_desc call made (tokens 0 here). */
	mmf_opdesc desc;
	CHECK(mmf_attn_causal_desc(d, o, 1, 128, 1024, 8, &desc) == 0 && mmf_op_set_f32(&desc) == 0 && desc.f32 == 1,
	      "attn_causal: fp32 form at T 128, dh 128 refused");
	CHECK(desc.smem <= 48 * 1024, "attn_causal: fp32 form takes %d shared bytes at T 128, dh 128", desc.smem);
	memset(&desc, 0, sizeof desc);
	desc.kind = MMF_OP_ATTN_CAUSAL;
	CHECK(mmf_op_set_f32(&desc) == -EINVAL && desc.f32 == 0, "attn_causal: fp32 form of an empty descriptor made");
	CK(cudaDeviceSynchronize());
	cudaFree(d), cudaFree(o), cudaFree(ids);
}

int main(void)
{
	gpu_test_require_device();

	/* B, T, W, H: CLIP text towers (dh 64), then every dh the kernel
	 * takes, T on both sides of each 16- and 32-row edge and of the
	 * small/large kernel split (T 80, dh 64), and batches. */
	static const int attn[][4] = {
		{1, 77, 512, 8}, {2, 77, 640, 10}, {1, 77, 768, 12}, {3, 77, 1024, 16}, {64, 77, 512, 8},
		{1, 128, 512, 4}, {2, 128, 1024, 8}, {1, 1, 64, 1}, {2, 2, 128, 2}, {1, 15, 96, 3},
		{1, 16, 32, 1}, {1, 17, 80, 2}, {1, 31, 120, 3}, {1, 32, 48, 6}, {2, 33, 40, 1},
		{1, 47, 112, 1}, {1, 64, 256, 2}, {1, 65, 192, 2}, {3, 96, 208, 2}, {1, 100, 360, 3},
		{1, 127, 88, 1}, {2, 50, 24, 3}, {1, 40, 48, 3}, {1, 77, 72, 3}, {1, 77, 96, 2}, {1, 77, 160, 2},
		{1, 77, 56, 1}, {1, 77, 72, 1}, {1, 77, 104, 1}, {2, 80, 128, 2}, {2, 81, 128, 2},
	};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof attn / sizeof attn[0]; i++)
			test_attn_causal(attn[i][0], attn[i][1], attn[i][2], attn[i][3], f32);

	/* B, T, C, H: RN50, RN101, RN50x4, RN50x16, RN50x64, then odd. */
	static const int pool[][4] = {
		{1, 50, 2048, 32}, {4, 50, 2048, 32}, {2, 82, 2560, 40}, {1, 145, 3072, 48}, {1, 197, 4096, 64},
		{1, 50, 256, 4}, {3, 7, 24, 3}, {2, 1, 64, 1}, {1, 5, 512, 2}, {1, 13, 216, 3}, {2, 300, 160, 4},
		{1, 50, 40, 1}, {1, 50, 384, 3},
	};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof pool / sizeof pool[0]; i++)
			test_attn_pool(pool[i][0], pool[i][1], pool[i][2], pool[i][3], f32);

	/* B, T, C, H: RN50 at 224 (batch 1 and 2) and 448, then odd (C not a
	 * multiple of the 512 columns of a pool_qk tile or of 32, one token,
	 * one head, dh 104 or 128). */
	static const int fold[][4] = {
		{1, 50, 2048, 32}, {2, 50, 2048, 32}, {1, 197, 2048, 32}, {1, 50, 256, 4}, {3, 17, 520, 5}, {2, 1, 64, 1},
		{1, 5, 64, 2}, {1, 82, 2560, 40}, {1, 40, 384, 3},
	};
	for (size_t i = 0; i < sizeof fold / sizeof fold[0]; i++)
		test_pool_fold(fold[i][0], fold[i][1], fold[i][2], fold[i][3]);

	static const int tokens[][3] = {
		{1, 49, 2048}, {4, 49, 2048}, {2, 81, 2560}, {1, 144, 3072}, {1, 1, 8}, {3, 5, 72},
		{2, 17, 200}, {1, 16, 64}, {1, 33, 1032},
	};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
			test_pool_tokens(tokens[i][0], tokens[i][1], tokens[i][2], f32);

	/* The last shape is 77000 tiles: more than one block each. */
	static const int embed[][4] = {
		{1, 77, 512, 49408}, {2, 77, 768, 4096}, {3, 77, 1280, 1000}, {2, 5, 8, 3}, {1, 9, 520, 100},
		{1000, 77, 64, 300},
	};
	for (int f32 = 0; f32 < 2; f32++) {
		for (size_t i = 0; i < sizeof embed / sizeof embed[0]; i++)
			test_embed(embed[i][0], embed[i][1], embed[i][2], embed[i][3], 0, f32);
		test_embed(3, 77, 512, 1000, 1, f32);
	}

	static const int eot[][3] = {{1, 77, 512}, {4, 77, 768}, {3, 1, 8}, {2, 300, 1280}, {5, 77, 8}, {2, 129, 136}};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof eot / sizeof eot[0]; i++)
			test_eot_gather(eot[i][0], eot[i][1], eot[i][2], f32);

	/* The last shape is 70000 tiles: more than one block each. */
	static const int l2[][2] = {{1, 512}, {2, 512}, {64, 1024}, {3, 8}, {7, 640}, {2, 4104}, {70000, 8}};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof l2 / sizeof l2[0]; i++)
			test_l2norm(l2[i][0], l2[i][1], f32);

	/* B, H, W, C: RN50's and RN50x4's pools, then odd. */
	static const int avg[][4] = {
		{1, 112, 112, 32}, {2, 56, 56, 256}, {1, 28, 28, 512}, {4, 14, 14, 1024}, {1, 144, 144, 40},
		{1, 18, 18, 1280}, {3, 2, 2, 8}, {2, 6, 10, 24}, {1, 2, 34, 136},
	};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof avg / sizeof avg[0]; i++)
			test_avgpool2(avg[i][0], avg[i][1], avg[i][2], avg[i][3], f32);

	/* rows, W: CLIP text widths, one row, the widest (4096, every
	 * register vector in use), width 8, and more rows than blocks. */
	static const int ln[][2] = {{77, 512}, {1, 512}, {3, 640}, {231, 64}, {5, 4096}, {77, 8}, {65537, 16}};
	for (int f32 = 0; f32 < 2; f32++)
		for (size_t i = 0; i < sizeof ln / sizeof ln[0]; i++)
			test_layernorm(ln[i][0], ln[i][1], f32);

	test_preconditions();
	return test_done("test_ops");
}
