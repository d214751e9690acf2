/* fuzz_safetensors: libFuzzer target for the safetensors reader.
 *
 * Every input goes through st_open_mem(). A rejected input must come back
 * with a negative code, *out NULL and a non-empty message. An accepted one
 * must keep the reader's promises, which are checked here and abort() when
 * broken (so libFuzzer records the input as a crash): every tensor's byte
 * range lies inside the data section of the input, is nelem x dtype size
 * bytes long, and overlaps no other non-empty tensor; names are non-empty
 * and found again by st_find(). Then every tensor is walked (st_at,
 * st_shape_str, st_tensor_read_f32 for the float dtypes, so ASan sees every
 * byte read) and a few metadata keys are looked up before st_close(). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"

/* Float dtypes are converted only up to this many elements per tensor. */
#define FUZZ_MAX_ELEMS (1u << 24)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                              \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "fuzz_safetensors: broken promise: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                   \
		}                                                                  \
	} while (0)

static int is_float(st_dtype d)
{
	return d == ST_F64 || d == ST_F32 || d == ST_F16 || d == ST_BF16;
}

/* The 8-byte little-endian header length, already validated by the reader. */
static uint64_t header_len(const uint8_t *data)
{
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | data[i];
	return n;
}

static void walk(st_file *f, const uint8_t *data, size_t size)
{
	REQUIRE(size >= 8);
	uint64_t hlen = header_len(data);
	REQUIRE(hlen <= size - 8);
	const uint8_t *dsec = data + 8 + hlen;
	uint64_t dsize = size - 8 - hlen;
	size_t n = st_count(f);
	REQUIRE(st_at(f, n) == NULL);
	volatile float sink = 0;
	for (size_t i = 0; i < n; i++) {
		const st_tensor *t = st_at(f, i);
		REQUIRE(t != NULL && t->name != NULL && t->name[0] != '\0');
		REQUIRE(st_find(f, t->name) == t);
		REQUIRE(t->dtype < st_dtype_max);
		REQUIRE(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
		uint64_t ne = 1;
		int zero = 0;
		for (int d = 0; d < t->ndim; d++) {
			REQUIRE(t->shape[d] >= 0);
			if (t->shape[d] == 0)
				zero = 1;
			else if (!zero)
				ne *= (uint64_t)t->shape[d];	/* bounded: checked by the reader */
		}
		REQUIRE(t->nelem == (zero ? 0 : ne));
		REQUIRE(t->begin <= t->end && t->end <= dsize);
		REQUIRE(t->nbytes == t->end - t->begin);
		REQUIRE(t->nelem * st_dtype_size(t->dtype) == t->nbytes);
		REQUIRE((const uint8_t *)t->data == dsec + t->begin);
		/* Pairwise disjointness, bounded so huge headers stay fast. */
		for (size_t j = 0; j < i && j < 256; j++) {
			const st_tensor *u = st_at(f, j);
			if (t->nbytes && u->nbytes)
				REQUIRE(t->end <= u->begin || u->end <= t->begin);
		}
		char sh[256];
		st_shape_str(t, sh, sizeof sh);
		REQUIRE(memchr(sh, '\0', sizeof sh) != NULL);
		char tiny[5];	/* truncation must stay inside the buffer */
		st_shape_str(t, tiny, sizeof tiny);
		REQUIRE(memchr(tiny, '\0', sizeof tiny) != NULL);
		(void)st_dtype_name(t->dtype);
		if (is_float(t->dtype) && t->nelem <= FUZZ_MAX_ELEMS) {
			float *buf = malloc((size_t)(t->nelem ? t->nelem : 1) * sizeof *buf);
			if (!buf)
				continue;
			REQUIRE(st_tensor_read_f32(t, buf) == 0);
			for (uint64_t k = 0; k < t->nelem; k++)
				sink += buf[k];
			free(buf);
		} else if (!is_float(t->dtype)) {
			float dummy;
			REQUIRE(st_tensor_read_f32(t, &dummy) < 0);
			/* Integer data is handed out as raw bytes: touch them all. */
			const volatile uint8_t *b = t->data;
			for (size_t k = 0; k < t->nbytes; k++)
				sink += b[k];
		}
	}
	(void)sink;
	static const char *const keys[] = {"format", "", "__metadata__", "mmf.arch", "dtype"};
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		const char *v = st_metadata(f, keys[k]);
		if (v)
			(void)strlen(v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	st_file *f = NULL;
	mmf_err err;
	memset(&err, 0, sizeof err);
	int rc = st_open_mem(data, size, "fuzz", &f, &err);
	if (rc < 0) {
		REQUIRE(f == NULL);
		REQUIRE(err.code == rc);
		REQUIRE(err.msg[0] != '\0');
		REQUIRE(memchr(err.msg, '\0', sizeof err.msg) != NULL);
		return 0;
	}
	REQUIRE(rc == 0 && f != NULL);
	REQUIRE(strcmp(st_path(f), "fuzz") == 0);
	walk(f, data, size);
	st_close(f);
	return 0;
}
