/* safetensors: a strict, bounded reader (mmap) and a writer for the
 * safetensors format: an 8-byte little-endian header length N, N bytes of
 * JSON, then the data section. Every tensor's dtype, shape and byte range is
 * checked against the file before anything is handed out, so a caller may
 * trust st_tensor.data for st_tensor.nbytes bytes. Data pointers are not
 * necessarily aligned: read them with st_tensor_read_f32() or memcpy. */
#ifndef MMF_SAFETENSORS_H
#define MMF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define ST_MAX_DIMS 8
/* The format's own limit on the header; also bounds our allocation. */
#define ST_MAX_HEADER (100u << 20)

typedef enum st_dtype {
	ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
	st_dtype_max
} st_dtype;

typedef struct st_tensor {
	const char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	uint64_t nelem;
	const void *data;	/* inside the mapped file */
	size_t nbytes;
	uint64_t begin, end;	/* offsets in the data section */
} st_tensor;

typedef struct st_file st_file;

/* Opens, maps and validates path. On failure *out is NULL and err says why. */
int st_open(const char *path, st_file **out, mmf_err *err);
/* Same checks over a caller-owned buffer (which must outlive the st_file);
 * name is used in messages. */
int st_open_mem(const void *buf, size_t len, const char *name, st_file **out, mmf_err *err);
void st_close(st_file *f);

const char *st_path(const st_file *f);
size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);
const st_tensor *st_find(const st_file *f, const char *name);
/* The string value of __metadata__[key], or NULL. */
const char *st_metadata(const st_file *f, const char *key);
/* Metadata entry i (0 .. st_metadata_count()-1): its key, value in *value. */
size_t st_metadata_count(const st_file *f);
const char *st_metadata_at(const st_file *f, size_t i, const char **value);

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
/* Formats "[a,b,c]" into buf. */
const char *st_shape_str(const st_tensor *t, char *buf, size_t len);
/* Converts a floating tensor (F64/F32/F16/BF16) to float32. Returns -EINVAL
 * for other dtypes. dst must hold t->nelem floats. */
int st_tensor_read_f32(const st_tensor *t, float *dst);

/* Writer: tensors are written in the order added; data is copied at add time. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
		  const int64_t *shape, const void *data, mmf_err *err);
/* Adds a float32 array converted to dtype (F32, F16 or BF16). */
int st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim,
		      const int64_t *shape, const float *data, mmf_err *err);
int st_writer_meta(st_writer *w, const char *key, const char *value, mmf_err *err);
int st_writer_save(const st_writer *w, const char *path, mmf_err *err);

/* fp16/bf16 <-> fp32, round to nearest even. */
float mmf_half_to_float(uint16_t h);
uint16_t mmf_float_to_half(float f);
float mmf_bf16_to_float(uint16_t h);
uint16_t mmf_float_to_bf16(float f);

#endif
