/* Per-block GPU timelines (trace.h). */
#include "config.h"
#include "trace.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gpu_trace {
	mmf_trace_rec *dbuf;
	unsigned cap, n, claimed;
	mmf_trace_rec *rec;	/* host copy, sorted by start after analyse */
	int *launch;		/* per record: its launch */
};

int gpu_trace_new(unsigned cap, gpu_trace **out, mmf_err *err)
{
	gpu_trace *t = calloc(1, sizeof *t);
	if (!t || !(t->rec = malloc((size_t)cap * sizeof *t->rec)) || !(t->launch = malloc((size_t)cap * sizeof(int)))) {
		gpu_trace_free(t);
		return mmf_err_set(err, -ENOMEM, "trace: out of memory for %u records", cap);
	}
	t->cap = cap;
	if (cudaMalloc((void **)&t->dbuf, (size_t)t->cap * sizeof *t->dbuf) != cudaSuccess) {
		gpu_trace_free(t);
		return mmf_err_set(err, -ENOMEM, "trace: cannot allocate %u records on the GPU", cap);
	}
	*out = t;
	return 0;
}

int gpu_trace_from_records(const mmf_trace_rec *r, unsigned n, gpu_trace **out, mmf_err *err)
{
	gpu_trace *t = calloc(1, sizeof *t);
	if (!t || !(t->rec = malloc((size_t)(n ? n : 1) * sizeof *t->rec)) ||
	    !(t->launch = malloc((size_t)(n ? n : 1) * sizeof(int)))) {
		gpu_trace_free(t);
		return mmf_err_set(err, -ENOMEM, "trace: out of memory for %u records", n);
	}
	memcpy(t->rec, r, (size_t)n * sizeof *r);
	t->cap = t->n = t->claimed = n;
	*out = t;
	return 0;
}

void gpu_trace_free(gpu_trace *t)
{
	if (!t)
		return;
	if (t->dbuf)
		cudaFree(t->dbuf);
	free(t->rec);
	free(t->launch);
	free(t);
}

int gpu_trace_on(gpu_trace *t, cudaStream_t s, mmf_err *err)
{
	mmf_trace_ctl c = {t->dbuf, t->cap};
	if (cudaStreamSynchronize(s) != cudaSuccess || mmf_trace_set(&c) < 0)
		return mmf_err_set(err, -EIO, "trace: cannot turn tracing on: %s", cudaGetErrorString(cudaGetLastError()));
	return 0;
}

int gpu_trace_off(gpu_trace *t, cudaStream_t s, mmf_err *err)
{
	mmf_trace_ctl off = {NULL, 0};
	if (cudaStreamSynchronize(s) != cudaSuccess || mmf_trace_set(&off) < 0)
		return mmf_err_set(err, -EIO, "trace: cannot turn tracing off: %s", cudaGetErrorString(cudaGetLastError()));
	t->claimed = mmf_trace_slots();
	t->n = t->claimed < t->cap ? t->claimed : t->cap;
	if (t->n && cudaMemcpy(t->rec, t->dbuf, (size_t)t->n * sizeof *t->rec, cudaMemcpyDeviceToHost) != cudaSuccess)
		return mmf_err_set(err, -EIO, "trace: cannot read the records: %s", cudaGetErrorString(cudaGetLastError()));
	return 0;
}

typedef struct span {
	unsigned long long t0, t1;
} span;

static int span_cmp(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return (x->t0 > y->t0) - (x->t0 < y->t0);
}

/* Busy time of one SM: the union of its intervals. */
static double union_ns(span *s, int n)
{
	if (!n)
		return 0;
	qsort(s, (size_t)n, sizeof *s, span_cmp);
	double busy = 0;
	unsigned long long a = s[0].t0, b = s[0].t1;
	for (int i = 1; i < n; i++) {
		if (s[i].t0 > b) {
			busy += (double)(b - a);
			a = s[i].t0, b = s[i].t1;
		} else if (s[i].t1 > b) {
			b = s[i].t1;
		}
	}
	return busy + (double)(b - a);
}

/* The tower a record's block worked for. */
static int rec_tower(const mmf_trace_rec *r, const trace_launch *l)
{
	if (r->part == 1)
		return TRACE_IMAGE;
	if (r->part == 2)
		return TRACE_TEXT;
	return r->part == 3 ? TRACE_BOTH : l->tower;
}

int gpu_trace_analyse(gpu_trace *t, const trace_launch *l, int nl, int nsm, trace_util *u, mmf_err *err)
{
	memset(u, 0, sizeof *u);
	if (t->claimed > t->cap)
		return mmf_err_set(err, -ENOSPC, "trace: %u records for a buffer of %u", t->claimed, t->cap);
	unsigned k = 0;
	for (int i = 0; i < nl; i++) {
		if (k >= t->n)
			return mmf_err_set(err, -EINVAL, "trace: records end at launch %d of %d ('%s')", i, nl, l[i].name);
		unsigned want = t->rec[k].grid * (unsigned)l[i].per_block;
		if (k + want > t->n)
			return mmf_err_set(err, -EINVAL, "trace: launch %d ('%s') of grid %u has only %u of its %u records", i,
					   l[i].name, t->rec[k].grid, t->n - k, want);
		for (unsigned j = k; j < k + want; j++) {
			if (t->rec[j].grid != t->rec[k].grid)
				return mmf_err_set(err, -EINVAL,
						   "trace: launch %d ('%s'): a record of grid %u among grid %u: the records do not "
						   "follow the launches",
						   i, l[i].name, t->rec[j].grid, t->rec[k].grid);
			t->launch[j] = i;
		}
		k += want;
	}
	if (k != t->n)
		return mmf_err_set(err, -EINVAL, "trace: %u records left after the %d launches", t->n - k, nl);
	if (!t->n)
		return 0;
	unsigned long long lo = ~0ull, hi = 0;
	int maxsm = 0;
	for (unsigned i = 0; i < t->n; i++) {
		lo = t->rec[i].t0 < lo ? t->rec[i].t0 : lo;
		hi = t->rec[i].t1 > hi ? t->rec[i].t1 : hi;
		maxsm = (int)t->rec[i].sm > maxsm ? (int)t->rec[i].sm : maxsm;
	}
	span *s = malloc((size_t)t->n * sizeof *s);
	if (!s)
		return mmf_err_set(err, -ENOMEM, "trace: out of memory");
	double busy[3] = {0, 0, 0};
	for (int sm = 0; sm <= maxsm; sm++)
		for (int w = -1; w < 2; w++) {	/* -1: any tower */
			int n = 0;
			for (unsigned i = 0; i < t->n; i++) {
				const mmf_trace_rec *r = &t->rec[i];
				int tw = rec_tower(r, &l[t->launch[i]]);
				if ((int)r->sm == sm && (w < 0 || tw == w || tw == TRACE_BOTH))
					s[n++] = (span){r->t0, r->t1};
			}
			if (w < 0 && n)
				u->sms_seen++;
			busy[w + 1] += union_ns(s, n);
		}
	free(s);
	double denom = (double)nsm * (double)(hi - lo);
	u->span_us = (double)(hi - lo) / 1e3;
	u->records = (int)t->n;
	if (denom > 0) {
		u->total = busy[0] / denom;
		u->image = busy[1] / denom;
		u->text = busy[2] / denom;
	}
	return 0;
}

int trace_launches_chains(const chain *img, const chain *txt, int two_streams, trace_launch **out)
{
	const chain *c[2] = {img, txt};
	int ni = img ? img->nops : 0, nt = txt ? txt->nops : 0, n = ni + nt;
	trace_launch *l = calloc((size_t)(n ? n : 1), sizeof *l);
	if (!l)
		return -ENOMEM;
	for (int k = 0; k < n; k++) {
		int t, i;
		if (two_streams)
			chain_turn(ni, nt, k, &t, &i);
		else
			t = k >= ni, i = t ? k - ni : k;
		snprintf(l[k].name, sizeof l[k].name, "%s", c[t]->ops[i].name);
		l[k].tower = t, l[k].per_block = 1;
	}
	*out = l;
	return n;
}

/* A JSON string through jansson's escaping. */
static void json_str(FILE *fp, const char *s)
{
	json_t *j = json_string(s);
	if (!j || json_dumpf(j, fp, JSON_ENCODE_ANY) < 0)
		fputs("\"(not UTF-8)\"", fp);
	json_decref(j);
}

int gpu_trace_launch_start(const gpu_trace *t, int i, unsigned long long *start)
{
	int found = 0;
	for (unsigned j = 0; j < t->n; j++)
		if (t->launch[j] == i && (!found || t->rec[j].t0 < *start))
			*start = t->rec[j].t0, found = 1;
	return found ? 0 : -1;
}

/* One step's launches (row of pid 1) and block records (pid 2 rows), on a
 * clock starting at lo; launch names get the prefix (may be ""). */
static void write_step(FILE *fp, const gpu_trace *t, const trace_launch *l, int nl, unsigned long long lo,
		       const char *prefix, int launch_base)
{
	static const char *const towers[3] = {"image", "text", "image+text"};
	char nm[160];
	/* one interval per launch: its first block's start to its last block's end */
	for (int i = 0; i < nl; i++) {
		unsigned long long a = ~0ull, b = 0;
		for (unsigned j = 0; j < t->n; j++)
			if (t->launch[j] == i) {
				a = t->rec[j].t0 < a ? t->rec[j].t0 : a;
				b = t->rec[j].t1 > b ? t->rec[j].t1 : b;
			}
		if (b < a)
			continue;
		snprintf(nm, sizeof nm, "%s%s", prefix, l[i].name);
		fputs(",\n{\"name\": ", fp);
		json_str(fp, nm);
		fprintf(fp, ", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": 1, \"tid\": 0, \"ts\": %.3f, \"dur\": %.3f, "
			"\"args\": {\"launch\": %d}}", towers[l[i].tower], (double)(a - lo) / 1e3, (double)(b - a) / 1e3,
			launch_base + i);
	}
	for (unsigned j = 0; j < t->n; j++) {
		const mmf_trace_rec *r = &t->rec[j];
		const trace_launch *L = &l[t->launch[j]];
		int tw = rec_tower(r, L);
		fputs(",\n{\"name\": ", fp);
		json_str(fp, L->name);
		fprintf(fp, ", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": 2, \"tid\": %u, \"ts\": %.3f, \"dur\": %.3f, "
			"\"args\": {\"tower\": \"%s\", \"block\": %u, \"grid\": %u, \"launch\": %d}}",
			towers[tw], r->sm, (double)(r->t0 - lo) / 1e3, (double)(r->t1 - r->t0) / 1e3, towers[tw], r->block,
			r->grid, launch_base + t->launch[j]);
#ifdef MMF_PROBE
		/* Probe builds: the wait before t0 and the marks after it, in us,
		 * as a second event's args (kept out of the block event so that
		 * its format is the same in every build). */
		fprintf(fp, ",\n{\"name\": \"probe\", \"ph\": \"i\", \"s\": \"t\", \"pid\": 9, \"tid\": %u, \"ts\": %.3f, "
			"\"args\": {\"launch\": %d, \"wait\": %.3f, \"ph\": [%.3f, %.3f, %.3f, %.3f]}}",
			r->sm, (double)(r->t0 - lo) / 1e3, launch_base + t->launch[j], r->wait_ns / 1e3, r->ph[0] / 1e3,
			r->ph[1] / 1e3, r->ph[2] / 1e3, r->ph[3] / 1e3);
#endif
	}
}

/* Steps st[0..n) (each analysed with its launches), extras x, to fp. */
static void write_chrome(FILE *fp, const trace_step *st, int n, const trace_extra *x, int nx, const char *title)
{
	unsigned long long lo = ~0ull;
	int maxsm = 0;
	for (int k = 0; k < n; k++)
		for (unsigned i = 0; i < st[k].t->n; i++) {
			maxsm = (int)st[k].t->rec[i].sm > maxsm ? (int)st[k].t->rec[i].sm : maxsm;
			lo = st[k].t->rec[i].t0 < lo ? st[k].t->rec[i].t0 : lo;
		}
	for (int i = 0; i < nx; i++)
		lo = x[i].t0 < lo ? x[i].t0 : lo;
	fputs("{\"displayTimeUnit\": \"ns\", \"otherData\": {\"title\": ", fp);
	json_str(fp, title);
	fputs("},\n\"traceEvents\": [\n", fp);
	fprintf(fp, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": \"launches (%s)\"}}",
		n > 1 ? "in order, step by step" : "one stream");
	fputs(",\n{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 2, \"args\": {\"name\": \"SMs (block records)\"}}", fp);
	for (int sm = 0; sm <= maxsm; sm++)
		fprintf(fp, ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 2, \"tid\": %d, \"args\": {\"name\": \"SM %d\"}}",
			sm, sm);
	static const char *const groups[2] = {"host: CUDA runtime calls (CUPTI)", "streams: kernels (CUPTI)"};
	for (int g = TRACE_ROW_HOST; g <= TRACE_ROW_STREAM; g++) {
		int any = 0;
		for (int i = 0; i < nx && !any; i++)
			any = x[i].group == g;
		if (any)
			fprintf(fp, ",\n{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": \"%s\"}}", g,
				groups[g - TRACE_ROW_HOST]);
	}
	for (int i = 0; i < nx; i++) {
		fputs(",\n{\"name\": ", fp);
		json_str(fp, x[i].name);
		fprintf(fp, ", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": %u, \"ts\": %.3f, \"dur\": %.3f}",
			x[i].group == TRACE_ROW_HOST ? "host" : "stream", x[i].group, x[i].row,
			((double)x[i].t0 - (double)lo) / 1e3, (double)(x[i].t1 - x[i].t0) / 1e3);
	}
	int base = 0;
	for (int k = 0; k < n; k++) {
		char prefix[32] = "";
		if (n > 1)
			snprintf(prefix, sizeof prefix, "step %d: ", k);
		write_step(fp, st[k].t, st[k].l, st[k].nl, lo, prefix, base);
		base += st[k].nl;
	}
	fputs("\n]}\n", fp);
}

int gpu_trace_write_chrome(const gpu_trace *t, const trace_launch *l, int nl, const trace_extra *x, int nx,
			   const char *title, const char *path, mmf_err *err)
{
	FILE *fp = fopen(path, "w");
	if (!fp)
		return mmf_err_set(err, -errno, "%s: cannot write: %s", path, strerror(errno));
	trace_step st = {t, l, nl};
	write_chrome(fp, &st, 1, x, nx, title);
	if (fclose(fp))
		return mmf_err_set(err, -EIO, "%s: cannot write: %s", path, strerror(errno));
	return 0;
}

char *gpu_trace_chrome_steps(const trace_step *st, int n, const char *title, mmf_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	if (!fp) {
		mmf_err_set(err, -ENOMEM, "trace: out of memory for the JSON");
		return NULL;
	}
	write_chrome(fp, st, n, NULL, 0, title);
	if (fclose(fp) || !buf) {
		free(buf);
		mmf_err_set(err, -ENOMEM, "trace: out of memory for the JSON");
		return NULL;
	}
	return buf;
}

const mmf_trace_rec *gpu_trace_records(const gpu_trace *t, unsigned *n)
{
	*n = t->n;
	return t->rec;
}
