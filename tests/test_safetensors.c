/* safetensors reader and writer tests. Every file is built byte by byte
 * (8-byte little-endian header length, JSON, data) so each malformed case is
 * exact. Every bad case goes through st_open() on a file and st_open_mem() on
 * the same bytes: both must fail with the same code, leave *out NULL, and say
 * the same thing after the leading "<name>: ". Then: a valid file with every
 * kind of entry, a writer round trip, and the fp16/bf16 conversions over
 * every half pattern and every rounding midpoint. */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/safetensors.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

typedef struct img {
	uint8_t *p;
	size_t len;
} img;

/* hlen as the 8-byte little-endian length, then hdr_bytes of hdr, then
 * dlen bytes of data (zeros when data is NULL). */
static img img_raw(uint64_t hlen, const void *hdr, size_t hdr_bytes, const void *data, size_t dlen)
{
	img m;
	m.len = 8 + hdr_bytes + dlen;
	m.p = calloc(m.len ? m.len : 1, 1);
	if (!m.p) {
		perror("calloc");
		exit(99);
	}
	for (int i = 0; i < 8; i++)
		m.p[i] = (uint8_t)(hlen >> (8 * i));
	if (hdr_bytes)
		memcpy(m.p + 8, hdr, hdr_bytes);
	if (data && dlen)
		memcpy(m.p + 8 + hdr_bytes, data, dlen);
	return m;
}

/* The usual shape: the header length is exactly the JSON's length. */
static img img_json(const char *json, const void *data, size_t dlen)
{
	return img_raw(strlen(json), json, strlen(json), data, dlen);
}

/* Any bytes at all (for files shorter than the length field). */
static img img_bytes(const void *b, size_t len)
{
	img m;
	m.len = len;
	m.p = malloc(len ? len : 1);
	if (!m.p) {
		perror("malloc");
		exit(99);
	}
	if (len)
		memcpy(m.p, b, len);
	return m;
}

static const char *tmp_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", test_tmpdir(), name);
	return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (!fp || (len && fwrite(buf, 1, len, fp) != len) || fclose(fp) != 0) {
		perror(path);
		exit(99);
	}
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && n > 0 && fread(b, 1, (size_t)n, fp) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return b;
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	put_u32(p, u);
}

static void put_f64(uint8_t *p, double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	put_u64(p, u);
}

static float f32_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t bits_f32(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static int same_bits(float a, float b)
{
	return bits_f32(a) == bits_f32(b);
}

/* *out is preset to this so that a reader that forgets to clear it is caught. */
static char sentinel_byte;
#define SENTINEL ((st_file *)(void *)&sentinel_byte)

/* One failed open: code, *out, and the message's substrings. The message
 * must start with "<name>: " (the reader names the file); returns the rest
 * of the message, or "" when it does not. */
static const char *check_failed(const char *how, const char *name, int rc, st_file *f,
				const mmf_err *e, int code, const char *const *subs)
{
	CHECK(rc == code, "%s %s: returned %d, expected %d (message: %s)", how, name, rc, code, e->msg);
	CHECK(e->code == code, "%s %s: err.code %d, expected %d", how, name, e->code, code);
	CHECK(f == NULL, "%s %s: *out is %p, expected NULL", how, name, (void *)f);
	if (f && f != SENTINEL)
		st_close(f);
	CHECK_MSG(e->msg, name);
	for (size_t i = 0; subs[i]; i++)
		CHECK_MSG(e->msg, subs[i]);
	size_t n = strlen(name);
	if (strncmp(e->msg, name, n) == 0 && strncmp(e->msg + n, ": ", 2) == 0)
		return e->msg + n + 2;
	CHECK(0, "%s %s: message '%s' does not start with the name", how, name, e->msg);
	return "";
}

/* Writes m to a file called label, opens it with st_open() and then opens
 * the same bytes with st_open_mem(): both must fail with code and a message
 * holding every substring, and say the same thing. Frees m. */
static void bad_case(const char *label, img m, int code, const char *const *subs)
{
	char path[512];
	tmp_path(label, path, sizeof path);
	write_file(path, m.p, m.len);

	st_file *f = SENTINEL;
	mmf_err ef;
	memset(&ef, 0, sizeof ef);
	int rc = st_open(path, &f, &ef);
	const char *rest_f = check_failed("st_open", path, rc, f, &ef, code, subs);

	char name[300];
	snprintf(name, sizeof name, "mem:%s", label);
	st_file *g = SENTINEL;
	mmf_err em;
	memset(&em, 0, sizeof em);
	rc = st_open_mem(m.p, m.len, name, &g, &em);
	const char *rest_m = check_failed("st_open_mem", name, rc, g, &em, code, subs);
	CHECK(strcmp(rest_f, rest_m) == 0, "%s: file says '%s', memory says '%s'", label, rest_f, rest_m);

	/* A NULL mmf_err is allowed and must not change the outcome. */
	g = SENTINEL;
	rc = st_open_mem(m.p, m.len, name, &g, NULL);
	CHECK(rc == code && g == NULL, "%s: with a NULL mmf_err: rc %d, out %p", label, rc, (void *)g);
	unlink(path);
	free(m.p);
}

#define BAD(label, m, code, ...) bad_case(label, m, code, (const char *const[]){__VA_ARGS__, NULL})

/* Opens bytes that must be accepted, from memory or written to the file
 * label (its path left in path). Returns NULL (after a failed CHECK) when
 * they are rejected. */
static st_file *open_ok_mem(const img *m, const char *name)
{
	st_file *f = SENTINEL;
	mmf_err e;
	memset(&e, 0, sizeof e);
	int rc = st_open_mem(m->p, m->len, name, &f, &e);
	CHECK(rc == 0 && f && f != SENTINEL, "%s: rejected: %d %s", name, rc, e.msg);
	return rc == 0 && f != SENTINEL ? f : NULL;
}

static st_file *open_ok_file(const img *m, const char *label, char *path, size_t plen)
{
	tmp_path(label, path, plen);
	write_file(path, m->p, m->len);
	st_file *f = SENTINEL;
	mmf_err e;
	memset(&e, 0, sizeof e);
	int rc = st_open(path, &f, &e);
	CHECK(rc == 0 && f && f != SENTINEL, "%s: rejected: %d %s", path, rc, e.msg);
	return rc == 0 && f != SENTINEL ? f : NULL;
}

/* A valid entry with the given fields, for building headers. */
#define T_F32(name, shape, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

/* ------------------------------------------------------------ 1. valid file */

/* Data layout (offsets in the data section; not in header order, and the
 * data section starts at an odd file offset, so nothing is aligned):
 *   d.f64   F64  [2]      [0,16)
 *   empty2  F32  [3,0,2]  [16,16)
 *   ids     I32  [1]      [16,20)
 *   mask    BOOL [3,1]    [20,23)
 *   step    I64  []       [23,31)
 *   h.f16   F16  [12]     [31,55)
 *   w.f32   F32  [2,3]    [55,79)
 *   b.bf16  BF16 [2,3]    [79,91)
 *   empty   F32  [0]      [91,91)   (an empty tensor at the very end) */
static const char valid_json[] =
	"{\"__metadata__\":{\"format\":\"pt\",\"note\":\"h\\u00e9llo \\\"q\\\"\",\"empty\":\"\"},"
	"\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[55,79]},"
	"\"h.f16\":{\"dtype\":\"F16\",\"shape\":[12],\"data_offsets\":[31,55]},"
	"\"b.bf16\":{\"shape\":[2,3],\"dtype\":\"BF16\",\"data_offsets\":[79,91]},"
	"\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[23,31]},"
	"\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[91,91]},"
	"\"d.f64\":{\"data_offsets\":[0,16],\"dtype\":\"F64\",\"shape\":[2]},"
	"\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3,1],\"data_offsets\":[20,23]},"
	"\"ids\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[16,20]},"
	"\"empty2\":{\"dtype\":\"F32\",\"shape\":[3,0,2],\"data_offsets\":[16,16]}}";
#define VALID_DATA 91

static const uint16_t valid_f16[12] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x03ff, 0x0400,
				       0x7c00, 0xfc00, 0x8000, 0x3555, 0x7e00, 0xfbff};
static const uint16_t valid_bf16[6] = {0x3f80, 0xc020, 0x7f80, 0x0001, 0x477f, 0x7fc0};
static const float valid_f32[6] = {1.0f, -2.5f, 0.0f, 3.25f, 1e-3f, -FLT_MAX};
static const double valid_f64[2] = {0.1, -1e300};
static const int64_t valid_i64 = -123456789012LL;

static void valid_data(uint8_t *d)
{
	memset(d, 0xAB, VALID_DATA);
	put_f64(d + 0, valid_f64[0]);
	put_f64(d + 8, valid_f64[1]);
	put_u32(d + 16, (uint32_t)-7);
	d[20] = 1, d[21] = 0, d[22] = 1;
	put_u64(d + 23, (uint64_t)valid_i64);
	for (int i = 0; i < 12; i++)
		put_u16(d + 31 + 2 * i, valid_f16[i]);
	for (int i = 0; i < 6; i++)
		put_f32(d + 55 + 4 * i, valid_f32[i]);
	for (int i = 0; i < 6; i++)
		put_u16(d + 79 + 2 * i, valid_bf16[i]);
}

static const st_tensor *find_checked(const st_file *f, const char *name, st_dtype dt, const char *shape,
				     uint64_t nelem, uint64_t begin, uint64_t end)
{
	const st_tensor *t = st_find(f, name);
	CHECK(t != NULL, "tensor '%s' not found", name);
	if (!t)
		return NULL;
	char sh[64];
	CHECK(strcmp(t->name, name) == 0, "st_find('%s') gave '%s'", name, t->name);
	CHECK(t->dtype == dt, "%s: dtype %s, expected %s", name, st_dtype_name(t->dtype), st_dtype_name(dt));
	CHECK(strcmp(st_shape_str(t, sh, sizeof sh), shape) == 0, "%s: shape %s, expected %s", name, sh, shape);
	CHECK(t->nelem == nelem, "%s: nelem %" PRIu64 ", expected %" PRIu64, name, t->nelem, nelem);
	CHECK(t->begin == begin && t->end == end, "%s: range [%" PRIu64 ",%" PRIu64 "]", name, t->begin, t->end);
	CHECK(t->nbytes == end - begin, "%s: nbytes %zu", name, t->nbytes);
	return t;
}

static void check_valid(const st_file *f, const uint8_t *dsec)
{
	CHECK(st_count(f) == 9, "count %zu, expected 9 (metadata is not a tensor)", st_count(f));
	CHECK(st_at(f, st_count(f)) == NULL, "st_at past the end is not NULL");
	CHECK(st_at(f, (size_t)-1) == NULL, "st_at(-1) is not NULL");
	/* Every tensor reachable by index exactly once, and findable again. */
	int seen = 0;
	for (size_t i = 0; i < st_count(f); i++) {
		const st_tensor *t = st_at(f, i);
		CHECK(t && st_find(f, t->name) == t, "st_at(%zu) not found again by name", i);
		static const char *const names[] = {"w.f32", "h.f16", "b.bf16", "step", "empty",
						    "d.f64", "mask", "ids", "empty2"};
		for (int k = 0; k < 9; k++)
			if (t && strcmp(t->name, names[k]) == 0)
				seen |= 1 << k;
	}
	CHECK(seen == 0x1ff, "tensors seen by index: mask %#x", seen);
	CHECK(st_find(f, "nope") == NULL, "st_find of a missing name");
	CHECK(st_find(f, "") == NULL, "st_find of the empty name");
	CHECK(st_find(f, "__metadata__") == NULL, "__metadata__ is found as a tensor");
	CHECK(st_find(f, "w.f3") == NULL && st_find(f, "w.f32x") == NULL, "st_find matches prefixes");

	const char *v = st_metadata(f, "format");
	CHECK(v && strcmp(v, "pt") == 0, "metadata format = %s", v ? v : "(null)");
	v = st_metadata(f, "note");
	CHECK(v && strcmp(v, "h\xc3\xa9llo \"q\"") == 0, "metadata note = %s", v ? v : "(null)");
	v = st_metadata(f, "empty");
	CHECK(v && v[0] == '\0', "metadata empty = %s", v ? v : "(null)");
	CHECK(st_metadata(f, "missing") == NULL, "missing metadata key found");
	CHECK(st_metadata(f, "__metadata__") == NULL, "__metadata__ as a key");
	CHECK(st_metadata(f, "w.f32") == NULL, "a tensor name found as metadata");

	float buf[16];
	const st_tensor *t;

	if ((t = find_checked(f, "w.f32", ST_F32, "[2,3]", 6, 55, 79))) {
		CHECK(t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3, "w.f32 dims");
		CHECK((const uint8_t *)t->data == dsec + 55, "w.f32 data pointer");
		CHECK(st_tensor_read_f32(t, buf) == 0, "read w.f32");
		for (int i = 0; i < 6; i++)
			CHECK(same_bits(buf[i], valid_f32[i]), "w.f32[%d] = %g, expected %g", i, buf[i], valid_f32[i]);
	}
	if ((t = find_checked(f, "h.f16", ST_F16, "[12]", 12, 31, 55))) {
		CHECK(st_tensor_read_f32(t, buf) == 0, "read h.f16");
		const float want[12] = {1.0f, -2.5f, 65504.0f, ldexpf(1, -24), ldexpf(1023, -24), ldexpf(1, -14),
					INFINITY, -INFINITY, -0.0f, 0.333251953125f, NAN, -65504.0f};
		for (int i = 0; i < 12; i++) {
			if (i == 10)
				CHECK(isnan(buf[i]), "h.f16[10] = %g, expected NaN", buf[i]);
			else
				CHECK(same_bits(buf[i], want[i]), "h.f16[%d] (%#06x) = %a, expected %a",
				      i, valid_f16[i], buf[i], want[i]);
		}
	}
	if ((t = find_checked(f, "b.bf16", ST_BF16, "[2,3]", 6, 79, 91))) {
		CHECK(st_tensor_read_f32(t, buf) == 0, "read b.bf16");
		const float want[6] = {1.0f, -2.5f, INFINITY, ldexpf(1, -133), 65280.0f, NAN};
		for (int i = 0; i < 6; i++) {
			if (i == 5)
				CHECK(isnan(buf[i]), "b.bf16[5] = %g, expected NaN", buf[i]);
			else
				CHECK(same_bits(buf[i], want[i]), "b.bf16[%d] = %a, expected %a", i, buf[i], want[i]);
		}
	}
	if ((t = find_checked(f, "d.f64", ST_F64, "[2]", 2, 0, 16))) {
		CHECK(st_tensor_read_f32(t, buf) == 0, "read d.f64");
		CHECK(same_bits(buf[0], (float)0.1), "d.f64[0] = %a", buf[0]);
		CHECK(isinf(buf[1]) && buf[1] < 0, "d.f64[1] = %g, expected -inf", buf[1]);
	}
	if ((t = find_checked(f, "step", ST_I64, "[]", 1, 23, 31))) {
		CHECK(t->ndim == 0, "step ndim %d", t->ndim);
		int64_t s;
		memcpy(&s, t->data, 8);
		CHECK(s == valid_i64, "step = %" PRId64, s);
		buf[0] = 42.0f;
		CHECK(st_tensor_read_f32(t, buf) == -EINVAL && buf[0] == 42.0f, "reading I64 as f32 is refused");
	}
	if ((t = find_checked(f, "ids", ST_I32, "[1]", 1, 16, 20))) {
		int32_t s;
		memcpy(&s, t->data, 4);
		CHECK(s == -7, "ids = %d", (int)s);
		CHECK(st_tensor_read_f32(t, buf) == -EINVAL, "reading I32 as f32 is refused");
	}
	if ((t = find_checked(f, "mask", ST_BOOL, "[3,1]", 3, 20, 23))) {
		const uint8_t *b = t->data;
		CHECK(b[0] == 1 && b[1] == 0 && b[2] == 1, "mask bytes");
		CHECK(st_tensor_read_f32(t, buf) == -EINVAL, "reading BOOL as f32 is refused");
	}
	if ((t = find_checked(f, "empty", ST_F32, "[0]", 0, 91, 91))) {
		buf[0] = 42.0f;
		CHECK(st_tensor_read_f32(t, buf) == 0 && buf[0] == 42.0f, "reading an empty tensor writes nothing");
	}
	if ((t = find_checked(f, "empty2", ST_F32, "[3,0,2]", 0, 16, 16)))
		CHECK(t->ndim == 3 && t->shape[2] == 2, "empty2 keeps its dims");
}

static void test_valid(void)
{
	uint8_t d[VALID_DATA];
	valid_data(d);
	img m = img_json(valid_json, d, sizeof d);
	const uint8_t *dsec = m.p + 8 + strlen(valid_json);

	st_file *f = open_ok_mem(&m, "valid-mem");
	if (f) {
		CHECK(strcmp(st_path(f), "valid-mem") == 0, "st_path '%s'", st_path(f));
		check_valid(f, dsec);
		st_close(f);
	}
	char path[512];
	f = open_ok_file(&m, "valid.safetensors", path, sizeof path);
	if (f) {
		CHECK(strcmp(st_path(f), path) == 0, "st_path '%s'", st_path(f));
		/* The file is mapped: check data pointers through the mapping. */
		const st_tensor *t = st_find(f, "w.f32");
		const uint8_t *fdsec = t ? (const uint8_t *)t->data - 55 : dsec;
		check_valid(f, fdsec);
		CHECK(memcmp(fdsec, dsec, VALID_DATA) == 0, "mapped data differs from the file's bytes");
		st_close(f);
	}
	unlink(path);
	free(m.p);
	st_close(NULL);	/* allowed */
}

/* Valid files at the edges of what the format allows. */
static void test_valid_edges(void)
{
	static const struct {
		const char *label, *json;
		size_t dlen;
		size_t count;
	} cases[] = {
		{"no tensors", "{}", 0, 0},
		{"only metadata", "{\"__metadata__\":{\"a\":\"b\"}}", 0, 0},
		{"empty metadata", "{\"__metadata__\":{}," T_F32("x", "[1]", 0, 4) "}", 4, 1},
		{"whitespace and padding", "{ \"x\" :\n\t{ \"dtype\" : \"F32\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 4 ] } }   \n  ", 4, 1},
		{"8 dims", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}", 2, 1},
		{"adjacent ranges", "{" T_F32("a", "[2]", 0, 8) "," T_F32("b", "[2]", 8, 16) "}", 16, 2},
		/* Unreferenced bytes between and after tensors are allowed. */
		{"gaps", "{" T_F32("a", "[1]", 4, 8) "," T_F32("b", "[1]", 12, 16) "}", 20, 2},
		/* An empty tensor takes no bytes, so it overlaps nothing even
		 * inside another tensor's range or next to an identical one. */
		{"empty inside another", "{" T_F32("a", "[4]", 0, 16) "," T_F32("e", "[0]", 8, 8) "," T_F32("z", "[2,0]", 8, 8) "}", 16, 3},
		{"zero dim with a huge dim", "{" T_F32("e", "[0,9223372036854775807]", 0, 0) "}", 0, 1},
		/* Empty tensors whose non-zero dims are larger than the (here
		 * empty or tiny) data section: what torch.zeros(3, 0) alone
		 * saves to. */
		{"empty [3,0], no data", "{" T_F32("e", "[3,0]", 0, 0) "}", 0, 1},
		{"empty [4096,0,2], 8 bytes of data", "{" T_F32("e", "[4096,0,2]", 0, 0) "," T_F32("x", "[2]", 0, 8) "}", 8, 2},
		{"every dtype",
		 "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
		 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
		 "\"c\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[12,14]},"
		 "\"d\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[14,16]},"
		 "\"e\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]},"
		 "\"f\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[24,28]},"
		 "\"g\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[28,30]},"
		 "\"h\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[30,31]},"
		 "\"i\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[31,32]},"
		 "\"j\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[32,33]}}", 33, 10},
		{"unicode name", "{\"\\u00e9\\u4e2d/\\\"x\\\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		img m = img_json(cases[i].json, NULL, cases[i].dlen);
		st_file *f = open_ok_mem(&m, cases[i].label);
		if (f) {
			CHECK(st_count(f) == cases[i].count, "%s: count %zu, expected %zu", cases[i].label, st_count(f), cases[i].count);
			st_close(f);
		}
		char path[512], label[64];
		snprintf(label, sizeof label, "edge%zu", i);
		if ((f = open_ok_file(&m, label, path, sizeof path)))
			st_close(f);
		unlink(path);
		free(m.p);
	}
	/* Specific checks on two of them. */
	img m = img_json("{\"\\u00e9\\u4e2d/\\\"x\\\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "z", 1);
	st_file *f = open_ok_mem(&m, "unicode");
	if (f) {
		const st_tensor *t = st_find(f, "\xc3\xa9\xe4\xb8\xad/\"x\"");
		CHECK(t && *(const char *)t->data == 'z', "unicode tensor name not decoded");
		st_close(f);
	}
	free(m.p);
	m = img_json("{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}", NULL, 2);
	if ((f = open_ok_mem(&m, "8 dims"))) {
		char sh[64];
		const st_tensor *t = st_find(f, "x");
		CHECK(t && t->ndim == 8 && strcmp(st_shape_str(t, sh, sizeof sh), "[1,1,1,1,1,1,1,2]") == 0,
		      "8 dims: %s", t ? sh : "(missing)");
		/* A short buffer is cut, never overrun, and stays terminated. */
		char small[6];
		memset(small, 'x', sizeof small);
		if (t)
			st_shape_str(t, small, sizeof small);
		CHECK(memchr(small, '\0', sizeof small) != NULL && strncmp(small, "[1,1,", 5) == 0,
		      "st_shape_str into 6 bytes: '%.6s'", small);
		st_close(f);
	}
	free(m.p);
	/* A tensor of exactly 1 MiB. */
	m = img_json("{" T_F32("big", "[1024,256]", 0, 1048576) "}", NULL, 1048576);
	if ((f = open_ok_mem(&m, "1 MiB"))) {
		const st_tensor *t = st_find(f, "big");
		CHECK(t && t->nelem == 262144 && t->nbytes == 1048576, "1 MiB tensor");
		st_close(f);
	}
	free(m.p);
}

/* A safetensors file written by another tool (tests/golden; skipped when absent). */
static void test_golden_file(void)
{
	char path[1024];
	test_src("tests/golden/tiny.safetensors", path, sizeof path);
	if (access(path, R_OK) != 0)
		return;
	st_file *f = NULL;
	mmf_err e;
	memset(&e, 0, sizeof e);
	int rc = st_open(path, &f, &e);
	CHECK(rc == 0 && f, "%s: %s", path, e.msg);
	if (f) {
		CHECK(st_count(f) > 0, "%s: no tensors", path);
		st_close(f);
	}
}

/* ------------------------------------------------------------ 2. writer */

static void test_writer(void)
{
	mmf_err e;
	memset(&e, 0, sizeof e);
	st_writer *w = st_writer_new();
	CHECK(w != NULL, "st_writer_new");
	if (!w)
		return;

	const float wf[6] = {1.0f, -2.5f, 0.1f, 65504.0f, 1e-6f, -0.0f};
	const float hf[5] = {1.0f, -2.5f, 65504.0f, ldexpf(1, -24), 0.1f};
	const float bf[4] = {1.0f, -2.5f, 3.0e38f, 0.1f};
	const int64_t step = 1234567890123LL;
	const uint8_t u8[5] = {0, 1, 2, 254, 255};
	const int16_t i16[3] = {-32768, 0, 32767};
	const double f64[2] = {0.1, -1e-300};
	const int64_t sh_w[2] = {2, 3}, sh_h[1] = {5}, sh_b[2] = {2, 2}, sh_u8[1] = {5}, sh_i16[3] = {1, 3, 1},
		      sh_f64[1] = {2}, sh_e[2] = {0, 4};

	CHECK(st_writer_add_f32(w, "w", ST_F32, 2, sh_w, wf, &e) == 0, "add w: %s", e.msg);
	CHECK(st_writer_add_f32(w, "h", ST_F16, 1, sh_h, hf, &e) == 0, "add h: %s", e.msg);
	CHECK(st_writer_add_f32(w, "b", ST_BF16, 2, sh_b, bf, &e) == 0, "add b: %s", e.msg);
	/* A 0-d scalar. The shape pointer is not read for ndim 0, but it is
	 * passed to memcpy, so it must not be NULL (see the report). */
	CHECK(st_writer_add(w, "step", ST_I64, 0, sh_w, &step, &e) == 0, "add step: %s", e.msg);
	CHECK(st_writer_add(w, "u8", ST_U8, 1, sh_u8, u8, &e) == 0, "add u8: %s", e.msg);
	CHECK(st_writer_add(w, "i16", ST_I16, 3, sh_i16, i16, &e) == 0, "add i16: %s", e.msg);
	CHECK(st_writer_add(w, "f64", ST_F64, 1, sh_f64, f64, &e) == 0, "add f64: %s", e.msg);
	CHECK(st_writer_add_f32(w, "empty", ST_F32, 2, sh_e, wf, &e) == 0, "add empty: %s", e.msg);
	CHECK(st_writer_add(w, "odd \"name\"/\xc3\xa9", ST_U8, 1, sh_u8, u8, &e) == 0, "add odd name: %s", e.msg);
	CHECK(st_writer_meta(w, "format", "pt", &e) == 0, "meta: %s", e.msg);
	CHECK(st_writer_meta(w, "quote", "a \"b\" \\ c\n", &e) == 0, "meta: %s", e.msg);
	CHECK(st_writer_meta(w, "format", "mmf", &e) == 0, "meta replaced: %s", e.msg);

	/* Writer-side errors. */
	memset(&e, 0, sizeof e);
	const int64_t neg[2] = {2, -1}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	int rc = st_writer_add_f32(w, "bad", ST_I64, 1, sh_h, hf, &e);
	CHECK(rc == -EINVAL, "add_f32 as I64: %d", rc);
	CHECK_MSG(e.msg, "'bad'", "cannot store floats as I64");
	rc = st_writer_add(w, "neg", ST_F32, 2, neg, wf, &e);
	CHECK(rc == -EINVAL, "negative dim: %d", rc);
	CHECK_MSG(e.msg, "'neg'", "negative dimension");
	rc = st_writer_add(w, "nine", ST_F32, 9, nine, wf, &e);
	CHECK(rc == -EINVAL, "9 dims: %d", rc);
	CHECK_MSG(e.msg, "'nine'", "9 dims");
	rc = st_writer_add(w, "dt", st_dtype_max, 1, sh_h, wf, &e);
	CHECK(rc == -EINVAL, "bad dtype: %d", rc);
	CHECK_MSG(e.msg, "'dt'", "bad dtype");
	rc = st_writer_meta(w, "bad\xff", "x\xff", &e);
	CHECK(rc == -EINVAL, "non-UTF-8 metadata: %d", rc);
	CHECK_MSG(e.msg, "not valid UTF-8");
	char path[512], nodir[600];
	tmp_path("no-such-dir/x.safetensors", nodir, sizeof nodir);
	rc = st_writer_save(w, nodir, &e);
	CHECK(rc == -ENOENT, "save into a missing directory: %d", rc);
	CHECK_MSG(e.msg, "no-such-dir", "cannot create");

	tmp_path("written.safetensors", path, sizeof path);
	memset(&e, 0, sizeof e);
	CHECK(st_writer_save(w, path, &e) == 0, "save: %s", e.msg);
	char tmpname[600];
	snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
	CHECK(access(tmpname, F_OK) != 0, "the temporary file %s is left behind", tmpname);

	/* The raw bytes: header padded with spaces to a multiple of 8, data
	 * in the order added, no gaps. */
	size_t flen = 0;
	uint8_t *raw = read_file(path, &flen);
	CHECK(raw != NULL && flen >= 8, "reading back %s", path);
	uint64_t hlen = 0;
	if (raw && flen >= 8) {
		for (int i = 7; i >= 0; i--)
			hlen = (hlen << 8) | raw[i];
		CHECK(hlen % 8 == 0, "header length %" PRIu64 " is not a multiple of 8", hlen);
		CHECK(8 + hlen <= flen, "header length %" PRIu64 " past the file", hlen);
		if (8 + hlen <= flen) {
			CHECK(raw[8] == '{', "header starts with '%c'", raw[8]);
			uint64_t close = hlen;
			while (close > 0 && raw[8 + close - 1] == ' ')
				close--;
			CHECK(close > 0 && raw[8 + close - 1] == '}' && hlen - close < 8,
			      "header padding: %" PRIu64 " spaces after the JSON", hlen - close);
			size_t want = 24 + 10 + 8 + 8 + 5 + 6 + 16 + 0 + 5;
			CHECK(flen == 8 + hlen + want, "file size %zu, expected %" PRIu64, flen, 8 + hlen + want);
		}
	}

	st_file *f = NULL;
	memset(&e, 0, sizeof e);
	rc = st_open(path, &f, &e);
	CHECK(rc == 0 && f, "reopen: %s", e.msg);
	if (f && raw) {
		const uint8_t *dsec = raw + 8 + hlen;
		CHECK(st_count(f) == 9, "count %zu", st_count(f));
		uint8_t exp[32];
		struct {
			const char *name;
			st_dtype dt;
			const char *shape;
			const void *bytes;
			size_t nbytes;
		} want[9] = {
			{"w", ST_F32, "[2,3]", wf, 24},
			{"h", ST_F16, "[5]", exp, 10},
			{"b", ST_BF16, "[2,2]", exp + 10, 8},
			{"step", ST_I64, "[]", &step, 8},
			{"u8", ST_U8, "[5]", u8, 5},
			{"i16", ST_I16, "[1,3,1]", i16, 6},
			{"f64", ST_F64, "[2]", f64, 16},
			{"empty", ST_F32, "[0,4]", wf, 0},
			{"odd \"name\"/\xc3\xa9", ST_U8, "[5]", u8, 5},
		};
		for (int i = 0; i < 5; i++)
			put_u16(exp + 2 * i, mmf_float_to_half(hf[i]));
		for (int i = 0; i < 4; i++)
			put_u16(exp + 10 + 2 * i, mmf_float_to_bf16(bf[i]));
		/* Where the data section starts in the mapping ("w" is first). */
		const st_tensor *tw = st_find(f, "w");
		const uint8_t *fdata = tw ? tw->data : NULL;
		CHECK(tw && memcmp(fdata, dsec, 82) == 0, "mapped data differs from the file's bytes");
		uint64_t off = 0;
		for (int i = 0; i < 9; i++) {
			const st_tensor *t = st_find(f, want[i].name);
			CHECK(t != NULL, "'%s' missing after the round trip", want[i].name);
			if (!t)
				continue;
			char sh[64];
			CHECK(t->dtype == want[i].dt, "%s: dtype %s", want[i].name, st_dtype_name(t->dtype));
			CHECK(strcmp(st_shape_str(t, sh, sizeof sh), want[i].shape) == 0, "%s: shape %s", want[i].name, sh);
			CHECK(t->nbytes == want[i].nbytes, "%s: %zu bytes", want[i].name, t->nbytes);
			CHECK(t->begin == off, "%s: begins at %" PRIu64 ", expected %" PRIu64 " (order added)", want[i].name, t->begin, off);
			CHECK(t->nbytes == want[i].nbytes && memcmp(t->data, want[i].bytes, want[i].nbytes) == 0,
			      "%s: bytes differ", want[i].name);
			CHECK((const uint8_t *)t->data == fdata + off, "%s: data pointer", want[i].name);
			off += want[i].nbytes;
		}
		/* The file's data section starts 8-aligned. */
		const st_tensor *t0 = st_find(f, "w");
		CHECK(t0 && ((uintptr_t)t0->data & 7) == 0, "data section not 8-aligned in the mapping");
		float got[6];
		if ((t0 = st_find(f, "h")) && st_tensor_read_f32(t0, got) == 0) {
			CHECK(got[0] == 1.0f && got[1] == -2.5f && got[2] == 65504.0f && got[3] == ldexpf(1, -24),
			      "h values %g %g %g %a", got[0], got[1], got[2], got[3]);
			CHECK(fabsf(got[4] - 0.1f) < 1e-4f, "h[4] = %g", got[4]);
		}
		if ((t0 = st_find(f, "b")) && st_tensor_read_f32(t0, got) == 0)
			CHECK(got[0] == 1.0f && got[1] == -2.5f && fabsf(got[3] - 0.1f) < 1e-3f && fabsf(got[2] / 3.0e38f - 1) < 1e-2f,
			      "b values %g %g %g %g", got[0], got[1], got[2], got[3]);
		const char *v = st_metadata(f, "format");
		CHECK(v && strcmp(v, "mmf") == 0, "metadata format = %s", v ? v : "(null)");
		v = st_metadata(f, "quote");
		CHECK(v && strcmp(v, "a \"b\" \\ c\n") == 0, "metadata quote = %s", v ? v : "(null)");
		CHECK(st_metadata(f, "bad\xff") == NULL, "rejected metadata was stored");
		CHECK(st_find(f, "bad") == NULL && st_find(f, "neg") == NULL && st_find(f, "nine") == NULL &&
		      st_find(f, "dt") == NULL, "a rejected tensor was written");
	}
	st_close(f);
	free(raw);
	st_writer_free(w);

	/* Save over an existing file; and a writer with nothing in it writes
	 * "{}" plus padding, with no __metadata__. */
	w = st_writer_new();
	memset(&e, 0, sizeof e);
	CHECK(w && st_writer_save(w, path, &e) == 0, "empty save over an existing file: %s", e.msg);
	raw = read_file(path, &flen);
	CHECK(raw && flen == 16 && memcmp(raw, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0, "empty writer wrote %zu bytes", flen);
	free(raw);
	f = NULL;
	CHECK(st_open(path, &f, &e) == 0 && f && st_count(f) == 0, "empty writer's file: %s", e.msg);
	st_close(f);
	st_writer_free(w);
	st_writer_free(NULL);
	unlink(path);
}

/* ------------------------------------------------------------ 3-11. bad files */

static void test_truncated(void)
{
	/* Fewer than 8 bytes: the header length itself is cut. */
	static const uint8_t head[7] = {2, 0, 0, 0, 0, 0, 0};
	for (size_t n = 1; n < 8; n++) {
		char label[32], want[64];
		snprintf(label, sizeof label, "short%zu", n);
		snprintf(want, sizeof want, "truncated: %zu bytes", n);
		BAD(label, img_bytes(head, n), -EINVAL, want, "8-byte header length");
	}
	/* Cut inside the header. */
	const char *j = "{" T_F32("w", "[4]", 0, 16) "}";
	img m = img_json(j, NULL, 16);
	m.len = 8 + strlen(j) - 5;
	char want[128];
	snprintf(want, sizeof want, "header length %zu goes past the end of the %zu-byte file", strlen(j), m.len);
	BAD("cut-in-header", m, -EINVAL, want);
	/* Cut inside the data section: the tensor runs past the end. */
	m = img_json(j, NULL, 16);
	m.len -= 6;
	BAD("cut-in-data", m, -EINVAL, "tensor 'w'", "data_offsets [0,16] go past the 10-byte data section");
	/* Data section missing altogether: the shape alone is already too big. */
	BAD("no-data", img_json(j, NULL, 0), -EINVAL, "tensor 'w'", "shape is larger than the 0-byte data section");
	/* A later tensor past the end while the first fits. */
	BAD("second-past-end", img_json("{" T_F32("a", "[1]", 0, 4) "," T_F32("b", "[2]", 4, 12) "}", NULL, 11),
	    -EINVAL, "tensor 'b'", "data_offsets [4,12] go past the 11-byte data section");
	/* An empty tensor that begins past the end is still out of range. */
	BAD("empty-past-end", img_json("{" T_F32("e", "[0]", 9, 9) "}", NULL, 8),
	    -EINVAL, "tensor 'e'", "data_offsets [9,9] go past the 8-byte data section");
}

static void test_header_length(void)
{
	const char *j = "{}";
	/* Header length past EOF, by one and by a lot. */
	BAD("hlen-plus1", img_raw(3, j, 2, NULL, 0), -EINVAL, "header length 3 goes past the end of the 10-byte file");
	BAD("hlen-1000", img_raw(1000, j, 2, NULL, 20), -EINVAL, "header length 1000 goes past the end of the 30-byte file");
	BAD("hlen-8-only", img_raw(1, NULL, 0, NULL, 0), -EINVAL, "header length 1 goes past the end of the 8-byte file");
	/* Lengths whose 8 + n would overflow. */
	BAD("hlen-2^63", img_raw(UINT64_C(1) << 63, j, 2, NULL, 0), -EINVAL,
	    "header length 9223372036854775808 goes past the end of the 10-byte file");
	BAD("hlen-ffff", img_raw(UINT64_MAX, j, 2, NULL, 0), -EINVAL,
	    "header length 18446744073709551615 goes past the end of the 10-byte file");
	BAD("hlen-minus8", img_raw(UINT64_MAX - 7, j, 2, NULL, 0), -EINVAL,
	    "header length 18446744073709551608 goes past the end");
	BAD("hlen-2^32", img_raw(UINT64_C(1) << 32, j, 2, NULL, 0), -EINVAL,
	    "header length 4294967296 goes past the end");
	/* Too short to be a JSON object, or not starting with '{'. */
	BAD("hlen-0", img_raw(0, NULL, 0, NULL, 4), -EINVAL, "header does not start with '{'");
	BAD("hlen-1", img_raw(1, "{", 1, NULL, 0), -EINVAL, "header does not start with '{'");
	BAD("leading-space", img_json(" {}", NULL, 0), -EINVAL, "header does not start with '{'");
	BAD("not-json", img_json("hello world", NULL, 0), -EINVAL, "header does not start with '{'");
	BAD("array", img_json("[{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}]", NULL, 4),
	    -EINVAL, "header does not start with '{'");
	BAD("json-string", img_json("\"{}\"", NULL, 0), -EINVAL, "header does not start with '{'");

	/* Over the format's 100 MiB limit, in a (sparse) file big enough to
	 * hold it: refused before the header is read. */
	uint64_t n = (uint64_t)ST_MAX_HEADER + 1;
	size_t len = (size_t)n + 8 + 8;
	uint8_t *big = calloc(len, 1);
	if (!big) {
		fprintf(stderr, "skipping the header limit case: no memory\n");
		return;
	}
	put_u64(big, n);
	big[8] = '{';
	char want[128];
	snprintf(want, sizeof want, "header length %" PRIu64 " is over the %u-byte limit", n, ST_MAX_HEADER);
	st_file *f = SENTINEL;
	mmf_err e;
	memset(&e, 0, sizeof e);
	int rc = st_open_mem(big, len, "mem:huge", &f, &e);
	const char *rest_m = check_failed("st_open_mem", "mem:huge", rc, f, &e, -EINVAL, (const char *const[]){want, NULL});
	char mrest[MMF_ERR_MSG_MAX];
	snprintf(mrest, sizeof mrest, "%s", rest_m);
	free(big);

	char path[512];
	tmp_path("huge-header", path, sizeof path);
	FILE *fp = fopen(path, "wb");
	uint8_t h9[9];
	put_u64(h9, n);
	h9[8] = '{';
	CHECK(fp && fwrite(h9, 1, 9, fp) == 9 && ftruncate(fileno(fp), (off_t)len) == 0 && fclose(fp) == 0,
	      "writing the sparse file %s", path);
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open(path, &f, &e);
	const char *rest_f = check_failed("st_open", path, rc, f, &e, -EINVAL, (const char *const[]){want, NULL});
	CHECK(strcmp(rest_f, mrest) == 0, "huge header: file says '%s', memory says '%s'", rest_f, mrest);
	unlink(path);
}

static void test_bad_json(void)
{
	BAD("garbage", img_json("{garbage}", NULL, 0), -EINVAL, "header is not valid JSON");
	BAD("garbage-bytes", img_raw(6, "{\x01\x02\x03\x04}", 6, NULL, 0), -EINVAL, "header is not valid JSON");
	BAD("unterminated", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", NULL, 4),
	    -EINVAL, "header is not valid JSON");
	BAD("unterminated-string", img_json("{\"w", NULL, 0), -EINVAL, "header is not valid JSON");
	BAD("unterminated-array", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1", NULL, 0), -EINVAL, "header is not valid JSON");
	/* The JSON ends before the header length does: the rest is junk. */
	BAD("trailing-junk", img_json("{" T_F32("w", "[1]", 0, 4) "}xyz", NULL, 4), -EINVAL,
	    "header is not valid JSON", "end of file expected");
	BAD("two-objects", img_json("{}{}", NULL, 0), -EINVAL, "header is not valid JSON", "end of file expected");
	/* NUL padding is not whitespace. */
	BAD("nul-padding", img_raw(6, "{}\0\0\0\0", 6, NULL, 0), -EINVAL, "header is not valid JSON");
	/* A header length that cuts the JSON short, with the rest in "data". */
	const char *j = "{" T_F32("w", "[1]", 0, 4) "}";
	BAD("hlen-short", img_raw(strlen(j) - 1, j, strlen(j), NULL, 4), -EINVAL, "header is not valid JSON");
	BAD("duplicate-tensor", img_json("{" T_F32("w", "[1]", 0, 4) "," T_F32("w", "[1]", 4, 8) "}", NULL, 8),
	    -EINVAL, "header is not valid JSON", "duplicate object key");
	BAD("duplicate-field", img_json("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "header is not valid JSON", "duplicate object key");
	BAD("duplicate-metadata", img_json("{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0),
	    -EINVAL, "header is not valid JSON", "duplicate object key");
	BAD("bad-utf8-name", img_json("{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "header is not valid JSON");
	BAD("nul-escape-name", img_json("{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "header is not valid JSON");
	BAD("raw-nul", img_raw(10, "{\"w\0\":1}  ", 10, NULL, 0), -EINVAL, "header is not valid JSON");
	BAD("too-big-integer", img_json("{" T_F32("w", "[1]", 0, 99999999999999999999) "}", NULL, 4), -EINVAL,
	    "header is not valid JSON");
	BAD("single-quotes", img_json("{'w':1}", NULL, 0), -EINVAL, "header is not valid JSON");
	BAD("trailing-comma", img_json("{" T_F32("w", "[1]", 0, 4) ",}", NULL, 4), -EINVAL, "header is not valid JSON");
	/* Entries that are valid JSON but not objects. */
	BAD("entry-array", img_json("{\"w\":[\"F32\",[1],[0,4]]}", NULL, 4), -EINVAL, "tensor 'w'", "entry is not a JSON object");
	BAD("entry-null", img_json("{\"w\":null}", NULL, 0), -EINVAL, "tensor 'w'", "entry is not a JSON object");
	BAD("empty-name", img_json("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "a tensor has an empty name");
}

static void test_bad_dtype(void)
{
	BAD("dtype-F17", img_json("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown dtype 'F17'");
	BAD("dtype-lower", img_json("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown dtype 'f32'");
	BAD("dtype-empty", img_json("{\"w\":{\"dtype\":\"\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown dtype ''");
	BAD("dtype-prefix", img_json("{\"w\":{\"dtype\":\"F3\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown dtype 'F3'");
	/* Real safetensors dtypes that this reader does not support. */
	BAD("dtype-U16", img_json("{\"w\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown dtype 'U16'");
	BAD("dtype-F8", img_json("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown dtype 'F8_E4M3'");
	BAD("dtype-number", img_json("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "missing or non-string dtype");
	/* The second tensor is the bad one: the message names it. */
	BAD("dtype-second", img_json("{" T_F32("ok", "[1]", 0, 4) ",\"bad.one\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[4,8]}}", NULL, 8),
	    -EINVAL, "tensor 'bad.one'", "unknown dtype 'Q4'");
}

static void test_bad_shape(void)
{
	BAD("size-smaller", img_json("{" T_F32("w", "[2,2]", 0, 12) "}", NULL, 16), -EINVAL,
	    "tensor 'w'", "shape [2,2] of F32 needs 16 bytes, data_offsets give 12");
	BAD("size-larger", img_json("{" T_F32("w", "[2,2]", 0, 20) "}", NULL, 20), -EINVAL,
	    "tensor 'w'", "shape [2,2] of F32 needs 16 bytes, data_offsets give 20");
	BAD("size-f16", img_json("{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,12]}}", NULL, 12), -EINVAL,
	    "tensor 'h'", "shape [3] of F16 needs 6 bytes, data_offsets give 12");
	BAD("size-scalar", img_json("{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", NULL, 8), -EINVAL,
	    "tensor 's'", "shape [] of I64 needs 8 bytes, data_offsets give 4");
	BAD("size-empty", img_json("{" T_F32("e", "[0]", 0, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'e'", "shape [0] of F32 needs 0 bytes, data_offsets give 4");
	BAD("size-nonempty-zero", img_json("{" T_F32("w", "[1]", 4, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "shape [1] of F32 needs 4 bytes, data_offsets give 0");

	BAD("dim-negative", img_json("{" T_F32("w", "[-1,4]", 0, 16) "}", NULL, 16), -EINVAL,
	    "tensor 'w'", "shape[0] is not a non-negative integer");
	BAD("dim-negative-2", img_json("{" T_F32("w", "[4,-4]", 0, 16) "}", NULL, 16), -EINVAL,
	    "tensor 'w'", "shape[1] is not a non-negative integer");
	BAD("dim-fraction", img_json("{" T_F32("w", "[2,2.5]", 0, 20) "}", NULL, 20), -EINVAL,
	    "tensor 'w'", "shape[1] is not a non-negative integer");
	BAD("dim-real", img_json("{" T_F32("w", "[2.0]", 0, 8) "}", NULL, 8), -EINVAL,
	    "tensor 'w'", "shape[0] is not a non-negative integer");
	BAD("dim-exponent", img_json("{" T_F32("w", "[1e30]", 0, 8) "}", NULL, 8), -EINVAL,
	    "tensor 'w'", "shape[0] is not a non-negative integer");
	BAD("dim-string", img_json("{" T_F32("w", "[\"2\"]", 0, 8) "}", NULL, 8), -EINVAL,
	    "tensor 'w'", "shape[0] is not a non-negative integer");
	BAD("dim-null", img_json("{" T_F32("w", "[1,null]", 0, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "shape[1] is not a non-negative integer");
	BAD("dim-bool", img_json("{" T_F32("w", "[true]", 0, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "shape[0] is not a non-negative integer");
	BAD("dim-nested", img_json("{" T_F32("w", "[[1]]", 0, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "shape[0] is not a non-negative integer");
	BAD("shape-object", img_json("{" T_F32("w", "{}", 0, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "missing or non-array shape");
	BAD("shape-number", img_json("{" T_F32("w", "4", 0, 16) "}", NULL, 16), -EINVAL,
	    "tensor 'w'", "missing or non-array shape");
	BAD("nine-dims", img_json("{" T_F32("w", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "9 dimensions, at most 8 supported");

	/* Dimensions whose product overflows 64 bits. In the first ones a
	 * single dimension is already larger than the data section; in the
	 * last ones every dimension fits in the 1 MiB data section but the
	 * product is 2^64 and would wrap to 0, so a careless reader would
	 * accept the [0,0] range. */
	BAD("dims-2^32-squared", img_json("{" T_F32("w", "[4294967296,4294967296]", 0, 0) "}", NULL, 0), -EINVAL,
	    "tensor 'w'", "shape is larger than the 0-byte data section");
	BAD("dims-int64-max", img_json("{" T_F32("w", "[9223372036854775807,2]", 0, 8) "}", NULL, 8), -EINVAL,
	    "tensor 'w'", "shape is larger than the 8-byte data section");
	BAD("dims-wrap-to-0", img_json("{" T_F32("w", "[65536,65536,65536,65536]", 0, 0) "}", NULL, 1048576), -EINVAL,
	    "tensor 'w'", "shape is larger than the 1048576-byte data section");
	BAD("dims-wrap-8-dims", img_json("{" T_F32("w", "[256,256,256,256,256,256,256,256]", 0, 0) "}", NULL, 1048576), -EINVAL,
	    "tensor 'w'", "shape is larger than the 1048576-byte data section");
	/* Here nelem (2^61) fits in 64 bits but nelem x 8 bytes is 2^64. */
	BAD("dims-wrap-bytes", img_json("{\"w\":{\"dtype\":\"F64\",\"shape\":[1048576,1048576,1048576,2],\"data_offsets\":[0,0]}}", NULL, 1048576),
	    -EINVAL, "tensor 'w'", "shape is larger than the 1048576-byte data section");
}

static void test_bad_offsets(void)
{
	/* Overlaps: partial, identical, one inside another, and one found
	 * only after sorting (the header lists them out of order). */
	BAD("overlap-partial", img_json("{" T_F32("a", "[4]", 0, 16) "," T_F32("b", "[4]", 8, 24) "}", NULL, 24), -EINVAL,
	    "tensors 'a' [0,16] and 'b' [8,24] overlap");
	BAD("overlap-identical", img_json("{" T_F32("a", "[4]", 0, 16) "," T_F32("b", "[4]", 0, 16) "}", NULL, 16), -EINVAL,
	    "'a' [0,16]", "'b' [0,16]", "overlap");
	BAD("overlap-inside", img_json("{" T_F32("outer", "[8]", 0, 32) "," T_F32("inner", "[2]", 8, 16) "}", NULL, 32), -EINVAL,
	    "tensors 'outer' [0,32] and 'inner' [8,16] overlap");
	BAD("overlap-unsorted", img_json("{" T_F32("c", "[2]", 16, 24) "," T_F32("a", "[2]", 0, 8) "," T_F32("b", "[3]", 4, 16) "}", NULL, 24),
	    -EINVAL, "tensors 'a' [0,8] and 'b' [4,16] overlap");
	/* The overlap is with a tensor two places back in begin order. */
	BAD("overlap-far", img_json("{" T_F32("big", "[16]", 0, 64) "," T_F32("x", "[1]", 4, 8) "," T_F32("y", "[1]", 40, 44) "}", NULL, 64),
	    -EINVAL, "'big' [0,64]", "overlap");
	BAD("overlap-one-byte", img_json("{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
					 "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[2,5]}}", NULL, 5),
	    -EINVAL, "tensors 'a' [0,3] and 'b' [2,5] overlap");

	BAD("begin-after-end", img_json("{" T_F32("w", "[2]", 16, 8) "}", NULL, 16), -EINVAL,
	    "tensor 'w'", "data_offsets [16,8] end before they begin");
	BAD("offsets-negative", img_json("{" T_F32("w", "[1]", -4, 0) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "data_offsets are not non-negative integers");
	BAD("offsets-real", img_json("{" T_F32("w", "[1]", 0, 4.0) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "data_offsets are not non-negative integers");
	BAD("offsets-strings", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", NULL, 4), -EINVAL,
	    "tensor 'w'", "data_offsets are not non-negative integers");
	BAD("offsets-one", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", NULL, 4), -EINVAL,
	    "tensor 'w'", "data_offsets must be an array [begin, end]");
	BAD("offsets-three", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", NULL, 8), -EINVAL,
	    "tensor 'w'", "data_offsets must be an array [begin, end]");
	BAD("offsets-object", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"begin\":0,\"end\":4}}}", NULL, 4), -EINVAL,
	    "tensor 'w'", "data_offsets must be an array [begin, end]");
	BAD("offsets-huge", img_json("{" T_F32("w", "[1]", 9223372036854775803, 9223372036854775807) "}", NULL, 4), -EINVAL,
	    "tensor 'w'", "data_offsets [9223372036854775803,9223372036854775807] go past the 4-byte data section");
}

static void test_bad_fields(void)
{
	BAD("unknown-field", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"stride\":[1]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown field 'stride'");
	BAD("unknown-field-first", img_json("{\"w\":{\"offset\":0,\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown field 'offset'");
	BAD("field-case", img_json("{\"w\":{\"DType\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "unknown field 'DType'");
	BAD("missing-dtype", img_json("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "missing or non-string dtype");
	BAD("missing-shape", img_json("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "missing or non-array shape");
	BAD("missing-offsets", img_json("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", NULL, 4),
	    -EINVAL, "tensor 'w'", "data_offsets must be an array [begin, end]");
	BAD("empty-entry", img_json("{\"w\":{}}", NULL, 0), -EINVAL, "tensor 'w'", "missing or non-string dtype");

	BAD("meta-number", img_json("{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", NULL, 0),
	    -EINVAL, "__metadata__ key 'epoch' is not a string");
	BAD("meta-null", img_json("{\"__metadata__\":{\"k\":null}}", NULL, 0), -EINVAL, "__metadata__ key 'k' is not a string");
	BAD("meta-object", img_json("{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", NULL, 0), -EINVAL, "__metadata__ key 'k' is not a string");
	BAD("meta-array", img_json("{\"__metadata__\":{\"k\":[\"a\"]}}", NULL, 0), -EINVAL, "__metadata__ key 'k' is not a string");
	BAD("meta-not-object", img_json("{\"__metadata__\":[\"a\",\"b\"]}", NULL, 0), -EINVAL, "__metadata__ is not an object of strings");
	BAD("meta-string", img_json("{\"__metadata__\":\"pt\"}", NULL, 0), -EINVAL, "__metadata__ is not an object of strings");
	/* Metadata is checked wherever it appears, after tensors too. */
	BAD("meta-after-tensor", img_json("{" T_F32("w", "[1]", 0, 4) ",\"__metadata__\":{\"n\":1}}", NULL, 4),
	    -EINVAL, "__metadata__ key 'n' is not a string");
}

static void test_bad_fs(void)
{
	char path[512];
	mmf_err e;
	st_file *f;
	int rc;

	/* An empty file, and empty memory. */
	tmp_path("empty-file", path, sizeof path);
	write_file(path, "", 0);
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open(path, &f, &e);
	check_failed("st_open", path, rc, f, &e, -EINVAL, (const char *const[]){"empty file", NULL});
	unlink(path);
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open_mem("", 0, "mem:empty", &f, &e);
	check_failed("st_open_mem", "mem:empty", rc, f, &e, -EINVAL, (const char *const[]){"empty file", NULL});

	/* A directory. */
	tmp_path("a-directory", path, sizeof path);
	CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open(path, &f, &e);
	check_failed("st_open", path, rc, f, &e, -EISDIR, (const char *const[]){"is a directory", NULL});
	rmdir(path);

	/* A path that does not exist, and one under a missing directory. */
	tmp_path("does-not-exist.safetensors", path, sizeof path);
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open(path, &f, &e);
	check_failed("st_open", path, rc, f, &e, -ENOENT, (const char *const[]){"cannot open", "No such file or directory", NULL});
	tmp_path("missing-dir/x.safetensors", path, sizeof path);
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open(path, &f, &e);
	check_failed("st_open", path, rc, f, &e, -ENOENT, (const char *const[]){"cannot open", NULL});
	/* The empty path. */
	f = SENTINEL;
	memset(&e, 0, sizeof e);
	rc = st_open("", &f, &e);
	CHECK(rc == -ENOENT && f == NULL, "st_open(\"\"): %d", rc);

	/* A character device. */
	struct stat sb;
	if (stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode)) {
		f = SENTINEL;
		memset(&e, 0, sizeof e);
		rc = st_open("/dev/null", &f, &e);
		check_failed("st_open", "/dev/null", rc, f, &e, -EINVAL, (const char *const[]){"not a regular file", NULL});
	}
}

/* ------------------------------------------------------------ 12. fp16 / bf16 */

/* The value of a half, computed independently of the library. */
static double half_value(uint16_t h)
{
	int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v = e == 0 ? ldexp(m, -24) : e == 0x1f ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
	return s ? -v : v;
}

static void test_fp16(void)
{
	/* Every half pattern: exact value, and back to the same bits. */
	int bad_value = 0, bad_back = 0, bad_nan = 0;
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = mmf_half_to_float((uint16_t)h);
		double want = half_value((uint16_t)h);
		int nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
		if (nan) {
			uint16_t back = mmf_float_to_half(f);
			int ok = isnan(f) && !!signbit(f) == !!(h & 0x8000) && (back & 0x7c00) == 0x7c00 &&
				 (back & 0x3ff) != 0 && (back & 0x8000) == (h & 0x8000);
			if (!ok && bad_nan++ < 5)
				CHECK(0, "half NaN %#06x -> %a -> %#06x", h, f, back);
			continue;
		}
		if (!same_bits(f, (float)want) && bad_value++ < 5)
			CHECK(0, "half %#06x -> %a, expected %a", h, f, want);
		uint16_t back = mmf_float_to_half(f);
		if (back != h && bad_back++ < 5)
			CHECK(0, "half %#06x -> %a -> %#06x", h, f, back);
	}
	CHECK(bad_value == 0, "%d half values wrong", bad_value);
	CHECK(bad_back == 0, "%d halves do not round-trip", bad_back);
	CHECK(bad_nan == 0, "%d half NaNs do not stay NaN", bad_nan);

	/* Every rounding midpoint between adjacent finite halves (both signs):
	 * the midpoint goes to the even one, one float ulp either side goes
	 * to the nearer one. */
	int bad_mid = 0;
	for (uint32_t h = 0; h < 0x7bff; h++) {
		for (int s = 0; s < 2; s++) {
			uint16_t lo = (uint16_t)(h | (s ? 0x8000 : 0)), hi = (uint16_t)(lo + 1);
			float a = mmf_half_to_float(lo), b = mmf_half_to_float(hi);
			float mid = a + (b - a) / 2;	/* exact: 12 significant bits */
			uint16_t even = (h & 1) ? hi : lo;
			uint16_t r0 = mmf_float_to_half(mid), r1 = mmf_float_to_half(nextafterf(mid, a)),
				 r2 = mmf_float_to_half(nextafterf(mid, b));
			if ((r0 != even || r1 != lo || r2 != hi) && bad_mid++ < 5)
				CHECK(0, "rounding between %#06x and %#06x: mid %a -> %#06x, below -> %#06x, above -> %#06x",
				      lo, hi, mid, r0, r1, r2);
		}
	}
	CHECK(bad_mid == 0, "%d half rounding midpoints wrong", bad_mid);

	/* Hand-picked values. */
	static const struct {
		float f;
		uint16_t h;
	} cases[] = {
		{0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3c00}, {-2.5f, 0xc100}, {0.5f, 0x3800},
		{65504.0f, 0x7bff}, {-65504.0f, 0xfbff},
		{1.0f + 0x1p-11f, 0x3c00},		/* tie, to even (down) */
		{1.0f + 0x3p-11f, 0x3c02},		/* tie, to even (up) */
		{1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},	/* just above the tie */
		{1.0f + 0x1p-11f - 0x1p-20f, 0x3c00},	/* just below the tie */
		{65519.0f, 0x7bff},			/* below the overflow tie */
		{65520.0f, 0x7c00},			/* the tie rounds to even: inf */
		{-65520.0f, 0xfc00},
		{1e10f, 0x7c00}, {FLT_MAX, 0x7c00}, {INFINITY, 0x7c00}, {-INFINITY, 0xfc00},
		{0x1p-24f, 0x0001},			/* smallest subnormal */
		{0x1p-25f, 0x0000},			/* half of it: tie, to even (0) */
		{0x1.000002p-25f, 0x0001},		/* just above the tie */
		{0x3p-25f, 0x0002},			/* 1.5 ulp: tie, to even (2) */
		{0x5p-25f, 0x0002},			/* 2.5 ulp: tie, to even (2) */
		{-0x1p-24f, 0x8001}, {-0x1p-26f, 0x8000},
		{0x1p-26f, 0x0000}, {1e-8f, 0x0000}, {FLT_MIN, 0x0000}, {0x1p-149f, 0x0000},
		{0x3ffp-24f, 0x03ff},			/* largest subnormal */
		{0x7ffp-25f, 0x0400},			/* tie between it and the smallest normal: even */
		{0x1p-14f, 0x0400},			/* smallest normal */
		{0.1f, 0x2e66}, {0.333333333f, 0x3555}, {3.14159265f, 0x4248}, {2048.0f + 1.0f, 0x6800},
		{2048.0f + 3.0f, 0x6802},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint16_t h = mmf_float_to_half(cases[i].f);
		CHECK(h == cases[i].h, "float_to_half(%a) = %#06x, expected %#06x", cases[i].f, h, cases[i].h);
	}
	uint16_t n = mmf_float_to_half(NAN);
	CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff), "float_to_half(NaN) = %#06x", n);
	n = mmf_float_to_half(f32_bits(0x7f800001));	/* payload only in the low bits */
	CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff), "float_to_half(sNaN 0x7f800001) = %#06x (must not become inf)", n);
	n = mmf_float_to_half(f32_bits(0xffc00000));
	CHECK(n & 0x8000 && (n & 0x3ff), "float_to_half(-NaN) = %#06x", n);
}

static void test_bf16(void)
{
	/* bf16 is the top half of a float: every pattern converts exactly. */
	int bad = 0;
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = mmf_bf16_to_float((uint16_t)h);
		if (bits_f32(f) != h << 16 && bad++ < 5)
			CHECK(0, "bf16 %#06x -> %#010x", h, bits_f32(f));
		int nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
		uint16_t back = mmf_float_to_bf16(f);
		if (nan ? !(isnan(mmf_bf16_to_float(back)) && (back & 0x8000) == (h & 0x8000)) : back != h)
			if (bad++ < 5)
				CHECK(0, "bf16 %#06x -> %a -> %#06x", h, f, back);
		if (nan)
			continue;
		if (h == 0x7f7f || h == 0xff7f || (h & 0x7fff) >= 0x7f80)
			continue;
		/* Midpoint to the next one up in magnitude, and either side. */
		uint32_t u = h << 16;
		uint16_t lo = (uint16_t)h, hi = (uint16_t)(h + 1), even = (h & 1) ? hi : lo;
		uint16_t r0 = mmf_float_to_bf16(f32_bits(u | 0x8000)), r1 = mmf_float_to_bf16(f32_bits(u | 0x7fff)),
			 r2 = mmf_float_to_bf16(f32_bits(u | 0x8001));
		if ((r0 != even || r1 != lo || r2 != hi) && bad++ < 5)
			CHECK(0, "bf16 rounding above %#06x: %#06x %#06x %#06x", h, r0, r1, r2);
	}
	CHECK(bad == 0, "%d bf16 conversions wrong", bad);
	/* Overflow: the tie above the largest finite bf16 goes to inf (even). */
	CHECK(mmf_float_to_bf16(f32_bits(0x7f7f8000)) == 0x7f80, "bf16 overflow tie: %#06x", mmf_float_to_bf16(f32_bits(0x7f7f8000)));
	CHECK(mmf_float_to_bf16(f32_bits(0x7f7f7fff)) == 0x7f7f, "bf16 below the overflow tie");
	CHECK(mmf_float_to_bf16(FLT_MAX) == 0x7f80, "bf16(FLT_MAX) = %#06x", mmf_float_to_bf16(FLT_MAX));
	CHECK(mmf_float_to_bf16(1.0f) == 0x3f80 && mmf_float_to_bf16(-2.5f) == 0xc020, "bf16 of 1, -2.5");
	CHECK(mmf_float_to_bf16(0.1f) == 0x3dcd, "bf16(0.1) = %#06x", mmf_float_to_bf16(0.1f));
	uint16_t n = mmf_float_to_bf16(f32_bits(0x7f800001));	/* NaN payload below bit 16 */
	CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f), "bf16(sNaN 0x7f800001) = %#06x (must not become inf)", n);
	n = mmf_float_to_bf16(f32_bits(0x7fffffff));	/* would carry into the sign */
	CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) && !(n & 0x8000), "bf16(0x7fffffff) = %#06x", n);
}

static void test_dtype_table(void)
{
	static const struct {
		st_dtype d;
		const char *name;
		size_t size;
	} t[] = {
		{ST_F64, "F64", 8}, {ST_F32, "F32", 4}, {ST_F16, "F16", 2}, {ST_BF16, "BF16", 2}, {ST_I64, "I64", 8},
		{ST_I32, "I32", 4}, {ST_I16, "I16", 2}, {ST_I8, "I8", 1}, {ST_U8, "U8", 1}, {ST_BOOL, "BOOL", 1},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		CHECK(strcmp(st_dtype_name(t[i].d), t[i].name) == 0 && st_dtype_size(t[i].d) == t[i].size,
		      "dtype %d: %s %zu", (int)t[i].d, st_dtype_name(t[i].d), st_dtype_size(t[i].d));
	CHECK(strcmp(st_dtype_name(st_dtype_max), "?") == 0 && st_dtype_size(st_dtype_max) == 0, "out-of-range dtype");
}

int main(void)
{
	test_dtype_table();
	test_valid();
	test_valid_edges();
	test_golden_file();
	test_writer();
	test_truncated();
	test_header_length();
	test_bad_json();
	test_bad_dtype();
	test_bad_shape();
	test_bad_offsets();
	test_bad_fields();
	test_bad_fs();
	test_fp16();
	test_bf16();
	return test_done("test_safetensors");
}
