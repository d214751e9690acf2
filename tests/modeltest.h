/* modeltest: helpers shared by the model-loading tests (include after
 * testutil.h). */
#ifndef MMF_MODELTEST_H
#define MMF_MODELTEST_H

#include "engine/model.h"
#include "engine/safetensors.h"

/* One edit of a model file (model_copy). */
typedef struct model_edit {
	const char *name;	/* the tensor to replace or drop, or NULL */
	st_dtype dtype;		/* its replacement: dtype, shape and bytes; */
	int ndim;
	const int64_t *shape;
	const void *data;	/* NULL drops it */
	const st_tensor *add;	/* a tensor to append, or NULL */
	const char *meta_k, *meta_v;	/* metadata key to set (or NULL) */
} model_edit;

/* Copies the safetensors model src to dst, every tensor and metadata entry
 * as it is but for the edit e. */
static void model_copy(const char *src, const char *dst, const model_edit *e)
{
	mmf_err err = {0};
	st_file *f;
	if (st_open(src, &f, &err) < 0) {
		CHECK(0, "%s", err.msg);
		return;
	}
	st_writer *w = st_writer_new();
	for (size_t i = 0; i < st_count(f); i++) {
		const st_tensor *t = st_at(f, i);
		if (!e->name || strcmp(t->name, e->name))
			st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err);
		else if (e->data)
			st_writer_add(w, t->name, e->dtype, e->ndim, e->shape, e->data, &err);
	}
	if (e->add)
		st_writer_add(w, e->add->name, e->add->dtype, e->add->ndim, e->add->shape, e->add->data, &err);
	for (size_t i = 0; i < st_metadata_count(f); i++) {
		const char *v, *k = st_metadata_at(f, i, &v);
		if (!e->meta_k || strcmp(k, e->meta_k))
			st_writer_meta(w, k, v, &err);
	}
	if (e->meta_k)
		st_writer_meta(w, e->meta_k, e->meta_v, &err);
	CHECK(st_writer_save(w, dst, &err) == 0, "%s", err.msg);
	st_writer_free(w);
	st_close(f);
}

/* Loading path must fail with code and a message holding s1 and s2; the
 * message is printed after `what`. */
static void expect_load_error(const char *what, const char *path, int code, const char *s1, const char *s2)
{
	mmf_err err = {0};
	clip_model *m = (clip_model *)1;
	int rc = clip_model_load(path, &m, &err);
	CHECK(rc == code, "%s: rc %d, expected %d (%s)", what, rc, code, err.msg);
	CHECK(m == NULL, "%s: model returned on failure", what);
	CHECK_MSG(err.msg, s1, s2);
	printf("  %-30s -> %s\n", what, err.msg);
}

#endif
