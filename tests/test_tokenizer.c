/* Tokenizer tests: every case of tests/golden/tokens.txt (written by
 * tools/gen_token_cases.py from open_clip itself) must give open_clip's ids;
 * then the errors (invalid UTF-8 of every kind, a missing, truncated,
 * corrupt or wrong vocabulary, bad arguments) with their messages,
 * truncation, and several threads sharing one tokenizer.
 *
 * MMF_TOK_BENCH=1 also times short captions on the calling thread (run it
 * under `taskset -c 0` for one core); MMF_TOK_GOLDEN=file reads the cases
 * from another file of the same format. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <zlib.h>

#include "engine/tokenizer.h"
#include "testutil.h"

#define CTX 77

typedef struct gcase {
	char *text;
	size_t len;
	int32_t ids[CTX];
	int n;       /* non-padding ids, or 0 when open_clip raises */
	char *raise; /* the exception open_clip raises, or NULL */
	int line;
} gcase;

static gcase *cases;
static int ncases;

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void load_golden(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(99);
	}
	size_t cap = 0;
	char *line = NULL;
	ssize_t got;
	int lineno = 0, cap_cases = 0;
	while ((got = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (got && line[got - 1] == '\n')
			line[--got] = '\0';
		if (!got || line[0] == '#')
			continue;
		char *tab = strchr(line, '\t');
		if (!tab) {
			fprintf(stderr, "%s:%d: no tab\n", path, lineno);
			exit(99);
		}
		if (ncases == cap_cases) {
			cap_cases = cap_cases ? 2 * cap_cases : 1024;
			cases = realloc(cases, (size_t)cap_cases * sizeof *cases);
			if (!cases)
				exit(99);
		}
		gcase *g = &cases[ncases++];
		memset(g, 0, sizeof *g);
		g->line = lineno;
		size_t hl = (size_t)(tab - line);
		g->len = hl / 2;
		g->text = malloc(g->len + 1);
		if (!g->text)
			exit(99);
		for (size_t i = 0; i < g->len; i++) {
			int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				fprintf(stderr, "%s:%d: bad hex\n", path, lineno);
				exit(99);
			}
			g->text[i] = (char)(hi << 4 | lo);
		}
		g->text[g->len] = '\0';
		if (tab[1] == '!') {
			g->raise = strdup(tab + 2);
			continue;
		}
		char *p = tab + 1;
		while (*p && g->n < CTX) {
			char *e;
			g->ids[g->n++] = (int32_t)strtol(p, &e, 10);
			p = e;
			while (*p == ' ')
				p++;
		}
	}
	free(line);
	fclose(f);
}

/* The text as C escapes, cut at 200 characters, for failure reports. */
static const char *show(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		if (o > 200) {
			o += (size_t)snprintf(buf + o, cap - o, "...");
			break;
		}
	}
	buf[o] = '\0';
	return buf;
}

static void show_ids(const char *what, const int32_t *ids, int n)
{
	fprintf(stderr, "    %s (%d):", what, n);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %d", ids[i]);
	fputc('\n', stderr);
}

static void test_golden(const clip_tokenizer *t)
{
	int agree = 0, shown = 0;
	for (int c = 0; c < ncases; c++) {
		gcase *g = &cases[c];
		int32_t ids[CTX];
		mmf_err err = {0};
		int n = clip_tokenize(t, g->text, g->len, ids, CTX, &err);
		int ok;
		if (g->raise)
			ok = n == -EINVAL && strstr(err.msg, "ValueError");
		else
			ok = n == g->n && !memcmp(ids, g->ids, (size_t)n * sizeof *ids);
		for (int i = n > 0 ? n : CTX; i < CTX && ok; i++)
			ok = ids[i] == 0;
		agree += ok;
		if (!ok && shown++ < 5) {
			char buf[1024];
			fprintf(stderr, "golden line %d: text \"%s\"\n", g->line, show(g->text, g->len, buf, sizeof buf));
			if (g->raise)
				fprintf(stderr, "    expected: open_clip raises %s\n", g->raise);
			else
				show_ids("expected", g->ids, g->n);
			if (n < 0)
				fprintf(stderr, "    got: error %d: %s\n", n, err.msg);
			else
				show_ids("got", ids, n);
		}
	}
	printf("golden: %d of %d cases agree with open_clip\n", agree, ncases);
	CHECK(agree == ncases, "%d golden cases differ", ncases - agree);
}

static void expect_error(const clip_tokenizer *t, const char *text, size_t len, int code, const char *sub1,
			 const char *sub2)
{
	int32_t ids[CTX];
	mmf_err err = {0};
	int n = clip_tokenize(t, text, len, ids, CTX, &err);
	char buf[256];
	CHECK(n == code, "\"%s\": got %d (%s), expected %d", show(text, len, buf, sizeof buf), n, err.msg, code);
	CHECK_MSG(err.msg, sub1, sub2);
}

static void test_invalid_utf8(const clip_tokenizer *t)
{
	static const struct {
		const char *s;
		size_t len;
		const char *offset;
		const char *why;
	} bad[] = {
		{"\x80", 1, "byte offset 0 (byte 0x80)", "continuation byte without a lead"},
		{"ab\xbf", 3, "byte offset 2 (byte 0xbf)", "continuation"},
		{"\xc0\x80", 2, "byte offset 0 (byte 0xc0)", "overlong"},
		{"a\xc1\xbf", 3, "byte offset 1 (byte 0xc1)", "overlong"},
		{"\xe0\x80\xaf", 3, "byte offset 0 (byte 0xe0)", "overlong"},
		{"xy\xf0\x8f\xbf\xbf", 6, "byte offset 2 (byte 0xf0)", "overlong"},
		{"\xed\xa0\x80", 3, "byte offset 0 (byte 0xed)", "surrogate"},
		{"ok \xed\xbf\xbf", 6, "byte offset 3", "surrogate"},
		{"\xf4\x90\x80\x80", 4, "byte offset 0 (byte 0xf4)", "above U+10FFFF"},
		{"\xf5\x80\x80\x80", 4, "byte offset 0 (byte 0xf5)", "above U+10FFFF"},
		{"\xff", 1, "byte offset 0 (byte 0xff)", "above U+10FFFF"},
		{"caf\xc3", 4, "byte offset 3 (byte 0xc3)", "truncated"},
		{"\xe2\x82", 2, "byte offset 0 (byte 0xe2)", "truncated"},
		{"\xf0\x9f\x98", 3, "byte offset 0", "truncated"},
		{"\xe2\x28\xa1", 3, "byte offset 0 (byte 0xe2)", "not a continuation byte"},
		{"\xc3\x00", 2, "byte offset 0", "not a continuation byte"},
		{"good text then \xc3\x28", 17, "byte offset 15", "not a continuation byte"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_error(t, bad[i].s, bad[i].len, -EILSEQ, bad[i].offset, bad[i].why);
	int32_t ids[CTX];
	mmf_err err = {0};
	clip_tokenize(t, "caf\xc3", 4, ids, CTX, &err);
	CHECK(!strcmp(err.msg, "text: invalid UTF-8 at byte offset 3 (byte 0xc3): truncated sequence; expected UTF-8"),
	      "message '%s'", err.msg);
	/* valid edge cases next to the invalid ones */
	CHECK(clip_tokenize(t, "\xf4\x8f\xbf\xbf", 4, ids, CTX, &err) >= 2, "U+10FFFF: %s", err.msg);
	CHECK(clip_tokenize(t, "\xed\x9f\xbf", 3, ids, CTX, &err) >= 2, "U+D7FF: %s", err.msg);
	CHECK(clip_tokenize(t, "\xee\x80\x80", 3, ids, CTX, &err) >= 2, "U+E000: %s", err.msg);
	/* NUL is a character like any other (ftfy removes it) */
	int n = clip_tokenize(t, "a\0b", 3, ids, CTX, &err);
	int32_t ab[CTX];
	int m = clip_tokenize(t, "ab", 2, ab, CTX, &err);
	CHECK(n == m && n > 0 && !memcmp(ids, ab, sizeof ids), "\"a\\0b\" differs from \"ab\"");
}

static void test_html_int_limit(const clip_tokenizer *t)
{
	/* Python's int() refuses more than 4300 decimal digits, so open_clip raises */
	size_t len = 2 + 4301 + 1;
	char *s = malloc(len);
	if (!s)
		exit(99);
	memcpy(s, "&#", 2);
	memset(s + 2, '7', 4301);
	s[len - 1] = ';';
	expect_error(t, s, len, -EINVAL, "4301 decimal digits", "ValueError");
	free(s);
}

/* ftfy fixes text in pieces of at most 1 000 000 characters: mojibake cut by
 * that boundary stays (ids from open_clip). */
static void test_segment_limit(const clip_tokenizer *t)
{
	static const int32_t cut[] = {CLIP_TOKEN_SOT, 127, 352, 5811, CLIP_TOKEN_EOT};
	static const int32_t fixed[] = {CLIP_TOKEN_SOT, 4166, CLIP_TOKEN_EOT};
	size_t len = 999999 + 4;
	char *s = malloc(len);
	if (!s)
		exit(99);
	for (int k = 0; k < 2; k++) {
		size_t sp = 999999 - (size_t)k;
		memset(s, ' ', sp);
		memcpy(s + sp, "\xc3\x83\xc2\xa9", 4); /* "Ã©", the mojibake of "é" */
		int32_t ids[CTX];
		mmf_err err = {0};
		int n = clip_tokenize(t, s, sp + 4, ids, CTX, &err);
		const int32_t *want = k ? fixed : cut;
		int wn = k ? 3 : 5;
		CHECK(n == wn && !memcmp(ids, want, (size_t)wn * sizeof *ids), "%zu spaces + mojibake: %d ids (%s)", sp, n,
		      err.msg);
	}
	free(s);
}

static void test_args(const clip_tokenizer *t)
{
	int32_t ids[CTX];
	mmf_err err = {0};
	CHECK(clip_tokenize(t, "a", 1, ids, 1, &err) == -EINVAL, "ctx 1 accepted");
	CHECK(!strcmp(err.msg, "clip_tokenize: context length 1, expected at least 2 (SOT and EOT)"), "message '%s'",
	      err.msg);
	CHECK(clip_tokenize(t, "a", 1, ids, 0, &err) == -EINVAL, "ctx 0 accepted");
	CHECK(clip_tokenize(t, "a", 1, ids, -5, &err) == -EINVAL, "ctx -5 accepted");
	CHECK_MSG(err.msg, "context length -5");
	CHECK(clip_tokenize(NULL, "a", 1, ids, CTX, &err) == -EINVAL, "NULL tokenizer accepted");
	CHECK_MSG(err.msg, "tokenizer is NULL");
	CHECK(clip_tokenize(t, "a", 1, NULL, CTX, &err) == -EINVAL, "NULL ids accepted");
	CHECK_MSG(err.msg, "ids is NULL");
	CHECK(clip_tokenize(t, NULL, 1, ids, CTX, &err) == -EINVAL, "NULL text accepted");
	CHECK_MSG(err.msg, "text is NULL");
	CHECK(clip_tokenize(t, NULL, 0, ids, CTX, &err) == 2, "NULL empty text: %s", err.msg);
	CHECK(ids[0] == CLIP_TOKEN_SOT && ids[1] == CLIP_TOKEN_EOT && ids[2] == 0, "empty text ids");
	CHECK(clip_tokenize(t, "a", 1, ids, CTX, NULL) == 3, "NULL err");
}

static void test_truncation(const clip_tokenizer *t)
{
	const char *text = "one two three four five six seven eight nine ten";
	int32_t full[CTX], ids[CTX];
	mmf_err err = {0};
	int n = clip_tokenize(t, text, strlen(text), full, CTX, &err);
	CHECK(n == 12, "10 words: %d ids (%s)", n, err.msg);
	for (int ctx = 2; ctx <= 12; ctx++) {
		for (int i = 0; i < CTX; i++)
			ids[i] = -1;
		int m = clip_tokenize(t, text, strlen(text), ids, ctx, &err);
		CHECK(m == ctx, "ctx %d: %d ids", ctx, m);
		CHECK(ids[0] == CLIP_TOKEN_SOT && ids[ctx - 1] == CLIP_TOKEN_EOT, "ctx %d: ends %d %d", ctx, ids[0],
		      ids[ctx - 1]);
		CHECK(!memcmp(ids + 1, full + 1, (size_t)(ctx - 2) * sizeof *ids), "ctx %d: prefix differs", ctx);
		CHECK(ids[ctx] == -1, "ctx %d: wrote past the end", ctx);
	}
	for (int i = 0; i < CTX; i++)
		ids[i] = -1;
	int m = clip_tokenize(t, text, strlen(text), ids, 20, &err);
	CHECK(m == 12 && ids[11] == CLIP_TOKEN_EOT && ids[12] == 0 && ids[19] == 0 && ids[20] == -1,
	      "ctx 20: %d ids, padding", m);
	/* a 10 kB text keeps EOT last */
	size_t len = 10000;
	char *big = malloc(len);
	if (!big)
		exit(99);
	for (size_t i = 0; i < len; i++)
		big[i] = i % 6 == 5 ? ' ' : (char)('a' + i % 7);
	m = clip_tokenize(t, big, len, ids, CTX, &err);
	CHECK(m == CTX && ids[CTX - 1] == CLIP_TOKEN_EOT, "10 kB: %d ids, last %d", m, ids[CTX - 1]);
	/* one 100 kB word goes through the heap BPE: O(n log n) is milliseconds,
	 * the quadratic merge loop would take minutes */
	free(big);
	len = 100000;
	big = malloc(len);
	if (!big)
		exit(99);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + (i * 7 + i / 13) % 26);
	clock_t c0 = clock();
	m = clip_tokenize(t, big, len, ids, CTX, &err);
	double s = (double)(clock() - c0) / CLOCKS_PER_SEC;
	CHECK(m == CTX && ids[CTX - 1] == CLIP_TOKEN_EOT, "100 kB word: %d ids", m);
	CHECK(s < 5.0, "100 kB word took %.2f s", s);
	free(big);
}

/* ------------------------------------------------------------ vocabulary files */


static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(99);
	}
}

static void write_gz(const char *path, const char *text)
{
	gzFile g = gzopen(path, "wb");
	if (!g || gzwrite(g, text, (unsigned)strlen(text)) != (int)strlen(text) || gzclose(g) != Z_OK) {
		perror(path);
		exit(99);
	}
}

static void *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(99);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc((size_t)n);
	if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
		exit(99);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void expect_load_error(const char *path, int code, const char *sub1, const char *sub2)
{
	clip_tokenizer *t = (clip_tokenizer *)1;
	mmf_err err = {0};
	int rc = clip_tokenizer_new(path, &t, &err);
	CHECK(rc == code, "%s: got %d (%s), expected %d", path, rc, err.msg, code);
	CHECK(t == NULL, "%s: *out not NULL on error", path);
	CHECK_MSG(err.msg, path, sub1, sub2);
	if (rc == 0)
		clip_tokenizer_free(t);
}

static void test_vocab_errors(const char *vocab)
{
	const char *missing = test_tmp("missing.txt.gz");
	expect_load_error(missing, -ENOENT, "no such file", "open_clip_torch as open_clip/bpe_simple_vocab_16e6.txt.gz");
	char want[1024];
	snprintf(want, sizeof want,
		 "%s: no such file (the CLIP BPE vocabulary ships with open_clip_torch as "
		 "open_clip/bpe_simple_vocab_16e6.txt.gz; set MMF_BPE_VOCAB or --vocab)",
		 missing);
	clip_tokenizer *none = NULL;
	mmf_err e = {0};
	clip_tokenizer_new(missing, &none, &e);
	CHECK(!strcmp(e.msg, want), "message '%s'", e.msg);

	size_t len;
	uint8_t *gz = read_all(vocab, &len);
	const char *p = test_tmp("truncated.txt.gz");
	write_file(p, gz, len / 2);
	expect_load_error(p, -EINVAL, "truncated gzip", "expected more");
	p = test_tmp("header.txt.gz");
	write_file(p, gz, 10);
	expect_load_error(p, -EINVAL, "truncated", "");
	p = test_tmp("empty.txt.gz");
	write_file(p, gz, 0);
	expect_load_error(p, -EINVAL, "truncated", "");
	uint8_t *bad = malloc(len);
	if (!bad)
		exit(99);
	memcpy(bad, gz, len);
	for (size_t i = len / 3; i < len / 3 + 64; i++)
		bad[i] ^= 0x5a;
	p = test_tmp("corrupt.txt.gz");
	write_file(p, bad, len);
	expect_load_error(p, -EINVAL, "corrupt gzip data", "zlib: ");
	memcpy(bad, gz, len);
	bad[len - 6] ^= 1; /* the CRC32 of the trailer */
	p = test_tmp("crc.txt.gz");
	write_file(p, bad, len);
	expect_load_error(p, -EINVAL, "corrupt gzip data", "incorrect data check");
	p = test_tmp("plain.txt");
	write_file(p, "#version: 0.2\ni n\n", 18);
	expect_load_error(p, -EINVAL, "corrupt gzip data", "incorrect header check");
	free(bad);
	free(gz);

	p = test_tmp("short.txt.gz");
	write_gz(p, "\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\n");
	expect_load_error(p, -EINVAL, "has 2 merge lines", "expected at least 48894");
	p = test_tmp("threeparts.txt.gz");
	write_gz(p, "#version\ni n\nt h e\n");
	expect_load_error(p, -EINVAL, "line 3: 't h e'", "expected two symbols separated by one space");
	p = test_tmp("unknown.txt.gz");
	write_gz(p, "#version\ni n\nin xyz\n");
	expect_load_error(p, -EINVAL, "line 3: symbol 'xyz'", "neither a byte nor made by an earlier merge");
	p = test_tmp("twice.txt.gz");
	write_gz(p, "#version\ni n\ni n\n");
	expect_load_error(p, -EINVAL, "line 3: symbol 'in' is made a second time", "");
	p = test_tmp("random.txt.gz");
	write_gz(p, "this is not a merges file at all, just words\n");
	expect_load_error(p, -EINVAL, "merge lines", "");

	clip_tokenizer *t = NULL;
	mmf_err err = {0};
	CHECK(clip_tokenizer_new(vocab, NULL, &err) == -EINVAL, "NULL out accepted");
	setenv("MMF_BPE_VOCAB", vocab, 1);
	CHECK(!strcmp(clip_tokenizer_default_path(), vocab), "MMF_BPE_VOCAB ignored: %s", clip_tokenizer_default_path());
	CHECK(clip_tokenizer_new(NULL, &t, &err) == 0, "default path: %s", err.msg);
	clip_tokenizer_free(t);
	unsetenv("MMF_BPE_VOCAB");
	CHECK(!strncmp(clip_tokenizer_default_path() + strlen(clip_tokenizer_default_path()) - 29,
		       "/bpe_simple_vocab_16e6.txt.gz", 29),
	      "default path %s", clip_tokenizer_default_path());
	clip_tokenizer_free(NULL);
}

/* ------------------------------------------------------------ threads */

typedef struct worker {
	const clip_tokenizer *t;
	int start, bad;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	for (int k = 0; k < ncases; k++) {
		gcase *g = &cases[(w->start + k) % ncases];
		int32_t ids[CTX];
		mmf_err err;
		int n = clip_tokenize(w->t, g->text, g->len, ids, CTX, &err);
		if (g->raise ? n != -EINVAL : (n != g->n || memcmp(ids, g->ids, (size_t)n * sizeof *ids)))
			w->bad++;
	}
	return NULL;
}

static void test_threads(const clip_tokenizer *t)
{
	enum { NT = 6 };
	pthread_t th[NT];
	worker w[NT];
	for (int i = 0; i < NT; i++) {
		w[i] = (worker){t, i * ncases / NT, 0};
		CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].bad == 0, "thread %d: %d cases differ", i, w[i].bad);
	}
}

/* ------------------------------------------------------------ benchmark */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench(const char *vocab)
{
	/* caption words, a few long or rare ones among them so that BPE has work */
	static const char *const words[] = {
		"a", "an", "the", "of", "on", "in", "with", "and", "at", "by", "photo", "picture", "image",
		"painting", "drawing", "close-up", "view", "dog", "cat", "bird", "horse", "car", "truck",
		"bicycle", "man", "woman", "child", "people", "group", "red", "blue", "green", "yellow",
		"black", "white", "small", "large", "old", "new", "beautiful", "sitting", "standing",
		"running", "walking", "flying", "eating", "table", "chair", "street", "beach", "mountain",
		"river", "city", "forest", "sky", "sunset", "night", "snow", "rain", "tree", "flower",
		"house", "building", "kitchen", "window", "boat", "airplane", "train", "bus", "road",
		"field", "grass", "water", "ocean", "lake", "park", "garden", "pizza", "cake", "coffee",
		"plate", "book", "phone", "laptop", "guitar", "frisbee", "skateboard", "surfboard",
		"umbrella", "Eiffel", "Tower", "Golden", "Retriever", "watercolor", "illustration",
		"photorealistic", "4k", "HDR", "closeup", "portrait", "landscape", "vintage",
		"1960s", "cyberpunk", "neon-lit", "rainy", "Tokyo", "alleyway", "macro", "shot",
		"dewdrops", "spiderweb", "smiling", "holding", "near", "behind", "under", "two", "three",
	};
	enum { NCAP = 4096 };
	char *caps[NCAP];
	size_t lens[NCAP], bytes = 0;
	unsigned r = 12345;
	for (int i = 0; i < NCAP; i++) {
		char buf[256];
		size_t o = 0;
		for (int w = 0; w < 10; w++) {
			r = r * 1103515245u + 12345u;
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", w ? " " : (r >> 20) % 2 ? "A " : "",
					      words[(r >> 16) % (sizeof words / sizeof words[0])]);
		}
		caps[i] = strdup(buf);
		lens[i] = o;
		bytes += o;
	}
	double t0 = now();
	clip_tokenizer *t = NULL;
	mmf_err err = {0};
	if (clip_tokenizer_new(vocab, &t, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(99);
	}
	double load = now() - t0;
	int32_t ids[CTX];
	long n = 0;
	t0 = now();
	double el;
	do {
		for (int i = 0; i < NCAP; i++)
			clip_tokenize(t, caps[i], lens[i], ids, CTX, &err);
		n += NCAP;
		el = now() - t0;
	} while (el < 2.0);
	printf("bench: load %.1f ms; %.0f captions/s (10 words, %.1f bytes each) on one thread\n", load * 1e3,
	       (double)n / el, (double)bytes / NCAP);
	/* the golden cases: many scripts, entities, mojibake */
	t0 = now();
	n = 0;
	do {
		for (int i = 0; i < ncases; i++)
			clip_tokenize(t, cases[i].text, cases[i].len, ids, CTX, &err);
		n += ncases;
		el = now() - t0;
	} while (el < 2.0);
	printf("bench: %.0f golden cases/s (mixed Unicode, up to 10 kB)\n", (double)n / el);
	clip_tokenizer_free(t);
	for (int i = 0; i < NCAP; i++)
		free(caps[i]);
}

int main(void)
{
	char vocab[512], golden[512];
	test_src("data/bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab);
	test_src("tests/golden/tokens.txt", golden, sizeof golden);
	/* MMF_TOK_GOLDEN: another case file in the same format (larger fuzz runs) */
	const char *g = getenv("MMF_TOK_GOLDEN");
	load_golden(g && *g ? g : golden);

	clip_tokenizer *t = NULL;
	mmf_err err = {0};
	int rc = clip_tokenizer_new(vocab, &t, &err);
	CHECK(rc == 0, "%s", err.msg);
	if (rc < 0)
		return test_done("test_tokenizer");

	test_golden(t);
	test_invalid_utf8(t);
	test_html_int_limit(t);
	test_segment_limit(t);
	test_args(t);
	test_truncation(t);
	test_vocab_errors(vocab);
	test_threads(t);
	clip_tokenizer_free(t);

	const char *b = getenv("MMF_TOK_BENCH");
	if (b && *b && strcmp(b, "0"))
		bench(vocab);

	for (int i = 0; i < ncases; i++) {
		free(cases[i].text);
		free(cases[i].raise);
	}
	free(cases);
	return test_done("test_tokenizer");
}
