/* SM partitions through green contexts. The device's SM resource is split
 * once (cuDevSmResourceSplitByCount) into equal groups of the architecture's
 * minimum; a partition combines a prefix of those groups into one resource
 * descriptor and a green context. Splitting again would hand out SMs that an
 * earlier split already gave away, so the groups are kept for the life of
 * the gpu_parts. */
#include "config.h"
#include "gpu_part.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Every driver function used here, with the CUDA version whose ABI the
 * typedef in cudaTypedefs.h describes. Looked up through the runtime so the
 * program does not need libcuda to start. */
#define GPU_PART_CU_SYMS(X)                   \
	X(cuGetErrorName, 6000)               \
	X(cuGetErrorString, 6000)             \
	X(cuInit, 2000)                       \
	X(cuDriverGetVersion, 2020)           \
	X(cuDeviceGet, 2000)                  \
	X(cuDeviceGetName, 2000)              \
	X(cuDeviceGetAttribute, 2000)         \
	X(cuDevicePrimaryCtxRetain, 7000)     \
	X(cuDevicePrimaryCtxRelease, 11000)   \
	X(cuCtxPushCurrent, 4000)             \
	X(cuCtxPopCurrent, 4000)              \
	X(cuDeviceGetDevResource, 12040)      \
	X(cuDevSmResourceSplitByCount, 12040) \
	X(cuDevResourceGenerateDesc, 12040)   \
	X(cuGreenCtxCreate, 12040)            \
	X(cuGreenCtxDestroy, 12040)           \
	X(cuCtxFromGreenCtx, 12040)           \
	X(cuGreenCtxGetDevResource, 12040)    \
	X(cuGreenCtxStreamCreate, 12050)      \
	X(cuStreamSynchronize, 2000)          \
	X(cuStreamDestroy, 4000)

/* cuda.h #defines some names to their _v2 forms; the field takes that form
 * at declaration and at every use alike, while # and ## see the base name. */
static struct cu_api {
#define X(name, ver) PFN_##name##_v##ver name;
	GPU_PART_CU_SYMS(X)
#undef X
} cu;

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;
static int cu_rc;
static char cu_msg[MMF_ERR_MSG_MAX];

/* Fills *fn with driver function `name` at ABI version `ver`; on failure
 * leaves the reason in cu_msg. */
static int cu_sym(const char *name, int ver, void **fn)
{
	enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
	cudaError_t e = cudaGetDriverEntryPointByVersion(name, fn, (unsigned)ver, cudaEnableDefault, &q);
	if (e != cudaSuccess) {
		snprintf(cu_msg, sizeof cu_msg, "no usable CUDA driver: cudaGetDriverEntryPointByVersion(\"%s\", %d) failed: %s: %s",
			 name, ver, cudaGetErrorName(e), cudaGetErrorString(e));
		return e == cudaErrorInvalidValue ? -ENOTSUP : -ENODEV;
	}
	if (q != cudaDriverEntryPointSuccess || !*fn) {
		snprintf(cu_msg, sizeof cu_msg, "the CUDA driver has no %s for CUDA %d.%d (%s); green contexts need a "
			 "driver for CUDA 12.5 or later", name, ver / 1000, ver % 1000 / 10,
			 q == cudaDriverEntryPointVersionNotSufficent ? "driver too old" : "symbol not found");
		return -ENOTSUP;
	}
	return 0;
}

static void cu_load(void)
{
	void *fn = NULL;
#define X(name, ver)                                          \
	if ((cu_rc = cu_sym(#name, ver, &fn)) < 0)            \
		return;                                       \
	memcpy(&cu.name, &fn, sizeof fn);
	GPU_PART_CU_SYMS(X)
#undef X
}

static int cu_errno(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_INVALID_DEVICE:
	case CUDA_ERROR_STUB_LIBRARY:
		return -ENODEV;
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDA_ERROR_NOT_SUPPORTED:
	case CUDA_ERROR_INVALID_RESOURCE_TYPE:
	case CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION:
		return -ENOTSUP;
	case CUDA_ERROR_INVALID_VALUE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int cu_check(mmf_err *err, const char *call, CUresult r)
{
	if (r == CUDA_SUCCESS)
		return 0;
	const char *name = NULL, *str = NULL;
	if (cu.cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
		name = "unknown CUresult";
	if (cu.cuGetErrorString(r, &str) != CUDA_SUCCESS || !str)
		str = "no description";
	return mmf_err_set(err, cu_errno(r), "%s failed: %s (%d): %s", call, name, (int)r, str);
}

/* CU(err, cuFoo, args...) calls cuFoo through the table and returns 0 or a
 * negative errno with "cuFoo failed: CUDA_ERROR_X (n): text" in err. */
#define CU(err, fn, ...) cu_check((err), #fn, cu.fn(__VA_ARGS__))

static int rt_check(mmf_err *err, const char *call, cudaError_t e)
{
	if (e == cudaSuccess)
		return 0;
	return mmf_err_set(err, e == cudaErrorMemoryAllocation ? -ENOMEM : -EIO, "%s failed: %s (%d): %s",
			   call, cudaGetErrorName(e), (int)e, cudaGetErrorString(e));
}

struct gpu_part {
	int sms;
	int whole;
	CUgreenCtx gctx;	/* NULL for the whole GPU */
	CUcontext ctx;		/* cuCtxFromGreenCtx(gctx), or the primary context */
	CUstream streams[GPU_PART_MAX_STREAMS];
	char name[32];
};

struct gpu_parts {
	int device;
	CUdevice dev;
	char name[256];
	int total_sms, granularity, ngroups, uniform;
	CUdevResource whole;
	CUdevResource *groups;		/* the one split, ngroups long */
	CUdevResource remainder;
	int *sizes;			/* sizes[k]: SMs in groups 0..k, the valid partitions */
	CUcontext primary;		/* retained while p lives */
	gpu_part **cache;		/* [0] whole GPU, [k] the first k groups */
	gpu_part **rest;		/* [k]: every SM but the first k groups' */
	gpu_part **spans;		/* [i * (ngroups + 1) + j]: groups i..j-1 */
};

const char *gpu_parts_device_name(const gpu_parts *p) { return p->name; }
int gpu_parts_total_sms(const gpu_parts *p) { return p->total_sms; }
int gpu_parts_granularity(const gpu_parts *p) { return p->granularity; }
int gpu_parts_groups(const gpu_parts *p) { return p->ngroups; }
int gpu_parts_remainder_sms(const gpu_parts *p)
{
	return p->remainder.type == CU_DEV_RESOURCE_TYPE_SM ? (int)p->remainder.sm.smCount : 0;
}
int gpu_part_sms(const gpu_part *p) { return p->sms; }
int gpu_part_is_whole(const gpu_part *p) { return p->whole; }
const char *gpu_part_name(const gpu_part *p) { return p->name; }

/* The SM count the split is asked for: the minimum partition rounded up to
 * the co-scheduling alignment. cuDevSmResourceSplitByCount may round it up
 * further; the groups it returns are the truth. */
static unsigned split_count(const CUdevSmResource *sm)
{
	unsigned min = sm->minSmPartitionSize ? sm->minSmPartitionSize : 1;
	unsigned align = sm->smCoscheduledAlignment ? sm->smCoscheduledAlignment : 1;
	return (min + align - 1) / align * align;
}

int gpu_parts_open(int device, gpu_parts **out, mmf_err *err)
{
	*out = NULL;
	pthread_once(&cu_once, cu_load);
	if (cu_rc < 0)
		return mmf_err_set(err, cu_rc, "%s", cu_msg);

	gpu_parts *p = calloc(1, sizeof *p);
	if (!p)
		return mmf_err_set(err, -ENOMEM, "gpu_parts: out of memory");
	p->device = device;
	int rc, count = 0, drv = 0, cc_major = 0, cc_minor = 0;
	if ((rc = CU(err, cuInit, 0)) < 0)
		goto fail;
	if ((rc = CU(err, cuDriverGetVersion, &drv)) < 0)
		goto fail;
	if (drv < 12050) {
		rc = mmf_err_set(err, -ENOTSUP, "CUDA driver %d.%d: green-context partitions need a driver for CUDA 12.5 or later",
				 drv / 1000, drv % 1000 / 10);
		goto fail;
	}
	if ((rc = CU(err, cuDeviceGet, &p->dev, device)) < 0) {
		mmf_err_prefix(err, "CUDA device %d", device);
		goto fail;
	}
	if ((rc = CU(err, cuDeviceGetName, p->name, (int)sizeof p->name, p->dev)) < 0 ||
	    (rc = CU(err, cuDeviceGetAttribute, &count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, p->dev)) < 0 ||
	    (rc = CU(err, cuDeviceGetAttribute, &cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, p->dev)) < 0 ||
	    (rc = CU(err, cuDeviceGetAttribute, &cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, p->dev)) < 0)
		goto fail;
	/* cuGreenCtxCreate retains the primary context itself; holding it here
	 * keeps it from being built and torn down around every partition, and
	 * the whole-GPU partition runs in it. */
	if ((rc = CU(err, cuDevicePrimaryCtxRetain, &p->primary, p->dev)) < 0)
		goto fail;

	if ((rc = CU(err, cuDeviceGetDevResource, p->dev, &p->whole, CU_DEV_RESOURCE_TYPE_SM)) < 0) {
		mmf_err_prefix(err, "%s (sm_%d%d): reading its SMs for green contexts", p->name, cc_major, cc_minor);
		goto fail;
	}
	p->total_sms = (int)p->whole.sm.smCount;
	if (p->total_sms != count) {
		rc = mmf_err_set(err, -EPROTO, "%s: the SM resource has %d SMs, expected the device's %d multiprocessors",
				 p->name, p->total_sms, count);
		goto fail;
	}

	unsigned min = split_count(&p->whole.sm);
	unsigned cap = (unsigned)p->total_sms / min;
	p->groups = calloc(cap ? cap : 1, sizeof *p->groups);
	p->sizes = calloc(cap + 1, sizeof *p->sizes);
	if (!p->groups || !p->sizes) {
		rc = mmf_err_set(err, -ENOMEM, "gpu_parts: out of memory");
		goto fail;
	}
	unsigned n = cap;
	if (cap > 0) {
		if ((rc = CU(err, cuDevSmResourceSplitByCount, p->groups, &n, &p->whole, &p->remainder, 0, min)) < 0) {
			mmf_err_prefix(err, "%s (%d SMs, sm_%d%d): splitting into groups of %u SMs", p->name, p->total_sms,
				       cc_major, cc_minor, min);
			goto fail;
		}
	} else {
		/* Fewer SMs than one group: only the whole GPU is available. */
		n = 0;
		p->remainder = p->whole;
	}
	p->ngroups = (int)n;
	p->granularity = n ? (int)p->groups[0].sm.smCount : (int)min;
	p->uniform = 1;
	for (int k = 0; k < p->ngroups; k++) {
		p->sizes[k + 1] = p->sizes[k] + (int)p->groups[k].sm.smCount;
		if ((int)p->groups[k].sm.smCount != p->granularity)
			p->uniform = 0;
	}
	p->cache = calloc((size_t)p->ngroups + 1, sizeof *p->cache);
	p->rest = calloc((size_t)p->ngroups + 1, sizeof *p->rest);
	p->spans = calloc(((size_t)p->ngroups + 1) * ((size_t)p->ngroups + 1), sizeof *p->spans);
	if (!p->cache || !p->rest || !p->spans) {
		rc = mmf_err_set(err, -ENOMEM, "gpu_parts: out of memory");
		goto fail;
	}
	*out = p;
	return 0;
fail:
	gpu_parts_close(p);
	return rc;
}

static void part_free(gpu_part *t)
{
	if (!t)
		return;
	for (int i = 0; i < GPU_PART_MAX_STREAMS; i++) {
		if (!t->streams[i])
			continue;
		/* The green context must outlive work on its streams. */
		cu.cuStreamSynchronize(t->streams[i]);
		if (t->whole)
			cudaStreamDestroy((cudaStream_t)t->streams[i]);
		else
			cu.cuStreamDestroy(t->streams[i]);
	}
	if (t->gctx)
		cu.cuGreenCtxDestroy(t->gctx);
	free(t);
}

void gpu_parts_close(gpu_parts *p)
{
	if (!p)
		return;
	if (p->cache)
		for (int k = 0; k <= p->ngroups; k++)
			part_free(p->cache[k]);
	if (p->rest)
		for (int k = 0; k <= p->ngroups; k++)
			part_free(p->rest[k]);
	if (p->spans)
		for (int k = 0; k < (p->ngroups + 1) * (p->ngroups + 1); k++)
			part_free(p->spans[k]);
	if (p->primary)
		cu.cuDevicePrimaryCtxRelease(p->dev);
	free(p->cache);
	free(p->rest);
	free(p->spans);
	free(p->groups);
	free(p->sizes);
	free(p);
}

/* Appends to buf like snprintf, keeping count of what it wanted to write. */
__attribute__((format(printf, 4, 5)))
static void put(char *buf, size_t len, int *w, const char *fmt, ...)
{
	size_t at = (size_t)*w < len ? (size_t)*w : len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(len ? buf + at : NULL, len - at, fmt, ap);
	va_end(ap);
	if (n > 0)
		*w += n;
}

int gpu_parts_valid_list(const gpu_parts *p, char *buf, size_t len)
{
	int n = p->ngroups, w = 0;
	if (len)
		buf[0] = '\0';
	if (n == 0) {
		put(buf, len, &w, "only 'all'");
	} else if (p->uniform && n > 5) {
		/* An arithmetic series: the first three and the last say it all. */
		put(buf, len, &w, "%d, %d, %d, ..., %d, or 'all'", p->sizes[1], p->sizes[2], p->sizes[3], p->sizes[n]);
	} else {
		for (int k = 1; k <= n; k++)
			put(buf, len, &w, "%d, ", p->sizes[k]);
		put(buf, len, &w, "or 'all'");
	}
	return w;
}

/* The message for an SM count `what` (as the user wrote it) that names no
 * partition. */
static int bad_sms(const gpu_parts *p, const char *what, const char *why, mmf_err *err)
{
	char list[256];
	gpu_parts_valid_list(p, list, sizeof list);
	if (p->ngroups == 0)
		return mmf_err_set(err, -EINVAL, "--sms %s: %son %s (%d SMs) no partition can be made (the smallest is %d SMs): %s",
				   what, why, p->name, p->total_sms, p->granularity, list);
	if (p->uniform)
		return mmf_err_set(err, -EINVAL, "--sms %s: %son %s (%d SMs) partitions come in multiples of %d: %s",
				   what, why, p->name, p->total_sms, p->granularity, list);
	return mmf_err_set(err, -EINVAL, "--sms %s: %son %s (%d SMs) partitions come in sizes %s",
			   what, why, p->name, p->total_sms, list);
}

/* Index into sizes[] / cache[] for a valid count, else -1. */
static int sms_index(const gpu_parts *p, int sms)
{
	if (sms == 0)
		return 0;
	for (int k = 1; k <= p->ngroups; k++)
		if (p->sizes[k] == sms)
			return k;
	return -1;
}

int gpu_parts_check(const gpu_parts *p, int sms, mmf_err *err)
{
	if (sms_index(p, sms) >= 0)
		return 0;
	char what[16];
	snprintf(what, sizeof what, "%d", sms);
	const char *why = sms < 0 ? "a negative count; " : sms > p->total_sms ? "more SMs than the device has; " : "";
	return bad_sms(p, what, why, err);
}

int gpu_parts_parse_list(const gpu_parts *p, const char *list, int *sms, int max, mmf_err *err)
{
	int n = 0;
	const char *s = list ? list : "";
	for (;;) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		while (len && isspace((unsigned char)*s))
			s++, len--;
		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		char item[32];
		if (len >= sizeof item) {
			snprintf(item, sizeof item, "%.20s...", s);
			return bad_sms(p, item, "not an SM count; ", err);
		}
		memcpy(item, s, len);
		item[len] = '\0';
		if (!len) {
			char list_[256];
			gpu_parts_valid_list(p, list_, sizeof list_);
			return mmf_err_set(err, -EINVAL, "--sms '%s': empty item %d; expected a comma-separated list of %s",
					   list ? list : "", n + 1, list_);
		}
		int v;
		if (!strcasecmp(item, "all")) {
			v = 0;
		} else {
			char *e;
			errno = 0;
			long l = strtol(item, &e, 10);
			if (*e || errno || l < 0 || l > 1 << 20)
				return bad_sms(p, item, "not an SM count; ", err);
			if (l == 0)
				return bad_sms(p, item, "write 'all' for the whole GPU; ", err);
			v = (int)l;
			if (sms_index(p, v) < 0)
				return bad_sms(p, item, v > p->total_sms ? "more SMs than the device has; " : "", err);
		}
		if (n == max)
			return mmf_err_set(err, -E2BIG, "--sms '%s': more than %d sizes", list, max);
		sms[n++] = v;
		if (!end)
			return n;
		s = end + 1;
	}
}

/* A green context over the n resources res (groups of the one split, and
 * perhaps its remainder) into t; t->sms is what the driver gave it. */
static int green_over(gpu_parts *p, CUdevResource *res, int n, gpu_part *t, mmf_err *err)
{
	CUdevResourceDesc desc;
	CUdevResource got;
	int rc;
	if ((rc = CU(err, cuDevResourceGenerateDesc, &desc, res, (unsigned)n)) < 0 ||
	    (rc = CU(err, cuGreenCtxCreate, &t->gctx, desc, p->dev, CU_GREEN_CTX_DEFAULT_STREAM)) < 0 ||
	    (rc = CU(err, cuCtxFromGreenCtx, &t->ctx, t->gctx)) < 0 ||
	    (rc = CU(err, cuGreenCtxGetDevResource, t->gctx, &got, CU_DEV_RESOURCE_TYPE_SM)) < 0)
		return rc;
	t->sms = (int)got.sm.smCount;
	return 0;
}

/* A green context over the first k groups. */
static int part_green(gpu_parts *p, int k, gpu_part *t, mmf_err *err)
{
	int rc = green_over(p, p->groups, k, t, err);
	if (rc < 0)
		return rc;
	if (t->sms != p->sizes[k])
		return mmf_err_set(err, -EPROTO, "the green context has %d SMs, expected %d (%d groups of %d)",
				   t->sms, p->sizes[k], k, p->granularity);
	return 0;
}

int gpu_part_get(gpu_parts *p, int sms, gpu_part **out, mmf_err *err)
{
	*out = NULL;
	int k = sms_index(p, sms), rc;
	if (k < 0)
		return gpu_parts_check(p, sms, err);
	if (p->cache[k]) {
		*out = p->cache[k];
		return 0;
	}
	gpu_part *t = calloc(1, sizeof *t);
	if (!t)
		return mmf_err_set(err, -ENOMEM, "gpu_part: out of memory");
	if (k == 0) {
		t->whole = 1;
		t->sms = p->total_sms;
		t->ctx = p->primary;
		snprintf(t->name, sizeof t->name, "all %d SMs", t->sms);
	} else {
		if ((rc = part_green(p, k, t, err)) < 0) {
			mmf_err_prefix(err, "%s: partition of %d SMs", p->name, sms);
			part_free(t);
			return rc;
		}
		snprintf(t->name, sizeof t->name, "%d SMs", t->sms);
	}
	p->cache[k] = t;
	*out = t;
	return 0;
}

int gpu_part_get_rest(gpu_parts *p, int sms, gpu_part **out, mmf_err *err)
{
	*out = NULL;
	int k = sms_index(p, sms), rc;
	if (k < 0)
		return gpu_parts_check(p, sms, err);
	if (k == 0)
		return mmf_err_set(err, -EINVAL, "%s: the whole GPU leaves no other SMs", p->name);
	if (p->rest[k]) {
		*out = p->rest[k];
		return 0;
	}
	int has_rem = p->remainder.type == CU_DEV_RESOURCE_TYPE_SM && p->remainder.sm.smCount > 0;
	int n = p->ngroups - k + has_rem;
	if (n == 0)
		return mmf_err_set(err, -EINVAL, "%s: a partition of %d SMs leaves no other SMs", p->name, sms);
	gpu_part *t = calloc(1, sizeof *t);
	CUdevResource *res = calloc((size_t)n, sizeof *res);
	if (!t || !res) {
		free(t), free(res);
		return mmf_err_set(err, -ENOMEM, "gpu_part: out of memory");
	}
	memcpy(res, p->groups + k, (size_t)(p->ngroups - k) * sizeof *res);
	if (has_rem)
		res[n - 1] = p->remainder;
	rc = green_over(p, res, n, t, err);
	free(res);
	if (rc < 0) {
		mmf_err_prefix(err, "%s: the SMs outside a partition of %d", p->name, sms);
		part_free(t);
		return rc;
	}
	snprintf(t->name, sizeof t->name, "the other %d SMs", t->sms);
	p->rest[k] = t;
	*out = t;
	return 0;
}

int gpu_part_get_span(gpu_parts *p, int first, int sms, gpu_part **out, mmf_err *err)
{
	*out = NULL;
	int i = sms_index(p, first), rc;
	if (first < 0 || i < 0 || (first == 0 && sms == 0))
		return mmf_err_set(err, -EINVAL, "%s: no group of SMs starts at SM %d (groups of %d)", p->name, first,
				   p->granularity);
	if (sms == 0)
		return gpu_part_get_rest(p, first, out, err);
	if (first == 0)
		return gpu_part_get(p, sms, out, err);
	int j = sms_index(p, first + sms);
	if (sms < 0 || j <= i)
		return mmf_err_set(err, -EINVAL, "%s: %d SMs from SM %d do not end at a group boundary (groups of %d, %d SMs "
				   "in groups)", p->name, sms, first, p->granularity, p->sizes[p->ngroups]);
	gpu_part **slot = &p->spans[i * (p->ngroups + 1) + j];
	if (*slot) {
		*out = *slot;
		return 0;
	}
	gpu_part *t = calloc(1, sizeof *t);
	if (!t)
		return mmf_err_set(err, -ENOMEM, "gpu_part: out of memory");
	if ((rc = green_over(p, p->groups + i, j - i, t, err)) < 0) {
		mmf_err_prefix(err, "%s: SMs %d to %d", p->name, first, first + sms - 1);
		part_free(t);
		return rc;
	}
	snprintf(t->name, sizeof t->name, "%d SMs from %d", t->sms, first);
	*slot = t;
	*out = t;
	return 0;
}

int gpu_part_stream(gpu_part *t, int idx, mmf_stream *out, mmf_err *err)
{
	*out = NULL;
	if (idx < 0 || idx >= GPU_PART_MAX_STREAMS)
		return mmf_err_set(err, -EINVAL, "partition %s: stream %d, expected 0 to %d",
				   t->name, idx, GPU_PART_MAX_STREAMS - 1);
	if (t->streams[idx]) {
		*out = t->streams[idx];
		return 0;
	}
	int rc;
	CUstream s = NULL;
	if (t->whole) {
		/* A runtime stream of the primary context, whatever context or
		 * device the calling thread has current. */
		CUcontext popped;
		if ((rc = CU(err, cuCtxPushCurrent, t->ctx)) < 0)
			goto fail;
		cudaStream_t rs = NULL;
		rc = rt_check(err, "cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&rs, cudaStreamNonBlocking));
		cu.cuCtxPopCurrent(&popped);
		if (rc < 0)
			goto fail;
		s = (CUstream)rs;
	} else {
		/* The green context's own default stream is left alone: work on a
		 * NULL stream would land in whichever context is current. */
		if ((rc = CU(err, cuGreenCtxStreamCreate, &s, t->gctx, CU_STREAM_NON_BLOCKING, 0)) < 0)
			goto fail;
	}
	t->streams[idx] = s;
	*out = s;
	return 0;
fail:
	mmf_err_prefix(err, "partition %s: stream %d", t->name, idx);
	return rc;
}
