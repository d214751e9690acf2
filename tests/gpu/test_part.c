/* GPU test of engine/gpu_part: partitions of 1, 2 and 4 groups (8, 16 and
 * 32 SMs on Hopper) and the whole GPU, each checked by launching a kernel
 * that records %smid per block with the runtime API (<<<>>>) on the
 * partition's stream into memory from cudaMalloc (the primary context), and
 * counting the distinct SMs. The same kernel captured into a CUDA graph on a
 * partition stream must stay inside the partition on replay. Also: invalid
 * sizes and lists give messages that list the valid values, and asking twice
 * gives the same partition and stream. Exits 77 without a CUDA device. */
#include "config.h"

#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdint.h>

#include "engine/gpu_part.h"
#include "tests/gpu/gputest.h"
#include "tests/testutil.h"

int test_part_record_smid(unsigned *smid, int blocks, long long spin, cudaStream_t s);


#define MAX_SMID 4096
#define SPIN 20000	/* clock cycles a block holds its SM: about 10 us */

typedef struct smset {
	unsigned char on[MAX_SMID];
	int n;		/* distinct SM ids */
	int unwritten;	/* blocks that left no id (the buffer is poisoned first) */
	int out_of_range;
} smset;

static unsigned *d_ids, *h_ids;
static int blocks;

static void count_ids(smset *set)
{
	memset(set, 0, sizeof *set);
	for (int b = 0; b < blocks; b++) {
		unsigned id = h_ids[b];
		if (id == 0xffffffffu)
			set->unwritten++;
		else if (id >= MAX_SMID)
			set->out_of_range++;
		else if (!set->on[id])
			set->on[id] = 1, set->n++;
	}
}

static void print_ids(const char *what, const smset *set)
{
	printf("  %s: %d distinct SM ids over %d blocks:", what, set->n, blocks);
	for (int i = 0; i < MAX_SMID; i++)
		if (set->on[i])
			printf(" %d", i);
	printf("\n");
}

/* Runs the kernel once on s and collects the ids. */
static void run_on(cudaStream_t s, smset *set)
{
	CK(cudaMemsetAsync(d_ids, 0xff, (size_t)blocks * sizeof *d_ids, s));
	int e = test_part_record_smid(d_ids, blocks, SPIN, s);
	CHECK(e == 0, "launch: %s", cudaGetErrorString((cudaError_t)e));
	CK(cudaMemcpyAsync(h_ids, d_ids, (size_t)blocks * sizeof *h_ids, cudaMemcpyDeviceToHost, s));
	CK(cudaStreamSynchronize(s));
	count_ids(set);
	CHECK(set->unwritten == 0, "%d of %d blocks wrote no SM id", set->unwritten, blocks);
	CHECK(set->out_of_range == 0, "%d SM ids >= %d", set->out_of_range, MAX_SMID);
}

static int subset(const smset *a, const smset *b)
{
	for (int i = 0; i < MAX_SMID; i++)
		if (a->on[i] && !b->on[i])
			return 0;
	return 1;
}

static int common(const smset *a, const smset *b)
{
	int n = 0;
	for (int i = 0; i < MAX_SMID; i++)
		n += a->on[i] && b->on[i];
	return n;
}

/* Times one launch on s with events made in the primary context. */
static void time_on(cudaStream_t s, const char *name)
{
	cudaEvent_t a, b;
	CK(cudaEventCreate(&a));
	CK(cudaEventCreate(&b));
	cudaError_t e1 = cudaEventRecord(a, s);
	int e = test_part_record_smid(d_ids, blocks, SPIN, s);
	cudaError_t e2 = cudaEventRecord(b, s);
	CHECK(e == 0, "launch: %s", cudaGetErrorString((cudaError_t)e));
	CHECK(e1 == cudaSuccess && e2 == cudaSuccess, "cudaEventRecord on the %s stream: %s",
	      name, cudaGetErrorString(e1 ? e1 : e2));
	CK(cudaStreamSynchronize(s));
	float ms = 0;
	if (e1 == cudaSuccess && e2 == cudaSuccess) {
		CK(cudaEventElapsedTime(&ms, a, b));
		printf("  %s: %d blocks x %d cycles in %.3f ms (events from the primary context)\n", name, blocks,
		       SPIN, ms);
	}
	CK(cudaEventDestroy(a));
	CK(cudaEventDestroy(b));
}

static void test_errors(gpu_parts *p)
{
	int g = gpu_parts_granularity(p), total = gpu_parts_total_sms(p);
	char list[256], want[64];
	gpu_parts_valid_list(p, list, sizeof list);
	mmf_err err = {0};
	gpu_part *t = NULL;

	if (g > 1 && gpu_parts_groups(p) >= 2) {
		int bad = g + g / 2;
		memset(&err, 0, sizeof err);
		int rc = gpu_part_get(p, bad, &t, &err);
		printf("  --sms %d -> %s\n", bad, err.msg);
		CHECK(rc == -EINVAL && !t, "gpu_part_get(%d) = %d, expected -EINVAL", bad, rc);
		snprintf(want, sizeof want, "--sms %d:", bad);
		CHECK_MSG(err.msg, want, gpu_parts_device_name(p), list, "multiples of");
	}
	int over = total + g;
	memset(&err, 0, sizeof err);
	int rc = gpu_part_get(p, over, &t, &err);
	printf("  --sms %d -> %s\n", over, err.msg);
	CHECK(rc == -EINVAL, "gpu_part_get(%d) = %d, expected -EINVAL", over, rc);
	CHECK_MSG(err.msg, list, "more SMs than the device has");

	memset(&err, 0, sizeof err);
	rc = gpu_part_get(p, -g, &t, &err);
	CHECK(rc == -EINVAL, "gpu_part_get(%d) = %d, expected -EINVAL", -g, rc);
	CHECK_MSG(err.msg, list);

	int sms[8];
	char in[64];
	snprintf(in, sizeof in, " %d,%d , ALL", g, 2 * g);
	memset(&err, 0, sizeof err);
	int n = gpu_parts_parse_list(p, in, sms, 8, &err);
	if (gpu_parts_groups(p) >= 2) {
		CHECK(n == 3 && sms[0] == g && sms[1] == 2 * g && sms[2] == 0, "parse '%s' = %d: %s", in, n, err.msg);
	}
	snprintf(in, sizeof in, "%d,%d", g, g + 1);
	memset(&err, 0, sizeof err);
	n = gpu_parts_parse_list(p, in, sms, 8, &err);
	printf("  --sms %s -> %s\n", in, err.msg);
	CHECK(n == -EINVAL, "parse '%s' = %d, expected -EINVAL", in, n);
	snprintf(want, sizeof want, "--sms %d:", g + 1);
	CHECK_MSG(err.msg, want, list);
	const char *junk[] = {"", "8,,16", "eight", "8x", "0", "all,"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		memset(&err, 0, sizeof err);
		n = gpu_parts_parse_list(p, junk[i], sms, 8, &err);
		printf("  --sms '%s' -> %s\n", junk[i], err.msg);
		CHECK(n == -EINVAL, "parse '%s' = %d, expected -EINVAL", junk[i], n);
		CHECK_MSG(err.msg, "'all'");
	}
	memset(&err, 0, sizeof err);
	n = gpu_parts_parse_list(p, "all,all,all", sms, 2, &err);
	CHECK(n == -E2BIG, "parse of 3 into 2 = %d, expected -E2BIG", n);
}

int main(void)
{
	int ndev = 0;
	cudaError_t e = cudaGetDeviceCount(&ndev);
	if (e != cudaSuccess || ndev == 0) {
		printf("SKIP: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
		return 77;
	}
	mmf_err err = {0};
	gpu_parts *p = NULL;
	int rc = gpu_parts_open(0, &p, &err);
	if (rc == -ENODEV) {
		printf("SKIP: no CUDA device (%s)\n", err.msg);
		return 77;
	}
	if (rc < 0) {
		fprintf(stderr, "FAIL: gpu_parts_open: %s\n", err.msg);
		return 1;
	}
	int g = gpu_parts_granularity(p), total = gpu_parts_total_sms(p), drv = 0, rt = 0;
	char list[256];
	gpu_parts_valid_list(p, list, sizeof list);
	struct cudaDeviceProp prop;
	CK(cudaGetDeviceProperties(&prop, 0));
	CK(cudaDriverGetVersion(&drv));
	CK(cudaRuntimeGetVersion(&rt));
	printf("device 0: %s, sm_%d%d, %d SMs, driver %d.%d, runtime %d.%d\n", gpu_parts_device_name(p), prop.major,
	       prop.minor, total, drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
	printf("split once: %d groups of %d SMs, %d SMs left over; --sms takes %s\n", gpu_parts_groups(p), g,
	       gpu_parts_remainder_sms(p), list);
	CHECK(prop.multiProcessorCount == total, "runtime says %d SMs, gpu_parts %d", prop.multiProcessorCount, total);
	if (prop.major >= 9) {
		CHECK(g == 8, "granularity %d on sm_%d%d, expected 8", g, prop.major, prop.minor);
	}

	/* Memory from the primary context, used from every partition's stream. */
	CK(cudaSetDevice(0));
	blocks = 64 * total;
	CK(cudaMalloc((void **)&d_ids, (size_t)blocks * sizeof *d_ids));
	h_ids = malloc((size_t)blocks * sizeof *h_ids);

	/* 1, 2 and 4 groups, then the whole GPU (0). */
	int want[4] = {g, 2 * g, 4 * g, 0};
	smset sets[4];
	gpu_part *parts[4] = {0};
	int have[4] = {0};
	for (int i = 0; i < 4; i++) {
		if (want[i] && want[i] > gpu_parts_groups(p) * g) {
			printf("partition of %d SMs: skipped, the device has %d groups of %d\n", want[i],
			       gpu_parts_groups(p), g);
			continue;
		}
		memset(&err, 0, sizeof err);
		rc = gpu_part_get(p, want[i], &parts[i], &err);
		CHECK(rc == 0, "gpu_part_get(%d): %s", want[i], err.msg);
		if (rc < 0)
			continue;
		gpu_part *again = NULL;
		CHECK(gpu_part_get(p, want[i], &again, &err) == 0 && again == parts[i],
		      "asking twice for %d SMs gave another partition", want[i]);
		int n = gpu_part_sms(parts[i]);
		CHECK(n == (want[i] ? want[i] : total), "partition %d has %d SMs", want[i], n);
		CHECK(gpu_part_is_whole(parts[i]) == (want[i] == 0), "is_whole of %d", want[i]);
		mmf_stream s = NULL, s2 = NULL;
		rc = gpu_part_stream(parts[i], 0, &s, &err);
		CHECK(rc == 0 && s, "stream 0 of %s: %s", gpu_part_name(parts[i]), err.msg);
		if (rc < 0)
			continue;
		CHECK(gpu_part_stream(parts[i], 0, &s2, &err) == 0 && s2 == s, "stream 0 twice differs");
		CHECK(gpu_part_stream(parts[i], GPU_PART_MAX_STREAMS, &s2, &err) == -EINVAL,
		      "stream %d accepted", GPU_PART_MAX_STREAMS);

		char asked[16];
		if (want[i])
			snprintf(asked, sizeof asked, "%d", want[i]);
		else
			snprintf(asked, sizeof asked, "all");
		printf("partition %s (--sms %s):\n", gpu_part_name(parts[i]), asked);
		run_on((cudaStream_t)s, &sets[i]);
		have[i] = 1;
		print_ids("kernel <<<>>> on its stream", &sets[i]);
		CHECK(sets[i].n == n, "%s: the kernel ran on %d distinct SMs, expected %d", gpu_part_name(parts[i]),
		      sets[i].n, n);
		time_on((cudaStream_t)s, gpu_part_name(parts[i]));
	}

	/* Partitions take groups from the front, so each holds the smaller ones. */
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 4; j++)
			if (have[i] && have[j]) {
				CHECK(subset(&sets[i], &sets[j]), "the SMs of %s are not all in %s",
				      gpu_part_name(parts[i]), gpu_part_name(parts[j]));
				printf("  %s and %s share %d SMs\n", gpu_part_name(parts[i]), gpu_part_name(parts[j]),
				       common(&sets[i], &sets[j]));
			}

	/* A graph captured on a partition stream keeps the partition. */
	if (have[0] && have[3]) {
		mmf_stream s = NULL, whole = NULL;
		CHECK(gpu_part_stream(parts[0], 1, &s, &err) == 0, "stream 1: %s", err.msg);
		CHECK(gpu_part_stream(parts[3], 0, &whole, &err) == 0, "whole stream: %s", err.msg);
		cudaGraph_t graph;
		cudaGraphExec_t exec;
		CK(cudaStreamBeginCapture((cudaStream_t)s, cudaStreamCaptureModeThreadLocal));
		CK(cudaMemsetAsync(d_ids, 0xff, (size_t)blocks * sizeof *d_ids, (cudaStream_t)s));
		int le = test_part_record_smid(d_ids, blocks, SPIN, (cudaStream_t)s);
		CHECK(le == 0, "launch during capture: %s", cudaGetErrorString((cudaError_t)le));
		CK(cudaStreamEndCapture((cudaStream_t)s, &graph));
		CK(cudaGraphInstantiate(&exec, graph, 0));
		printf("graph captured on a stream of %s:\n", gpu_part_name(parts[0]));
		for (int r = 0; r < 3; r++) {
			smset set;
			CK(cudaGraphLaunch(exec, (cudaStream_t)s));
			CK(cudaMemcpyAsync(h_ids, d_ids, (size_t)blocks * sizeof *h_ids, cudaMemcpyDeviceToHost,
					   (cudaStream_t)s));
			CK(cudaStreamSynchronize((cudaStream_t)s));
			count_ids(&set);
			char what[64];
			snprintf(what, sizeof what, "replay %d on the same stream", r + 1);
			print_ids(what, &set);
			CHECK(set.unwritten == 0, "replay %d: %d blocks wrote no SM id", r + 1, set.unwritten);
			CHECK(set.n == g && subset(&set, &sets[0]), "replay %d ran on %d SMs, expected the partition's %d",
			      r + 1, set.n, g);
		}
		/* Where a graph's kernels run when it is launched on another
		 * context's stream: reported, not required. */
		smset set;
		CK(cudaGraphLaunch(exec, (cudaStream_t)whole));
		CK(cudaMemcpyAsync(h_ids, d_ids, (size_t)blocks * sizeof *h_ids, cudaMemcpyDeviceToHost,
				   (cudaStream_t)whole));
		CK(cudaStreamSynchronize((cudaStream_t)whole));
		count_ids(&set);
		print_ids("replay on the whole-GPU stream (report only)", &set);
		CK(cudaGraphExecDestroy(exec));
		CK(cudaGraphDestroy(graph));
	}

	/* Spans (graph-split): the second group alone, and every SM from the
	 * second group on, are disjoint from the first group. */
	if (have[0] && gpu_parts_groups(p) >= 3) {
		int from[2] = {g, g}, len[2] = {g, 0};
		for (int i = 0; i < 2; i++) {
			gpu_part *t = NULL, *again = NULL;
			mmf_stream s = NULL;
			memset(&err, 0, sizeof err);
			rc = gpu_part_get_span(p, from[i], len[i], &t, &err);
			CHECK(rc == 0 && t, "gpu_part_get_span(%d, %d): %s", from[i], len[i], err.msg);
			if (rc < 0)
				continue;
			CHECK(gpu_part_get_span(p, from[i], len[i], &again, &err) == 0 && again == t,
			      "asking twice for span (%d, %d) gave another partition", from[i], len[i]);
			int want_n = len[i] ? len[i] : total - from[i];
			CHECK(gpu_part_sms(t) == want_n, "span (%d, %d) has %d SMs, expected %d", from[i], len[i],
			      gpu_part_sms(t), want_n);
			CHECK(gpu_part_stream(t, 0, &s, &err) == 0, "span stream: %s", err.msg);
			smset set;
			run_on((cudaStream_t)s, &set);
			char what[64];
			snprintf(what, sizeof what, "span %s", gpu_part_name(t));
			print_ids(what, &set);
			CHECK(set.n == want_n, "%s: the kernel ran on %d distinct SMs, expected %d", gpu_part_name(t), set.n,
			      want_n);
			CHECK(common(&set, &sets[0]) == 0, "%s shares %d SMs with %s", gpu_part_name(t),
			      common(&set, &sets[0]), gpu_part_name(parts[0]));
		}
		gpu_part *t = NULL;
		CHECK(gpu_part_get_span(p, g + 1, g, &t, &err) == -EINVAL && !t, "a span from SM %d was accepted", g + 1);
		CHECK(gpu_part_get_span(p, g, g + 1, &t, &err) == -EINVAL && !t, "a span of %d SMs was accepted", g + 1);
		CHECK(gpu_part_get_span(p, 0, 0, &t, &err) == -EINVAL && !t, "span (0, 0) was accepted");
		printf("  span errors: %s\n", err.msg);
	}

	printf("errors:\n");
	test_errors(p);

	/* Closing gives the SMs back: a new gpu_parts splits and runs again. */
	gpu_parts_close(p);
	p = NULL;
	memset(&err, 0, sizeof err);
	rc = gpu_parts_open(0, &p, &err);
	CHECK(rc == 0, "reopen: %s", err.msg);
	if (rc == 0 && gpu_parts_groups(p) > 0) {
		gpu_part *t = NULL;
		mmf_stream s = NULL;
		smset set;
		CHECK(gpu_part_get(p, g, &t, &err) == 0 && gpu_part_stream(t, 3, &s, &err) == 0, "after reopen: %s",
		      err.msg);
		if (s) {
			run_on((cudaStream_t)s, &set);
			CHECK(set.n == g, "after reopen the kernel ran on %d SMs, expected %d", set.n, g);
			printf("reopened: %s ran on %d SMs\n", gpu_part_name(t), set.n);
		}
	}
	gpu_parts_close(p);
	CK(cudaFree(d_ids));
	free(h_ids);
	return test_done("test_part");
}
