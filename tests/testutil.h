/* testutil: a minimal harness. CHECK records a failure and goes on;
 * test_done() prints "N passed, N failed" and returns the exit status
 * (automake: 0 pass, 1 fail, 77 skip). */
#ifndef MMF_TESTUTIL_H
#define MMF_TESTUTIL_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

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

/* Removes path and, if it is a directory, what it holds (not following
 * links). */
static inline void test_rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[1024];
			int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			if (n > 0 && (size_t)n < sizeof sub)
				test_rm_tree(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static char test_tmpdir_path[256];
static pid_t test_tmpdir_owner;

/* At exit of the process that made it (not of a forked child): the
 * temporary directory goes, unless MMF_TEST_KEEP is set (to look at what
 * a failing test wrote). Without this every run of make check left its
 * files behind (test_quant alone writes 400 MB). */
static inline void test_tmpdir_cleanup(void)
{
	const char *keep = getenv("MMF_TEST_KEEP");
	if (test_tmpdir_path[0] && getpid() == test_tmpdir_owner && !(keep && *keep))
		test_rm_tree(test_tmpdir_path);
}

/* A private temporary directory, made once per process, removed at its
 * exit. */
static inline const char *test_tmpdir(void)
{
	if (!test_tmpdir_path[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(test_tmpdir_path, sizeof test_tmpdir_path, "%s/mmf-test-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(test_tmpdir_path)) {
			perror("mkdtemp");
			exit(99);
		}
		test_tmpdir_owner = getpid();
		atexit(test_tmpdir_cleanup);
	}
	return test_tmpdir_path;
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
