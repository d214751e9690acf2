/* testutil: a minimal harness. CHECK records a failure and goes on;
 * test_done() prints "N passed, N failed" and returns the exit status
 * (automake: 0 pass, 1 fail, 77 skip). */
#ifndef MMF_TESTUTIL_H
#define MMF_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (cond) {                                                       \
			t_pass++;                                                 \
		} else {                                                          \
			t_fail++;                                                 \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                             \
			fputc('\n', stderr);                                      \
		}                                                                 \
	} while (0)

/* The error message must contain every one of the given substrings. */
#define CHECK_MSG(msg, ...)                                                       \
	do {                                                                      \
		const char *subs_[] = {__VA_ARGS__};                              \
		for (size_t i_ = 0; i_ < sizeof subs_ / sizeof subs_[0]; i_++)    \
			CHECK(strstr((msg), subs_[i_]) != NULL, "message '%s' lacks '%s'", (msg), subs_[i_]); \
	} while (0)

static inline int test_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
	return t_fail ? 1 : 0;
}

/* Path of a file under the source tree (srcdir from the test environment). */
static inline const char *test_src(const char *rel, char *buf, size_t len)
{
	const char *s = getenv("srcdir");
	snprintf(buf, len, "%s/%s", s && *s ? s : ".", rel);
	return buf;
}

/* A private temporary directory, made once per process. */
static inline const char *test_tmpdir(void)
{
	static char dir[256];
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/mmf-test-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(99);
		}
	}
	return dir;
}

/* A file name under test_tmpdir(); the last eight stay valid. */
static inline const char *test_tmp(const char *name)
{
	static char buf[8][512];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, 512, "%s/%s", test_tmpdir(), name);
	return b;
}

/* Cosine similarity and max abs difference of two float vectors. */
static inline double test_cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;
	for (int i = 0; i < n; i++)
		ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
	return ab / (sqrt(aa) * sqrt(bb) + 1e-300);
}

static inline double test_maxabs(const float *a, const float *b, int n)
{
	double m = 0;
	for (int i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > m || isnan(a[i] - b[i]))
			m = isnan(a[i] - b[i]) ? INFINITY : fabs((double)a[i] - b[i]);
	return m;
}

#endif
