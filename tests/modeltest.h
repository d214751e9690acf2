/* modeltest: helpers shared by the model-loading tests (include after
 * testutil.h). */
#ifndef MMF_MODELTEST_H
#define MMF_MODELTEST_H

#include "engine/model.h"

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
