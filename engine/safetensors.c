/* safetensors reader and writer. The reader maps the whole file read-only,
 * parses the JSON header with jansson, and validates every entry before
 * returning: header length against the file, known dtype, shape x dtype size
 * equal to the byte range, ranges inside the data section and disjoint. */
#include "config.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_file {
	char *path;
	const uint8_t *base;	/* whole file */
	size_t size;
	int mapped;
	st_tensor *tensors;
	size_t count;
	char **meta_keys, **meta_vals;
	size_t nmeta;
};

static const struct { const char *name; size_t size; } dtypes[st_dtype_max] = {
	[ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2},
	[ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
	[ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1}, [ST_U8] = {"U8", 1},
	[ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(st_dtype d) { return d < st_dtype_max ? dtypes[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return d < st_dtype_max ? dtypes[d].size : 0; }

const char *st_shape_str(const st_tensor *t, char *buf, size_t len)
{
	size_t n = 0;
	n += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < t->ndim && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? "," : "", t->shape[i]);
	if (n < len)
		snprintf(buf + n, len - n, "]");
	return buf;
}

const char *st_path(const st_file *f) { return f->path; }
size_t st_count(const st_file *f) { return f->count; }
const st_tensor *st_at(const st_file *f, size_t i) { return i < f->count ? &f->tensors[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name)
{
	for (size_t i = 0; i < f->count; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

size_t st_metadata_count(const st_file *f) { return f->nmeta; }

const char *st_metadata_at(const st_file *f, size_t i, const char **value)
{
	if (i >= f->nmeta)
		return NULL;
	*value = f->meta_vals[i];
	return f->meta_keys[i];
}

const char *st_metadata(const st_file *f, const char *key)
{
	for (size_t i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta_keys[i], key) == 0)
			return f->meta_vals[i];
	return NULL;
}

void st_close(st_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->count; i++)
		free((char *)f->tensors[i].name);
	free(f->tensors);
	for (size_t i = 0; i < f->nmeta; i++) {
		free(f->meta_keys[i]);
		free(f->meta_vals[i]);
	}
	free(f->meta_keys);
	free(f->meta_vals);
	if (f->mapped && f->base)
		munmap((void *)f->base, f->size);
	free(f->path);
	free(f);
}

static int parse_dtype(const char *s, st_dtype *out)
{
	for (int i = 0; i < st_dtype_max; i++)
		if (strcmp(s, dtypes[i].name) == 0) {
			*out = (st_dtype)i;
			return 0;
		}
	return -1;
}

/* A JSON integer in [0, INT64_MAX]; jansson's json_int_t is long long. */
static int json_u64(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_metadata(st_file *f, json_t *meta, mmf_err *err)
{
	if (!json_is_object(meta))
		return mmf_err_set(err, -EINVAL, "%s: __metadata__ is not an object of strings", f->path);
	size_t n = json_object_size(meta);
	f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
	f->meta_vals = calloc(n ? n : 1, sizeof *f->meta_vals);
	if (!f->meta_keys || !f->meta_vals)
		return mmf_err_set(err, -ENOMEM, "%s: out of memory for metadata", f->path);
	const char *k;
	json_t *v;
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v))
			return mmf_err_set(err, -EINVAL, "%s: __metadata__ key '%s' is not a string", f->path, k);
		f->meta_keys[f->nmeta] = strdup(k);
		f->meta_vals[f->nmeta] = strdup(json_string_value(v));
		f->nmeta++;
		if (!f->meta_keys[f->nmeta - 1] || !f->meta_vals[f->nmeta - 1])
			return mmf_err_set(err, -ENOMEM, "%s: out of memory for metadata", f->path);
	}
	return 0;
}

static int parse_tensor(st_file *f, const char *name, json_t *e, uint64_t data_size,
			st_tensor *t, mmf_err *err)
{
	const char *p = f->path;
	if (!json_is_object(e))
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': entry is not a JSON object", p, name);
	const char *k;
	json_t *v;
	json_object_foreach(e, k, v) {
		if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
			return mmf_err_set(err, -EINVAL, "%s: tensor '%s': unknown field '%s' (expected dtype, shape, data_offsets)", p, name, k);
	}
	json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
	       *jo = json_object_get(e, "data_offsets");
	if (!json_is_string(jd))
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': missing or non-string dtype", p, name);
	if (parse_dtype(json_string_value(jd), &t->dtype) < 0)
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': unknown dtype '%s' (expected F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL)",
				   p, name, json_string_value(jd));
	if (!json_is_array(js))
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': missing or non-array shape", p, name);
	if (json_array_size(js) > ST_MAX_DIMS)
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': %zu dimensions, at most %d supported", p, name, json_array_size(js), ST_MAX_DIMS);
	t->ndim = (int)json_array_size(js);
	/* nelem is bounded by the data section, so overflow is caught by
	 * checking each product against it; a zero dimension anywhere makes
	 * the tensor empty whatever the others are. */
	uint64_t nelem = 1;
	int zero = 0;
	for (int i = 0; i < t->ndim; i++) {
		uint64_t d;
		if (json_u64(json_array_get(js, (size_t)i), &d) < 0)
			return mmf_err_set(err, -EINVAL, "%s: tensor '%s': shape[%d] is not a non-negative integer", p, name, i);
		t->shape[i] = (int64_t)d;
		zero |= d == 0;
	}
	for (int i = 0; i < t->ndim && !zero; i++) {
		uint64_t d = (uint64_t)t->shape[i];
		if (d > data_size || nelem > data_size / d)
			return mmf_err_set(err, -EINVAL, "%s: tensor '%s': shape is larger than the %" PRIu64 "-byte data section", p, name, data_size);
		nelem *= d;
	}
	t->nelem = zero ? 0 : nelem;
	if (!json_is_array(jo) || json_array_size(jo) != 2)
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': data_offsets must be an array [begin, end]", p, name);
	if (json_u64(json_array_get(jo, 0), &t->begin) < 0 || json_u64(json_array_get(jo, 1), &t->end) < 0)
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': data_offsets are not non-negative integers", p, name);
	if (t->begin > t->end)
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] end before they begin", p, name, t->begin, t->end);
	if (t->end > data_size)
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] go past the %" PRIu64 "-byte data section",
				   p, name, t->begin, t->end, data_size);
	uint64_t want = t->nelem * st_dtype_size(t->dtype);	/* <= 8 * data_size: no overflow */
	if (want != t->end - t->begin) {
		char sh[128];
		return mmf_err_set(err, -EINVAL, "%s: tensor '%s': shape %s of %s needs %" PRIu64 " bytes, data_offsets give %" PRIu64,
				   p, name, st_shape_str(t, sh, sizeof sh), st_dtype_name(t->dtype), want, t->end - t->begin);
	}
	return 0;
}

static int cmp_begin(const void *a, const void *b)
{
	const st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int parse(st_file *f, mmf_err *err)
{
	const char *p = f->path;
	if (f->size == 0)
		return mmf_err_set(err, -EINVAL, "%s: empty file, expected a safetensors header", p);
	if (f->size < 8)
		return mmf_err_set(err, -EINVAL, "%s: truncated: %zu bytes, a safetensors file starts with an 8-byte header length", p, f->size);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | f->base[i];
	if (n > f->size - 8)
		return mmf_err_set(err, -EINVAL, "%s: header length %" PRIu64 " goes past the end of the %zu-byte file", p, n, f->size);
	if (n > ST_MAX_HEADER)
		return mmf_err_set(err, -EINVAL, "%s: header length %" PRIu64 " is over the %u-byte limit", p, n, ST_MAX_HEADER);
	if (n < 2 || f->base[8] != '{')
		return mmf_err_set(err, -EINVAL, "%s: header does not start with '{': not a safetensors file", p);
	json_error_t jerr;
	json_t *root = json_loadb((const char *)f->base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return mmf_err_set(err, -EINVAL, "%s: header is not valid JSON: %s at byte %d", p, jerr.text, jerr.position);
	int rc = 0;
	if (!json_is_object(root)) {
		rc = mmf_err_set(err, -EINVAL, "%s: header is not a JSON object", p);
		goto out;
	}
	uint64_t data_size = f->size - 8 - n;
	size_t cap = json_object_size(root);
	f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
	if (!f->tensors) {
		rc = mmf_err_set(err, -ENOMEM, "%s: out of memory for %zu tensors", p, cap);
		goto out;
	}
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0) {
			if ((rc = parse_metadata(f, val, err)) < 0)
				goto out;
			continue;
		}
		if (key[0] == '\0') {
			rc = mmf_err_set(err, -EINVAL, "%s: a tensor has an empty name", p);
			goto out;
		}
		st_tensor *t = &f->tensors[f->count];
		if ((rc = parse_tensor(f, key, val, data_size, t, err)) < 0)
			goto out;
		if (!(t->name = strdup(key))) {
			rc = mmf_err_set(err, -ENOMEM, "%s: out of memory", p);
			goto out;
		}
		t->data = f->base + 8 + n + t->begin;
		t->nbytes = (size_t)(t->end - t->begin);
		f->count++;
	}
	/* Disjointness: sort a copy by begin and compare neighbours. Empty
	 * tensors occupy no bytes and cannot overlap anything. */
	st_tensor *s = malloc((f->count ? f->count : 1) * sizeof *s);
	if (!s) {
		rc = mmf_err_set(err, -ENOMEM, "%s: out of memory", p);
		goto out;
	}
	memcpy(s, f->tensors, f->count * sizeof *s);
	qsort(s, f->count, sizeof *s, cmp_begin);
	const st_tensor *prev = NULL;
	for (size_t i = 0; i < f->count; i++) {
		if (s[i].begin == s[i].end)
			continue;
		if (prev && s[i].begin < prev->end) {
			rc = mmf_err_set(err, -EINVAL, "%s: tensors '%s' [%" PRIu64 ",%" PRIu64 "] and '%s' [%" PRIu64 ",%" PRIu64 "] overlap",
					 p, prev->name, prev->begin, prev->end, s[i].name, s[i].begin, s[i].end);
			break;
		}
		prev = &s[i];
	}
	free(s);
out:
	json_decref(root);
	return rc;
}

static st_file *file_new(const char *name)
{
	st_file *f = calloc(1, sizeof *f);
	if (f && !(f->path = strdup(name))) {
		free(f);
		return NULL;
	}
	return f;
}

int st_open_mem(const void *buf, size_t len, const char *name, st_file **out, mmf_err *err)
{
	*out = NULL;
	st_file *f = file_new(name);
	if (!f)
		return mmf_err_set(err, -ENOMEM, "%s: out of memory", name);
	f->base = buf;
	f->size = len;
	int rc = parse(f, err);
	if (rc < 0) {
		st_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

int st_open(const char *path, st_file **out, mmf_err *err)
{
	*out = NULL;
	/* O_NONBLOCK: a FIFO must not block the open; S_ISREG rejects it below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return mmf_err_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return mmf_err_set(err, -e, "%s: cannot stat: %s", path, strerror(e));
	}
	if (S_ISDIR(sb.st_mode)) {
		close(fd);
		return mmf_err_set(err, -EISDIR, "%s: is a directory, expected a safetensors file", path);
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return mmf_err_set(err, -EINVAL, "%s: not a regular file, expected a safetensors file", path);
	}
	st_file *f = file_new(path);
	if (!f) {
		close(fd);
		return mmf_err_set(err, -ENOMEM, "%s: out of memory", path);
	}
	f->size = (size_t)sb.st_size;
	if (f->size > 0) {
		void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			int e = errno;
			close(fd);
			st_close(f);
			return mmf_err_set(err, -e, "%s: cannot mmap %zu bytes: %s", path, (size_t)sb.st_size, strerror(e));
		}
		f->base = m;
		f->mapped = 1;
	}
	close(fd);
	int rc = parse(f, err);
	if (rc < 0) {
		st_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* ------------------------------------------------------------ conversions */

float mmf_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	if (exp == 0) {
		if (man == 0)
			u = sign;
		else {	/* subnormal: normalise */
			exp = 127 - 15 + 1;
			while (!(man & 0x400)) {
				man <<= 1;
				exp--;
			}
			man &= 0x3ff;
			u = sign | (exp << 23) | (man << 13);
		}
	} else if (exp == 0x1f)
		u = sign | 0x7f800000u | (man << 13);
	else
		u = sign | ((exp + 127 - 15) << 23) | (man << 13);
	float f;
	memcpy(&f, &u, 4);
	return f;
}

uint16_t mmf_float_to_half(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	uint32_t sign = (u >> 16) & 0x8000;
	int32_t exp = (int32_t)((u >> 23) & 0xff);
	uint32_t man = u & 0x7fffff;
	if (exp == 0xff)	/* inf or nan */
		return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
	int32_t e = exp - 127 + 15;
	if (e >= 0x1f)
		return (uint16_t)(sign | 0x7c00);
	if (e <= 0) {	/* subnormal or zero in half */
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000;
		uint32_t shift = (uint32_t)(14 - e);
		uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;	/* may carry into the exponent, which is right */
	return (uint16_t)(sign | h);
}

float mmf_bf16_to_float(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

uint16_t mmf_float_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

int st_tensor_read_f32(const st_tensor *t, float *dst)
{
	const uint8_t *s = t->data;
	switch (t->dtype) {
	case ST_F32:
		memcpy(dst, s, t->nelem * 4);
		return 0;
	case ST_F64:
		for (uint64_t i = 0; i < t->nelem; i++) {
			double d;
			memcpy(&d, s + 8 * i, 8);
			dst[i] = (float)d;
		}
		return 0;
	case ST_F16:
	case ST_BF16:
		for (uint64_t i = 0; i < t->nelem; i++) {
			uint16_t h;
			memcpy(&h, s + 2 * i, 2);
			dst[i] = t->dtype == ST_F16 ? mmf_half_to_float(h) : mmf_bf16_to_float(h);
		}
		return 0;
	default:
		return -EINVAL;
	}
}

/* ------------------------------------------------------------ writer */

typedef struct st_wtensor {
	char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	void *data;
	size_t nbytes;
} st_wtensor;

struct st_writer {
	st_wtensor *t;
	size_t n, cap;
	json_t *meta;
};

st_writer *st_writer_new(void)
{
	st_writer *w = calloc(1, sizeof *w);
	if (w && !(w->meta = json_object())) {
		free(w);
		return NULL;
	}
	return w;
}

void st_writer_free(st_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		free(w->t[i].name);
		free(w->t[i].data);
	}
	free(w->t);
	json_decref(w->meta);
	free(w);
}

static st_wtensor *writer_slot(st_writer *w, const char *name, st_dtype dtype, int ndim,
			       const int64_t *shape, size_t *nbytes, mmf_err *err)
{
	if (dtype >= st_dtype_max || ndim < 0 || ndim > ST_MAX_DIMS) {
		mmf_err_set(err, -EINVAL, "safetensors writer: tensor '%s': bad dtype or %d dims", name, ndim);
		return NULL;
	}
	if (!name[0] || !strcmp(name, "__metadata__")) {
		mmf_err_set(err, -EINVAL, "safetensors writer: tensor name '%s' is reserved or empty", name);
		return NULL;
	}
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->t[i].name, name)) {
			mmf_err_set(err, -EEXIST, "safetensors writer: tensor '%s' added twice", name);
			return NULL;
		}
	size_t n = st_dtype_size(dtype);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0) {
			mmf_err_set(err, -EINVAL, "safetensors writer: tensor '%s': negative dimension", name);
			return NULL;
		}
		if (shape[i] && n > SIZE_MAX / (size_t)shape[i]) {
			mmf_err_set(err, -EOVERFLOW, "safetensors writer: tensor '%s': size overflows", name);
			return NULL;
		}
		n *= (size_t)shape[i];
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		st_wtensor *t = realloc(w->t, cap * sizeof *t);
		if (!t) {
			mmf_err_set(err, -ENOMEM, "safetensors writer: out of memory");
			return NULL;
		}
		w->t = t;
		w->cap = cap;
	}
	st_wtensor *t = &w->t[w->n];
	memset(t, 0, sizeof *t);
	t->name = strdup(name);
	t->data = malloc(n ? n : 1);
	if (!t->name || !t->data) {
		free(t->name);
		free(t->data);
		mmf_err_set(err, -ENOMEM, "safetensors writer: out of memory for '%s'", name);
		return NULL;
	}
	t->dtype = dtype;
	t->ndim = ndim;
	if (ndim > 0)
		memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->nbytes = n;
	*nbytes = n;
	w->n++;
	return t;
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
		  const int64_t *shape, const void *data, mmf_err *err)
{
	size_t n;
	st_wtensor *t = writer_slot(w, name, dtype, ndim, shape, &n, err);
	if (!t)
		return err ? err->code : -EINVAL;
	memcpy(t->data, data, n);
	return 0;
}

int st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim,
		      const int64_t *shape, const float *data, mmf_err *err)
{
	if (dtype != ST_F32 && dtype != ST_F16 && dtype != ST_BF16)
		return mmf_err_set(err, -EINVAL, "safetensors writer: tensor '%s': cannot store floats as %s", name, st_dtype_name(dtype));
	size_t n;
	st_wtensor *t = writer_slot(w, name, dtype, ndim, shape, &n, err);
	if (!t)
		return err ? err->code : -EINVAL;
	size_t count = n / st_dtype_size(dtype);
	if (dtype == ST_F32)
		memcpy(t->data, data, n);
	else
		for (size_t i = 0; i < count; i++) {
			uint16_t h = dtype == ST_F16 ? mmf_float_to_half(data[i]) : mmf_float_to_bf16(data[i]);
			memcpy((uint8_t *)t->data + 2 * i, &h, 2);
		}
	return 0;
}

int st_writer_meta(st_writer *w, const char *key, const char *value, mmf_err *err)
{
	if (json_object_set_new(w->meta, key, json_string(value)) < 0)
		return mmf_err_set(err, -EINVAL, "safetensors writer: metadata '%s' is not valid UTF-8", key);
	return 0;
}

int st_writer_save(const st_writer *w, const char *path, mmf_err *err)
{
	int rc = 0;
	char *hdr = NULL, *tmp = NULL;
	FILE *fp = NULL;
	json_t *root = json_object();
	if (!root)
		return mmf_err_set(err, -ENOMEM, "%s: out of memory", path);
	if (json_object_size(w->meta))
		json_object_set(root, "__metadata__", w->meta);
	uint64_t off = 0;
	for (size_t i = 0; i < w->n; i++) {
		const st_wtensor *t = &w->t[i];
		json_t *shape = json_array();
		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer(t->shape[d]));
		json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtype_name(t->dtype), "shape", shape,
				      "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes));
		if (!e || json_object_set_new(root, t->name, e) < 0) {
			rc = mmf_err_set(err, -EINVAL, "%s: cannot encode header entry for '%s'", path, t->name);
			goto out;
		}
		off += t->nbytes;
	}
	hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!hdr) {
		rc = mmf_err_set(err, -ENOMEM, "%s: cannot encode header", path);
		goto out;
	}
	/* Pad the header with spaces so the data section starts 8-aligned. */
	size_t hl = strlen(hdr), pad = (8 - hl % 8) % 8;
	size_t plen = strlen(path) + 16;
	if (!(tmp = malloc(plen))) {
		rc = mmf_err_set(err, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	snprintf(tmp, plen, "%s.tmp", path);
	if (!(fp = fopen(tmp, "wb"))) {
		rc = mmf_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	uint8_t len8[8];
	uint64_t total = hl + pad;
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)(total >> (8 * i));
	int ok = fwrite(len8, 8, 1, fp) == 1 && fwrite(hdr, 1, hl, fp) == hl;
	for (size_t i = 0; ok && i < pad; i++)
		ok = fputc(' ', fp) != EOF;
	for (size_t i = 0; ok && i < w->n; i++)
		ok = fwrite(w->t[i].data, 1, w->t[i].nbytes, fp) == w->t[i].nbytes;
	if (fclose(fp) != 0)
		ok = 0;
	fp = NULL;
	if (!ok) {
		rc = mmf_err_set(err, -EIO, "%s: write failed: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = mmf_err_set(err, -errno, "%s: cannot rename from %s: %s", path, tmp, strerror(errno));
		unlink(tmp);
	}
out:
	if (fp)
		fclose(fp);
	free(tmp);
	free(hdr);
	json_decref(root);
	return rc;
}
