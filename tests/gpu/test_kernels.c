/* GPU kernel tests (make check-gpu): every kernel against the CPU reference
 * on random inputs, outputs poisoned with NaN first so unwritten elements
 * fail, at model shapes and odd sizes. Bar: relative L2 error <= 5e-3. */
#include "config.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/safetensors.h"
#include "engine/synth.h"
#include "kernels/mmf_kernels.h"
#include "tests/gpu/gputest.h"
#include "tests/testutil.h"


static uint16_t *to_half(const float *x, size_t n)
{
	uint16_t *h = malloc(n * 2);
	for (size_t i = 0; i < n; i++)
		h[i] = mmf_float_to_half(x[i]);
	return h;
}

static double rel_l2(const float *got, const float *ref, size_t n, int *nonfinite)
{
	double num = 0, den = 0;
	*nonfinite = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i]))
			(*nonfinite)++;
		num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
		den += (double)ref[i] * ref[i];
	}
	return sqrt(num / (den + 1e-300));
}

static void test_layernorm(int rows, int width)
{
	size_t n = (size_t)rows * width;
	float *x = malloc(n * 4), *g = malloc(width * 4), *b = malloc(width * 4), *ref = malloc(n * 4), *got = malloc(n * 4);
	mmf_rng r;
	mmf_rng_seed(&r, (uint64_t)rows * 7919 + width);
	for (size_t i = 0; i < n; i++)
		x[i] = 3.0f * mmf_rng_normal(&r) + 0.5f;
	for (int i = 0; i < width; i++)
		g[i] = 0.8f + 0.4f * mmf_rng_uniform(&r), b[i] = 0.05f * mmf_rng_normal(&r);
	uint16_t *hx = to_half(x, n), *hg = to_half(g, width), *hb = to_half(b, width), *hy = malloc(n * 2);
	/* The reference sees exactly the fp16 values the kernel sees. */
	for (size_t i = 0; i < n; i++)
		x[i] = mmf_half_to_float(hx[i]);
	for (int i = 0; i < width; i++)
		g[i] = mmf_half_to_float(hg[i]), b[i] = mmf_half_to_float(hb[i]);
	op o = {.kind = OP_LAYERNORM, .in = 0, .out = 1, .in2 = -1, .tokens = rows, .width = width, .wt = g, .bias = b};
	float *bufs[2] = {x, ref};
	cpu_op_run(&o, bufs, 1, NULL);
	void *dx, *dy, *dg, *db;
	CK(cudaMalloc(&dx, n * 2));
	CK(cudaMalloc(&dy, n * 2));
	CK(cudaMalloc(&dg, width * 2));
	CK(cudaMalloc(&db, width * 2));
	CK(cudaMemcpy(dx, hx, n * 2, cudaMemcpyHostToDevice));
	CK(cudaMemcpy(dg, hg, width * 2, cudaMemcpyHostToDevice));
	CK(cudaMemcpy(db, hb, width * 2, cudaMemcpyHostToDevice));
	CK(cudaMemset(dy, 0xff, n * 2));	/* 0xffff is a NaN */
	int rc = mmf_layernorm_f16(dx, dy, dg, db, rows, width, NULL);
	CHECK(rc == 0, "layernorm %dx%d: rc %d", rows, width, rc);
	CK(cudaDeviceSynchronize());
	CK(cudaMemcpy(hy, dy, n * 2, cudaMemcpyDeviceToHost));
	for (size_t i = 0; i < n; i++)
		got[i] = mmf_half_to_float(hy[i]);
	int bad;
	double e = rel_l2(got, ref, n, &bad);
	printf("layernorm %5d x %-5d rel L2 %.2e%s\n", rows, width, e, bad ? " (non-finite outputs)" : "");
	CHECK(bad == 0 && e <= 5e-3, "layernorm %dx%d: rel L2 %g, %d non-finite", rows, width, e, bad);
	/* Preconditions. */
	CHECK(mmf_layernorm_f16(dx, dy, dg, db, rows, 12, NULL) == -EINVAL, "width 12 accepted");
	CHECK(mmf_layernorm_f16((char *)dx + 2, dy, dg, db, rows, width, NULL) == -EINVAL, "misaligned accepted");
	CHECK(mmf_layernorm_f16(dx, dy, dg, db, 0, width, NULL) == -EINVAL, "0 rows accepted");
	cudaFree(dx), cudaFree(dy), cudaFree(dg), cudaFree(db);
	free(x), free(g), free(b), free(ref), free(got), free(hx), free(hg), free(hb), free(hy);
}

int main(void)
{
	gpu_test_require_device();
	int shapes[][2] = {{77, 512}, {1, 512}, {3, 640}, {231, 64}, {1000, 1024}, {5, 4096}, {77, 8}, {65537, 16}};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		test_layernorm(shapes[i][0], shapes[i][1]);
	return test_done("test_kernels");
}
