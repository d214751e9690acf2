/* INT8 weights: per-output-channel symmetric quantisation, and the
 * pre-quantised safetensors that mmf-mkmodel --quantize writes. */
#include "config.h"
#include "quant.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

static int8_t quant1(float w, float s)
{
	if (s == 0.f)
		return 0;
	long v = lrintf(w / s);
	return (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
}

void mmf_quant(const float *w, int64_t rows, int64_t cols, int out_dim, int8_t *q, float *s)
{
	if (out_dim == 0) {
		for (int64_t r = 0; r < rows; r++) {
			const float *x = w + r * cols;
			float amax = 0.f;
			for (int64_t c = 0; c < cols; c++)
				amax = fmaxf(amax, fabsf(x[c]));
			s[r] = amax / 127.f;
			for (int64_t c = 0; c < cols; c++)
				q[r * cols + c] = quant1(x[c], s[r]);
		}
		return;
	}
	for (int64_t c = 0; c < cols; c++) {
		float amax = 0.f;
		for (int64_t r = 0; r < rows; r++)
			amax = fmaxf(amax, fabsf(w[r * cols + c]));
		s[c] = amax / 127.f;
	}
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			q[r * cols + c] = quant1(w[r * cols + c], s[c]);
}

void mmf_dequant(const int8_t *q, const float *s, int64_t rows, int64_t cols, int out_dim, float *w)
{
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			w[r * cols + c] = (float)q[r * cols + c] * s[out_dim == 0 ? r : c];
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ends(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

int mmf_quant_out_dim(const char *name, int ndim)
{
	if (ndim == 2 && strcmp(name, "text_projection") == 0)
		return 1;
	if (ndim == 4 && starts(name, "visual.") && ends(name, ".weight"))
		return 0;	/* every convolution of the ModifiedResNet */
	if (ndim == 2 && starts(name, "visual.attnpool.") && ends(name, "_proj.weight"))
		return 0;
	if (ndim == 2 && starts(name, "transformer.resblocks.") &&
	    (ends(name, ".attn.in_proj_weight") || ends(name, ".attn.out_proj.weight") || ends(name, ".mlp.c_fc.weight") ||
	     ends(name, ".mlp.c_proj.weight")))
		return 0;
	return -1;
}

static int is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

/* Adds tensor t quantised: I8 values under its name, F32 scales under
 * <name>_scale. */
static int add_quantised(st_writer *w, const st_file *f, const st_tensor *t, int out_dim, mmf_err *err)
{
	/* rows x cols: dim 0 against the rest (for out_dim 1 the tensor is 2-d) */
	int64_t rows = t->shape[0], cols = rows ? (int64_t)(t->nelem / (uint64_t)rows) : 0;
	int64_t nout = out_dim == 0 ? rows : cols;
	float *x = malloc((t->nelem ? t->nelem : 1) * sizeof *x), *s = malloc((size_t)(nout ? nout : 1) * sizeof *s);
	int8_t *q = malloc(t->nelem ? t->nelem : 1);
	int rc;
	if (!x || !s || !q) {
		rc = mmf_err_set(err, -ENOMEM, "out of memory quantising '%s'", t->name);
		goto out;
	}
	st_tensor_read_f32(t, x);
	for (uint64_t i = 0; i < t->nelem; i++)
		if (!isfinite(x[i])) {
			rc = mmf_err_set(err, -EINVAL, "%s: tensor '%s' holds a non-finite value at element %llu", st_path(f),
					 t->name, (unsigned long long)i);
			goto out;
		}
	mmf_quant(x, rows, cols, out_dim, q, s);
	char sname[512];
	snprintf(sname, sizeof sname, "%s_scale", t->name);
	if ((rc = st_writer_add(w, t->name, ST_I8, t->ndim, t->shape, q, err)) < 0 ||
	    (rc = st_writer_add(w, sname, ST_F32, 1, &nout, s, err)) < 0)
		goto out;
	rc = 0;
out:
	free(x), free(s), free(q);
	return rc;
}

int mmf_quantize_file(const char *in, const char *out, void (*progress)(const char *name, int i, int n), mmf_err *err)
{
	st_file *f;
	int rc = st_open(in, &f, err);
	if (rc < 0)
		return rc;
	st_writer *w = st_writer_new();
	if (!w) {
		st_close(f);
		return mmf_err_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < st_metadata_count(f); i++) {
		const char *v, *k = st_metadata_at(f, i, &v);
		if (strcmp(k, "mmf.weights") && (rc = st_writer_meta(w, k, v, err)) < 0)
			goto out;
	}
	if ((rc = st_writer_meta(w, "mmf.weights", "int8 per output channel, symmetric (<name>_scale)", err)) < 0)
		goto out;
	int n = (int)st_count(f), nq = 0;	/* quantisable weights, float or already I8 */
	for (int i = 0; i < n; i++) {
		const st_tensor *t = st_at(f, (size_t)i);
		int od = mmf_quant_out_dim(t->name, t->ndim);
		if (progress)
			progress(t->name, i, n);
		if (od >= 0 && is_float(t->dtype)) {
			char sname[512];
			snprintf(sname, sizeof sname, "%s_scale", t->name);
			if (st_find(f, sname)) {
				rc = mmf_err_set(err, -EINVAL, "%s: tensor '%s' is float but the file already has '%s'", in, t->name, sname);
				goto out;
			}
			if ((rc = add_quantised(w, f, t, od, err)) < 0)
				goto out;
		} else if ((rc = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, err)) < 0)
			goto out;
		nq += od >= 0;
	}
	if (nq == 0) {
		rc = mmf_err_set(err, -EINVAL, "%s: no convolution or linear weight to quantise (not an open_clip CLIP model?)", in);
		goto out;
	}
	rc = st_writer_save(w, out, err);
out:
	st_writer_free(w);
	st_close(f);
	return rc;
}
