/* CUPTI activity records of a traced iteration (cupti.h). */
#include "config.h"
#include "cupti.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CUPTI
#include <cupti.h>

#define BUF_BYTES (4u << 20)

static struct {
	cupti_ev *api, *kern;
	int napi, nkern, capi, ckern;
	int oom;
} rec;

static void CUPTIAPI buf_requested(uint8_t **buf, size_t *size, size_t *max_records)
{
	*buf = aligned_alloc(8, BUF_BYTES);
	*size = *buf ? BUF_BYTES : 0;
	*max_records = 0;
}

static cupti_ev *grow(cupti_ev **v, int *n, int *cap)
{
	if (*n == *cap) {
		int c = *cap ? 2 * *cap : 1024;
		cupti_ev *p = realloc(*v, (size_t)c * sizeof *p);
		if (!p)
			return NULL;
		*v = p, *cap = c;
	}
	cupti_ev *e = &(*v)[(*n)++];
	memset(e, 0, sizeof *e);
	return e;
}

/* The function's own name: "_Z11gemm_kernelI8gemm_cfg..." (mangled) or
 * "void gemm_kernel<...>(...)" (demangled) both give "gemm_kernel". */
static void kernel_name(const char *n, char *out, size_t len)
{
	if (!n)
		n = "kernel";
	if (n[0] == '_' && n[1] == 'Z') {
		const char *p = n + 2;
		if (*p == 'N')
			p++;
		char *end;
		long l = strtol(p, &end, 10);
		if (end != p && l > 0 && (size_t)l < len && strlen(end) >= (size_t)l) {
			snprintf(out, len, "%.*s", (int)l, end);
			return;
		}
	} else {
		const char *sp = strchr(n, ' '), *par = strchr(n, '(');
		if (sp && (!par || sp < par))
			n = sp + 1;
	}
	size_t k = strcspn(n, "<(");
	snprintf(out, len, "%.*s", (int)(k < len ? k : len - 1), n);
}

static void CUPTIAPI buf_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid)
{
	(void)ctx, (void)stream, (void)size;
	CUpti_Activity *r = NULL;
	while (cuptiActivityGetNextRecord(buf, valid, &r) == CUPTI_SUCCESS) {
		if (r->kind == CUPTI_ACTIVITY_KIND_RUNTIME) {
			const CUpti_ActivityAPI *a = (const CUpti_ActivityAPI *)r;
			cupti_ev *e = grow(&rec.api, &rec.napi, &rec.capi);
			if (!e) {
				rec.oom = 1;
				continue;
			}
			const char *name = NULL;
			if (cuptiGetCallbackName(CUPTI_CB_DOMAIN_RUNTIME_API, a->cbid, &name) != CUPTI_SUCCESS || !name)
				name = "cuda?";
			snprintf(e->name, sizeof e->name, "%s", name);
			e->t0 = a->start, e->t1 = a->end, e->id = a->threadId, e->corr = a->correlationId;
			e->sync = strstr(name, "Synchronize") != NULL;
		} else if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || r->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
			const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)r;
			cupti_ev *e = grow(&rec.kern, &rec.nkern, &rec.ckern);
			if (!e) {
				rec.oom = 1;
				continue;
			}
			kernel_name(k->name, e->name, sizeof e->name);
			e->t0 = k->start, e->t1 = k->end, e->id = k->streamId, e->corr = k->correlationId;
		}
	}
	free(buf);
}

static int cmp_start(const void *a, const void *b)
{
	const cupti_ev *x = a, *y = b;
	return (x->t0 > y->t0) - (x->t0 < y->t0);
}

static int cu(CUptiResult r, mmf_err *err, const char *what)
{
	if (r == CUPTI_SUCCESS)
		return 0;
	const char *s = NULL;
	cuptiGetResultString(r, &s);
	return mmf_err_set(err, -EIO, "CUPTI: %s: %s", what, s ? s : "error");
}

int cupti_begin(mmf_err *err)
{
	memset(&rec, 0, sizeof rec);
	int rc;
	if ((rc = cu(cuptiActivityRegisterCallbacks(buf_requested, buf_completed), err, "register callbacks")) < 0 ||
	    (rc = cu(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME), err, "enable runtime records")) < 0 ||
	    (rc = cu(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), err, "enable kernel records")) < 0)
		return rc;
	return 0;
}

int cupti_end(cupti_ev **api, int *napi, cupti_ev **kern, int *nkern, mmf_err *err)
{
	int rc = cu(cuptiActivityFlushAll(1), err, "flush");
	cuptiActivityDisable(CUPTI_ACTIVITY_KIND_RUNTIME);
	cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
	if (rc == 0 && rec.oom)
		rc = mmf_err_set(err, -ENOMEM, "CUPTI: out of memory for the records");
	if (rc < 0) {
		free(rec.api), free(rec.kern);
		memset(&rec, 0, sizeof rec);
		return rc;
	}
	qsort(rec.api, (size_t)rec.napi, sizeof *rec.api, cmp_start);
	qsort(rec.kern, (size_t)rec.nkern, sizeof *rec.kern, cmp_start);
	*api = rec.api, *napi = rec.napi, *kern = rec.kern, *nkern = rec.nkern;
	memset(&rec, 0, sizeof rec);
	return 0;
}

#else

int cupti_begin(mmf_err *err) { return mmf_err_set(err, -ENOTSUP, "this build has no CUPTI"); }

int cupti_end(cupti_ev **api, int *napi, cupti_ev **kern, int *nkern, mmf_err *err)
{
	*api = *kern = NULL, *napi = *nkern = 0;
	return mmf_err_set(err, -ENOTSUP, "this build has no CUPTI");
}

#endif
