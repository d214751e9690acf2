/* gpu_dram: the hog thread and its calibration (gpu_dram.h). The hog is not
 * one persistent kernel but a stream of ~1 ms launches from its own thread:
 * anything that synchronises the device (cudaFree, cudaDeviceSynchronize)
 * then waits for one launch instead of forever, and a new sleep takes effect
 * at the next launch. */
#include "config.h"
#include "gpu_dram.h"

#include <cuda_runtime_api.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/mmf_kernels.h"
#include "sortcmp.h"

struct gpu_dram {
	gpu_dram_info info;
	cudaStream_t part_s, hog_s;
	void *hog_buf, *x, *y;
	size_t hog_bytes, copy_bytes;
	unsigned *sink;
	int blocks;
	pthread_t thread;
	int thread_started;
	atomic_int stop, on, failed, mode;
	atomic_uint sleep_ns;
	char msg[MMF_ERR_MSG_MAX];
};

static void nap_us(long us)
{
	struct timespec ts = {us / 1000000, us % 1000000 * 1000};
	nanosleep(&ts, NULL);
}

static void *hog_main(void *arg)
{
	gpu_dram *d = arg;
	cudaEvent_t a = NULL, b = NULL;
	unsigned long long seed = 0x5eed;
	int chunks = 64;
	if (cudaEventCreateWithFlags(&a, cudaEventBlockingSync) != cudaSuccess ||
	    cudaEventCreateWithFlags(&b, cudaEventBlockingSync) != cudaSuccess) {
		snprintf(d->msg, sizeof d->msg, "DRAM hog: cannot create events: %s", cudaGetErrorString(cudaGetLastError()));
		atomic_store(&d->failed, -EIO);
		goto out;
	}
	while (!atomic_load(&d->stop)) {
		if (!atomic_load(&d->on)) {
			nap_us(200);
			continue;
		}
		unsigned sl = atomic_load(&d->sleep_ns);
		int mode = atomic_load(&d->mode);
		float ms = 0;
		cudaEventRecord(a, d->hog_s);
		int rc = mmf_hog_launch(d->hog_buf, d->hog_bytes, mode, seed, d->blocks, chunks, sl, d->sink, (mmf_stream)d->hog_s);
		seed += (unsigned long long)chunks;
		cudaEventRecord(b, d->hog_s);
		if (rc < 0 || cudaEventSynchronize(b) != cudaSuccess || cudaEventElapsedTime(&ms, a, b) != cudaSuccess) {
			snprintf(d->msg, sizeof d->msg, "DRAM hog: a launch failed: %s", cudaGetErrorString(cudaGetLastError()));
			atomic_store(&d->failed, -EIO);
			break;
		}
		/* About 1 ms a launch. */
		double want = ms > 0 ? chunks * (1.0 / ms) : chunks * 4.0;
		chunks = want < 1 ? 1 : want > 1 << 22 ? 1 << 22 : (int)want;
	}
out:
	if (a)
		cudaEventDestroy(a);
	if (b)
		cudaEventDestroy(b);
	return NULL;
}

/* The partition's streaming-copy bandwidth (read + write), median of 5. */
static int measure(gpu_dram *d, double *gbs, mmf_err *err)
{
	cudaEvent_t a, b;
	double v[5];
	if (cudaEventCreate(&a) != cudaSuccess || cudaEventCreate(&b) != cudaSuccess)
		return mmf_err_set(err, -EIO, "DRAM limit: cannot create events");
	int rc = 0;
	for (int i = 0; i < 5 && rc == 0; i++) {
		float ms = 0;
		cudaEventRecord(a, d->part_s);
		rc = mmf_copy_bw(d->x, d->y, d->copy_bytes, d->info.sms, (mmf_stream)d->part_s);
		cudaEventRecord(b, d->part_s);
		if (rc < 0 || cudaEventSynchronize(b) != cudaSuccess || cudaEventElapsedTime(&ms, a, b) != cudaSuccess)
			rc = mmf_err_set(err, -EIO, "DRAM limit: the measuring copy failed: %s", cudaGetErrorString(cudaGetLastError()));
		else
			v[i] = 2.0 * d->copy_bytes / (ms / 1e3) / 1e9;
	}
	cudaEventDestroy(a);
	cudaEventDestroy(b);
	if (rc < 0)
		return rc;
	if (atomic_load(&d->failed))
		return mmf_err_set(err, atomic_load(&d->failed), "%s", d->msg);
	qsort(v, 5, sizeof *v, mmf_cmp_double);
	*gbs = v[2];
	return 0;
}

const char *gpu_dram_mode_name(int mode)
{
	static const char *names[MMF_HOG_MODES] = {"scattered reads", "sequential reads", "scattered reads and writes",
						   "sequential reads and writes"};
	return mode >= 0 && mode < MMF_HOG_MODES ? names[mode] : "?";
}

/* Sets the hog's pattern and sleep, lets a launch with them start, and
 * measures. */
static int measure_at(gpu_dram *d, int mode, unsigned sleep_ns, double *gbs, mmf_err *err)
{
	atomic_store(&d->mode, mode);
	atomic_store(&d->sleep_ns, sleep_ns);
	atomic_store(&d->on, 1);
	nap_us(3000);
	return measure(d, gbs, err);
}

static size_t pow2_at_least(size_t v)
{
	size_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

int gpu_dram_start(gpu_parts *parts, int sms, double target, FILE *progress, gpu_dram **out, mmf_err *err)
{
	*out = NULL;
	if (!(target > 0) || !isfinite(target))
		return mmf_err_set(err, -EINVAL, "DRAM limit: %g GB/s: expected a positive bandwidth", target);
	if (sms == 0)
		return mmf_err_set(err, -EINVAL, "DRAM limit: the whole GPU leaves no SMs for the bandwidth hog; "
				   "limit a partition (--sms 8, 16, ...)");
	gpu_dram *d = calloc(1, sizeof *d);
	if (!d)
		return mmf_err_set(err, -ENOMEM, "DRAM limit: out of memory");
	int rc, l2 = 0, bpsm = 0;
	gpu_part *part, *rest;
	mmf_stream ps, hs;
	if ((rc = gpu_part_get(parts, sms, &part, err)) < 0 || (rc = gpu_part_stream(part, GPU_PART_MAX_STREAMS - 1, &ps, err)) < 0 ||
	    (rc = gpu_part_get_rest(parts, sms, &rest, err)) < 0 || (rc = gpu_part_stream(rest, 0, &hs, err)) < 0)
		goto fail;
	d->part_s = (cudaStream_t)ps, d->hog_s = (cudaStream_t)hs;
	d->info.sms = gpu_part_sms(part), d->info.hog_sms = gpu_part_sms(rest), d->info.target_gbs = target;
	cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0);
	d->hog_bytes = pow2_at_least((size_t)(l2 > 0 ? l2 : 1 << 20) * 4);
	if (d->hog_bytes < (size_t)256 << 20)
		d->hog_bytes = (size_t)256 << 20;
	d->copy_bytes = d->hog_bytes;
	if ((bpsm = mmf_hog_blocks_per_sm()) < 1) {
		rc = mmf_err_set(err, -EIO, "DRAM limit: no occupancy for the hog kernel");
		goto fail;
	}
	d->blocks = bpsm * d->info.hog_sms;
	if (cudaMalloc(&d->hog_buf, d->hog_bytes) != cudaSuccess || cudaMalloc(&d->x, d->copy_bytes) != cudaSuccess ||
	    cudaMalloc(&d->y, d->copy_bytes) != cudaSuccess || cudaMalloc((void **)&d->sink, 64) != cudaSuccess ||
	    cudaMemset(d->hog_buf, 0x5a, d->hog_bytes) != cudaSuccess || cudaMemset(d->x, 0x3c, d->copy_bytes) != cudaSuccess ||
	    cudaDeviceSynchronize() != cudaSuccess) {
		rc = mmf_err_set(err, -ENOMEM, "DRAM limit: cannot allocate %zu MiB on the GPU", (d->hog_bytes + 2 * d->copy_bytes) >> 20);
		goto fail;
	}
	if ((rc = pthread_create(&d->thread, NULL, hog_main, d)) != 0) {
		rc = mmf_err_set(err, -rc, "DRAM limit: cannot start the hog thread: %s", strerror(rc));
		goto fail;
	}
	d->thread_started = 1;

	gpu_dram_info *in = &d->info;
	if ((rc = measure(d, &in->free_gbs, err)) < 0)
		goto fail;
	if (progress)
		fprintf(progress, "   DRAM limit: the %d-SM partition copies at %.0f GB/s alone; hog on the other %d SMs (%d blocks)\n",
			in->sms, in->free_gbs, in->hog_sms, d->blocks);
	if (target >= in->free_gbs * 0.97) {
		rc = mmf_err_set(err, -ERANGE, "DRAM limit %g GB/s: the %d-SM partition reaches only %.0f GB/s without a limit; "
				 "ask for less", target, in->sms, in->free_gbs);
		goto fail;
	}
	/* The pattern that leaves the partition the least, never sleeping. */
	in->floor_gbs = in->free_gbs;
	for (int m = 0; m < MMF_HOG_MODES; m++) {
		double g;
		if ((rc = measure_at(d, m, 0, &g, err)) < 0)
			goto fail;
		if (progress)
			fprintf(progress, "   DRAM limit: hog of %s, never sleeping: %.0f GB/s\n", gpu_dram_mode_name(m), g);
		if (g < in->floor_gbs)
			in->floor_gbs = g, in->mode = m;
	}
	if (in->floor_gbs > target * 1.05) {
		rc = mmf_err_set(err, -ERANGE, "DRAM limit %g GB/s: with the other %d SMs using DRAM as hard as they can, the "
				 "%d-SM partition still copies at %.0f GB/s; this GPU can emulate %.0f to %.0f GB/s for it",
				 target, in->hog_sms, in->sms, in->floor_gbs, in->floor_gbs, in->free_gbs * 0.97);
		goto fail;
	}
	/* Bandwidth rises with the sleep: double it until the target is
	 * passed, then bisect (geometrically) between the last two, keeping
	 * the sleep that came closest. */
	unsigned lo = 0, hi = 0, best = 0, sl = 64;
	int bisections = 0;
	double best_err = fabs(in->floor_gbs - target), g, g_lo = in->floor_gbs, g_hi = in->free_gbs;
	while (sl) {
		if ((rc = measure_at(d, in->mode, sl, &g, err)) < 0)
			goto fail;
		if (progress)
			fprintf(progress, "   DRAM limit: sleep %u ns: %.0f GB/s\n", sl, g);
		if (fabs(g - target) < best_err)
			best_err = fabs(g - target), best = sl;
		if (g >= target)
			hi = sl, g_hi = g;
		else
			lo = sl, g_lo = g;
		if (!hi)
			sl = sl < 1u << 20 ? sl * 2 : 0;
		else if (bisections++ < 6 && hi - lo > 8)
			sl = lo ? (unsigned)sqrt((double)lo * hi) : hi / 2;
		else
			sl = 0;
	}
	in->sleep_ns = best;
	if ((rc = measure_at(d, in->mode, best, &in->gbs, err)) < 0)
		goto fail;
	if (progress)
		fprintf(progress, "   DRAM limit: %g GB/s asked; hog of %s, sleep %u ns: %.0f GB/s measured\n", target,
			gpu_dram_mode_name(in->mode), best, in->gbs);
	/* On some GPUs the partition's bandwidth jumps between two sleeps a
	 * few ns apart, and a sample near the jump does not repeat: refuse
	 * rather than run under a limit that is not the one asked for. */
	if (fabs(in->gbs / target - 1) > 0.10) {
		rc = mmf_err_set(err, -ERANGE, "DRAM limit %g GB/s: the hog could not hold it on this GPU (%.0f GB/s measured "
				 "at the closest setting; the partition got %.0f GB/s at a sleep of %u ns and %.0f at %u ns); "
				 "ask for another target", target, in->gbs, g_lo, lo, g_hi, hi);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	gpu_dram_stop(d);
	return rc;
}

const gpu_dram_info *gpu_dram_get(const gpu_dram *d) { return &d->info; }

int gpu_dram_check(const gpu_dram *d, mmf_err *err)
{
	int rc = atomic_load(&((gpu_dram *)d)->failed);
	return rc ? mmf_err_set(err, rc, "%s", d->msg) : 0;
}

void gpu_dram_stop(gpu_dram *d)
{
	if (!d)
		return;
	atomic_store(&d->stop, 1);
	if (d->thread_started)
		pthread_join(d->thread, NULL);
	if (d->hog_s)
		cudaStreamSynchronize(d->hog_s);
	cudaFree(d->hog_buf);
	cudaFree(d->x);
	cudaFree(d->y);
	cudaFree(d->sink);
	free(d);
}
