/* mmfd end to end: the daemon runs as a child process on a tiny synthetic
 * model and is driven through its socket with raw frames, so malformed
 * input can be sent. Covers every request type (and an in-process
 * comparison), 32 concurrent clients, a catalogue of bad input, a SIGTERM
 * drain, sd_notify and socket activation. $MMFD names the binary (default
 * ./mmfd). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../testutil.h"
#include "chain.h"
#include "cpu.h"
#include "frame.h"
#include "model.h"
#include "synth.h"
#include "tokenizer.h"

#include <png.h>
#include <zlib.h>

#define MAX_FRAME (1u << 20)	/* the main daemon's --max-frame */

static const char *g_mmfd, *g_tmp;
static char g_model[512], g_sock[300], g_dsock[300];
static clip_model *g_m;
static clip_tokenizer *g_tok;
static char g_vocab[1024];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&d, NULL);
}

/* ------------------------------------------------------------ the daemon */

/* Starts mmfd with the common options plus extra (NULL-terminated);
 * stderr goes to log. With `watchdog` the child sets WATCHDOG_PID to its
 * own pid before exec, as systemd would. argv0_wrap runs it under another
 * program (systemd-socket-activate) whose arguments come first. */
static pid_t daemon_start(const char *sock, const char *log, const char *const *extra, const char *const *wrap,
			  int watchdog)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0)
		dup2(fd, 2);
	if (watchdog) {
		char b[32];
		snprintf(b, sizeof b, "%ld", (long)getpid());
		setenv("WATCHDOG_PID", b, 1);
		setenv("WATCHDOG_USEC", "600000", 1);
	}
	const char *argv[64];
	int n = 0;
	for (; wrap && wrap[n]; n++)
		argv[n] = wrap[n];
	const char *common[] = {g_mmfd, "--foreground", "--model", g_model, "--socket", sock, "--config", "/dev/null",
				"--vocab", g_vocab};
	for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
		argv[n++] = common[i];
	for (int i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int sock_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = {20, 0};	/* no test hangs on a missing response */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return fd;
}

/* Waits for the daemon to accept connections; 0, or -1 if it died or timed out. */
static int wait_socket(const char *path, pid_t pid, double timeout_s)
{
	double t0 = now_s();
	while (now_s() - t0 < timeout_s) {
		int fd = sock_connect(path);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		sleep_ms(20);
	}
	return -1;
}

/* Waits for pid to exit; its exit status, or -1 (killed after timeout). */
static int wait_exit(pid_t pid, double timeout_s)
{
	double t0 = now_s();
	int st;
	while (now_s() - t0 < timeout_s) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static int file_has(const char *path, const char *needle)
{
	char buf[1 << 16];
	FILE *fp = fopen(path, "r");
	if (!fp)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

/* ------------------------------------------------------------ requests */

static int send_req(int fd, const Mmf__Request *q)
{
	uint8_t *b;
	size_t n;
	if (frame_pack_request(q, &b, &n) < 0)
		return -1;
	int rc = frame_write_all(fd, b, n);
	free(b);
	return rc;
}

static Mmf__Response *recv_resp(int fd)
{
	uint8_t *msg;
	size_t len;
	if (frame_read_one(fd, 64u << 20, &msg, &len) < 0)
		return NULL;
	Mmf__Response *r = mmf__response__unpack(NULL, len, msg);
	free(msg);
	return r;
}

static Mmf__Response *rpc(int fd, const Mmf__Request *q)
{
	return send_req(fd, q) < 0 ? NULL : recv_resp(fd);
}

static void req_init(Mmf__Request *q, uint64_t id)
{
	mmf__request__init(q);
	q->version = MMF_PROTOCOL_VERSION;
	q->id = id;
}

/* Storage for one text or image request built on the stack. */
typedef struct treq {
	Mmf__Request q;
	Mmf__EmbedText et;
	Mmf__EmbedImage ei;
	Mmf__Text t;
	Mmf__TokenIds k;
	Mmf__Image im;
	Mmf__RawImage raw;
	Mmf__HealthRequest h;
	Mmf__StatsRequest st;
} treq;

static Mmf__Request *text_req(treq *r, uint64_t id, int32_t *ids, size_t n)
{
	req_init(&r->q, id);
	mmf__embed_text__init(&r->et);
	mmf__text__init(&r->t);
	mmf__token_ids__init(&r->k);
	r->k.ids = ids;
	r->k.n_ids = n;
	r->t.source_case = MMF__TEXT__SOURCE_TOKENS;
	r->t.tokens = &r->k;
	r->et.text = &r->t;
	r->q.kind_case = MMF__REQUEST__KIND_EMBED_TEXT;
	r->q.embed_text = &r->et;
	return &r->q;
}

static Mmf__Request *image_req(treq *r, uint64_t id, uint32_t w, uint32_t h, uint8_t *rgb, size_t len)
{
	req_init(&r->q, id);
	mmf__embed_image__init(&r->ei);
	mmf__image__init(&r->im);
	mmf__raw_image__init(&r->raw);
	r->raw.width = w;
	r->raw.height = h;
	r->raw.rgb.data = rgb;
	r->raw.rgb.len = len;
	r->im.source_case = MMF__IMAGE__SOURCE_RAW;
	r->im.raw = &r->raw;
	r->ei.image = &r->im;
	r->q.kind_case = MMF__REQUEST__KIND_EMBED_IMAGE;
	r->q.embed_image = &r->ei;
	return &r->q;
}

static Mmf__Request *text_str_req(treq *r, uint64_t id, const char *text)
{
	text_req(r, id, NULL, 0);
	r->t.source_case = MMF__TEXT__SOURCE_TEXT;
	r->t.text = (char *)text;
	return &r->q;
}

static Mmf__Request *encoded_req(treq *r, uint64_t id, const uint8_t *data, size_t len)
{
	image_req(r, id, 0, 0, NULL, 0);
	r->im.source_case = MMF__IMAGE__SOURCE_ENCODED;
	r->im.encoded.data = (uint8_t *)data;
	r->im.encoded.len = len;
	return &r->q;
}

/* A PNG of w x h RGB pixels (libpng's simplified API); malloc'd. */
static uint8_t *png_encode(const uint8_t *rgb, int w, int h, size_t *len)
{
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	im.width = (png_uint_32)w;
	im.height = (png_uint_32)h;
	im.format = PNG_FORMAT_RGB;
	png_alloc_size_t n = 0;
	if (!png_image_write_to_memory(&im, NULL, &n, 0, rgb, 0, NULL))
		return NULL;
	uint8_t *buf = malloc(n);
	if (buf && !png_image_write_to_memory(&im, buf, &n, 0, rgb, 0, NULL)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static Mmf__Request *health_req(treq *r, uint64_t id)
{
	req_init(&r->q, id);
	mmf__health_request__init(&r->h);
	r->q.kind_case = MMF__REQUEST__KIND_HEALTH;
	r->q.health = &r->h;
	return &r->q;
}

static Mmf__Request *stats_req(treq *r, uint64_t id)
{
	req_init(&r->q, id);
	mmf__stats_request__init(&r->st);
	r->q.kind_case = MMF__REQUEST__KIND_STATS;
	r->q.stats = &r->st;
	return &r->q;
}

static int health_ok(const char *sock)
{
	treq r;
	int fd = sock_connect(sock);
	if (fd < 0)
		return 0;
	Mmf__Response *p = rpc(fd, health_req(&r, 77));
	int ok = p && p->status == MMF__STATUS__OK && p->id == 77 && p->payload_case == MMF__RESPONSE__PAYLOAD_HEALTH;
	mmf__response__free_unpacked(p, NULL);
	close(fd);
	return ok;
}

/* A counter from a Stats request; -1 when missing. */
static double stat_value(const char *sock, const char *name)
{
	treq r;
	double v = -1;
	int fd = sock_connect(sock);
	if (fd < 0)
		return -1;
	Mmf__Response *p = rpc(fd, stats_req(&r, 5));
	if (p && p->stats)
		for (size_t i = 0; i < p->stats->n_counters; i++)
			if (strcmp(p->stats->counters[i]->name, name) == 0)
				v = p->stats->counters[i]->value;
	mmf__response__free_unpacked(p, NULL);
	close(fd);
	return v;
}

/* Polls a counter until it reaches min (true) or timeout (false). */
static int stat_reaches(const char *sock, const char *name, double min, double timeout_s)
{
	double t0 = now_s();
	do {
		if (stat_value(sock, name) >= min)
			return 1;
		sleep_ms(20);
	} while (now_s() - t0 < timeout_s);
	return 0;
}

static void fill_rgb(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 17 + (i >> 7) * 7) & 0xff);
}

/* ------------------------------------------------------------ 1. request types */

static void embed_in_process(tower t, const void *input, float *emb)
{
	chain *ch = NULL;
	cpu_engine *e = NULL;
	mmf_err err;
	if (chain_build(g_m, t, &ch, &err) || cpu_engine_new(ch, 1, &e, &err) ||
	    (t == TOWER_TEXT ? cpu_embed_text(e, input, 1, emb, &err) : cpu_embed_image(e, input, 1, emb, &err)))
		fprintf(stderr, "in-process embedding: %s\n", err.msg);
	cpu_engine_free(e);
	chain_free(ch);
}

static float max_diff(const float *a, const float *b, int n)
{
	float d = 0;
	for (int i = 0; i < n; i++)
		d = fmaxf(d, fabsf(a[i] - b[i]));
	return d;
}

static void test_types(void)
{
	const clip_config *c = &g_m->cfg;
	int E = c->embed_dim, S = c->image_size;
	int fd = sock_connect(g_sock);
	treq r;
	Mmf__Response *p;

	p = rpc(fd, health_req(&r, 1));
	CHECK(p && p->status == MMF__STATUS__OK && p->id == 1 && p->health, "health");
	if (p && p->health) {
		CHECK(strcmp(p->health->status, "ok") == 0, "health status '%s'", p->health->status);
		CHECK(strcmp(p->health->device, "cpu") == 0, "device '%s'", p->health->device);
		CHECK(strstr(p->health->model, "image 64") != NULL, "model '%s'", p->health->model);
		CHECK(p->health->uptime_s >= 0 && p->health->uptime_s < 600, "uptime %g", p->health->uptime_s);
	}
	mmf__response__free_unpacked(p, NULL);

	/* text: the daemon's embedding is the engine's */
	int32_t ids[] = {49406, 320, 1125, 539, 320, 2368, 49407};
	p = rpc(fd, text_req(&r, 2, ids, 7));
	CHECK(p && p->status == MMF__STATUS__OK && p->id == 2 && p->embedding && (int)p->embedding->n_values == E,
	      "embed text: %s", p ? p->error : "no response");
	float *ref = malloc(sizeof(float) * (size_t)E * 4), *txt = ref + E, *img = ref + 2 * E;
	int32_t *tok = calloc((size_t)c->context, sizeof *tok);
	memcpy(tok, ids, sizeof ids);
	embed_in_process(TOWER_TEXT, tok, ref);
	if (p && p->embedding && (int)p->embedding->n_values == E) {
		memcpy(txt, p->embedding->values, sizeof(float) * (size_t)E);
		float d = max_diff(txt, ref, E);
		CHECK(d < 1e-5f, "text embedding differs from cpu_embed_text by %g", d);
	}
	mmf__response__free_unpacked(p, NULL);

	/* image of exactly the model's size: no resize, so the engine's input is known */
	size_t n = (size_t)S * S * 3;
	uint8_t *rgb = malloc(n);
	fill_rgb(rgb, n, 3);
	p = rpc(fd, image_req(&r, 3, (uint32_t)S, (uint32_t)S, rgb, n));
	CHECK(p && p->status == MMF__STATUS__OK && p->id == 3 && p->embedding && (int)p->embedding->n_values == E,
	      "embed image: %s", p ? p->error : "no response");
	const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
	float *px = malloc(sizeof(float) * n);
	for (int ch = 0; ch < 3; ch++)
		for (int i = 0; i < S * S; i++)
			px[ch * S * S + i] = (rgb[i * 3 + ch] / 255.0f - mean[ch]) / sd[ch];
	embed_in_process(TOWER_IMAGE, px, ref);
	if (p && p->embedding && (int)p->embedding->n_values == E) {
		memcpy(img, p->embedding->values, sizeof(float) * (size_t)E);
		float d = max_diff(img, ref, E);
		CHECK(d < 1e-5f, "image embedding differs from cpu_embed_image by %g", d);
	}
	mmf__response__free_unpacked(p, NULL);

	/* a non-square image of another size is resized and cropped */
	uint8_t small[40 * 30 * 3];
	fill_rgb(small, sizeof small, 9);
	p = rpc(fd, image_req(&r, 4, 40, 30, small, sizeof small));
	CHECK(p && p->status == MMF__STATUS__OK && p->embedding && (int)p->embedding->n_values == E, "embed 40x30 image: %s",
	      p ? p->error : "no response");
	if (p && p->embedding) {
		double nn = 0;
		for (int i = 0; i < E; i++)
			nn += (double)p->embedding->values[i] * p->embedding->values[i];
		CHECK(fabs(nn - 1) < 1e-4, "embedding norm^2 %g", nn);
	}
	mmf__response__free_unpacked(p, NULL);

	/* similarity: 2 images (the SxS one twice) x 2 texts */
	{
		Mmf__Request q;
		Mmf__Similarity s = MMF__SIMILARITY__INIT;
		treq a, b;
		int32_t ids2[] = {49406, 1929, 49407};
		image_req(&a, 0, (uint32_t)S, (uint32_t)S, rgb, n);
		text_req(&a, 0, ids, 7);
		text_req(&b, 0, ids2, 3);
		Mmf__Image *ims[2] = {&a.im, &a.im};
		Mmf__Text *ts[2] = {&a.t, &b.t};
		s.n_images = 2, s.images = ims, s.n_texts = 2, s.texts = ts;
		req_init(&q, 5);
		q.kind_case = MMF__REQUEST__KIND_SIMILARITY;
		q.similarity = &s;
		p = rpc(fd, &q);
		CHECK(p && p->status == MMF__STATUS__OK && p->id == 5 && p->logits && p->logits->n_values == 4 &&
			      p->logits->images == 2 && p->logits->texts == 2,
		      "similarity: %s", p ? p->error : "no response");
		if (p && p->logits && p->logits->n_values == 4) {
			double dot = 0;
			for (int i = 0; i < E; i++)
				dot += (double)img[i] * txt[i];
			float want = (float)(exp(g_m->logit_scale) * dot), got = p->logits->values[0];
			CHECK(fabsf(got - want) < 1e-3f * fmaxf(1, fabsf(want)), "logit %g, expected %g", got, want);
			CHECK(p->logits->values[0] == p->logits->values[2], "same image, different logits");
		}
		mmf__response__free_unpacked(p, NULL);
	}

	p = rpc(fd, stats_req(&r, 6));
	CHECK(p && p->status == MMF__STATUS__OK && p->stats && p->stats->n_counters > 30, "stats");
	int seen = 0;
	for (size_t i = 0; p && p->stats && i < p->stats->n_counters; i++) {
		const Mmf__Counter *k = p->stats->counters[i];
		if (strcmp(k->name, "requests_embed_text") == 0 && k->value >= 1)
			seen++;
		if (strcmp(k->name, "latency_total_p99_ms") == 0 && k->value > 0)
			seen++;
		if (strcmp(k->name, "mean_batch_size") == 0 && k->value >= 1)
			seen++;
	}
	CHECK(seen == 3, "stats lack requests_embed_text, latency_total_p99_ms or mean_batch_size");
	mmf__response__free_unpacked(p, NULL);

	/* a text string: the daemon's tokenizer, then the same embedding as its ids */
	{
		const char *cap = "A photo of a &amp; cat!";
		int32_t want[77];
		mmf_err err;
		int nt = clip_tokenize(g_tok, cap, strlen(cap), want, c->context, &err);
		CHECK(nt > 2, "tokenizing in the test: %s", err.msg);
		float *a = malloc(sizeof(float) * (size_t)E), *b = malloc(sizeof(float) * (size_t)E);
		p = rpc(fd, text_str_req(&r, 7, cap));
		CHECK(p && p->status == MMF__STATUS__OK && p->id == 7 && p->embedding && (int)p->embedding->n_values == E,
		      "text string: %s", p ? p->error : "no response");
		if (p && p->embedding && (int)p->embedding->n_values == E)
			memcpy(a, p->embedding->values, sizeof(float) * (size_t)E);
		mmf__response__free_unpacked(p, NULL);
		p = rpc(fd, text_req(&r, 8, want, nt > 0 ? (size_t)nt : 1));
		CHECK(p && p->status == MMF__STATUS__OK && p->embedding && (int)p->embedding->n_values == E, "its ids: %s",
		      p ? p->error : "no response");
		if (p && p->embedding && (int)p->embedding->n_values == E)
			CHECK(max_diff(a, p->embedding->values, E) == 0, "text string and its ids embed differently");
		mmf__response__free_unpacked(p, NULL);
		/* a long text (tokenized by the prep pool, not the loop thread):
		 * truncated to the context as open_clip does */
		char *longt = malloc(6001);
		for (int i = 0; i < 6000; i++)
			longt[i] = "word &amp; "[i % 11];
		longt[6000] = 0;
		nt = clip_tokenize(g_tok, longt, 6000, want, c->context, &err);
		CHECK(nt == c->context && want[nt - 1] == 49407, "long text: %d ids", nt);
		p = rpc(fd, text_str_req(&r, 14, longt));
		CHECK(p && p->status == MMF__STATUS__OK && p->embedding && (int)p->embedding->n_values == E, "long text: %s",
		      p ? p->error : "no response");
		if (p && p->embedding && (int)p->embedding->n_values == E)
			memcpy(a, p->embedding->values, sizeof(float) * (size_t)E);
		mmf__response__free_unpacked(p, NULL);
		p = rpc(fd, text_req(&r, 15, want, (size_t)c->context));
		if (p && p->embedding && (int)p->embedding->n_values == E)
			CHECK(max_diff(a, p->embedding->values, E) == 0, "long text and its ids embed differently");
		mmf__response__free_unpacked(p, NULL);
		free(longt);
		free(a);
		free(b);
	}

	/* a PNG: decoded to the same pixels as raw RGB, so the same embedding */
	{
		size_t pn;
		uint8_t *png = png_encode(small, 40, 30, &pn);
		CHECK(png != NULL, "encoding a PNG in the test");
		float *raw_e = malloc(sizeof(float) * (size_t)E);
		p = rpc(fd, image_req(&r, 9, 40, 30, small, sizeof small));
		CHECK(p && p->embedding && (int)p->embedding->n_values == E, "raw 40x30: %s", p ? p->error : "no response");
		if (p && p->embedding)
			memcpy(raw_e, p->embedding->values, sizeof(float) * (size_t)E);
		mmf__response__free_unpacked(p, NULL);
		p = rpc(fd, encoded_req(&r, 10, png, pn));
		CHECK(p && p->status == MMF__STATUS__OK && p->id == 10 && p->embedding && (int)p->embedding->n_values == E,
		      "PNG image: %s", p ? p->error : "no response");
		if (p && p->embedding && (int)p->embedding->n_values == E)
			CHECK(max_diff(raw_e, p->embedding->values, E) == 0, "PNG and raw RGB of the same pixels embed differently");
		mmf__response__free_unpacked(p, NULL);

		/* classify that PNG: softmax of exp(logit_scale) * cosine over the labels, sorted */
		const char *labels[3] = {"a photo of a cat", "a diagram", "a red car"};
		float le[3][512], pr[3];
		double mx = -1e30, sum = 0;
		for (int k = 0; k < 3 && E <= 512; k++) {
			p = rpc(fd, text_str_req(&r, 11, labels[k]));
			CHECK(p && p->embedding && (int)p->embedding->n_values == E, "label %d: %s", k, p ? p->error : "none");
			if (p && p->embedding)
				memcpy(le[k], p->embedding->values, sizeof(float) * (size_t)E);
			mmf__response__free_unpacked(p, NULL);
			double dot = 0;
			for (int i = 0; i < E; i++)
				dot += (double)raw_e[i] * le[k][i];
			pr[k] = (float)(exp(g_m->logit_scale) * dot);
			mx = pr[k] > mx ? pr[k] : mx;
		}
		for (int k = 0; k < 3; k++)
			sum += exp(pr[k] - mx);
		for (int k = 0; k < 3; k++)
			pr[k] = (float)(exp(pr[k] - mx) / sum);
		Mmf__Request q;
		Mmf__Classify cl = MMF__CLASSIFY__INIT;
		encoded_req(&r, 0, png, pn);
		cl.image = &r.im;
		cl.n_labels = 3;
		cl.labels = (char **)labels;
		req_init(&q, 12);
		q.kind_case = MMF__REQUEST__KIND_CLASSIFY;
		q.classify = &cl;
		p = rpc(fd, &q);
		CHECK(p && p->status == MMF__STATUS__OK && p->id == 12 && p->probabilities && p->probabilities->n_values == 3 &&
			      p->probabilities->n_labels == 3,
		      "classify: %s", p ? p->error : "no response");
		if (p && p->probabilities && p->probabilities->n_values == 3 && p->probabilities->n_labels == 3) {
			double total = 0;
			for (int k = 0; k < 3; k++) {
				int li = -1;
				for (int j = 0; j < 3; j++)
					if (!strcmp(p->probabilities->labels[k], labels[j]))
						li = j;
				CHECK(li >= 0, "classify: label '%s' is not one of ours", p->probabilities->labels[k]);
				if (li >= 0)
					CHECK(fabsf(p->probabilities->values[k] - pr[li]) < 1e-4f, "classify: '%s' %g, expected %g",
					      labels[li], p->probabilities->values[k], pr[li]);
				CHECK(k == 0 || p->probabilities->values[k] <= p->probabilities->values[k - 1], "classify: not sorted");
				total += p->probabilities->values[k];
			}
			CHECK(fabs(total - 1) < 1e-5, "classify: probabilities sum to %g", total);
		}
		/* the same labels again: answered from the text cache, same result */
		double hits = stat_value(g_sock, "text_cache_hits");
		req_init(&q, 112);
		q.kind_case = MMF__REQUEST__KIND_CLASSIFY;
		q.classify = &cl;
		Mmf__Response *p2 = rpc(fd, &q);
		CHECK(p2 && p2->status == MMF__STATUS__OK && p2->probabilities && p && p->probabilities &&
			      p2->probabilities->n_values == 3,
		      "classify again: %s", p2 ? p2->error : "no response");
		if (p2 && p2->probabilities && p && p->probabilities && p2->probabilities->n_values == 3)
			for (int k = 0; k < 3; k++)
				CHECK(!strcmp(p2->probabilities->labels[k], p->probabilities->labels[k]) &&
					      p2->probabilities->values[k] == p->probabilities->values[k],
				      "classify from the cache: '%s' %g, first '%s' %g", p2->probabilities->labels[k],
				      p2->probabilities->values[k], p->probabilities->labels[k], p->probabilities->values[k]);
		CHECK(stat_value(g_sock, "text_cache_hits") >= hits + 3, "text_cache_hits %g after %g: the labels were embedded again",
		      stat_value(g_sock, "text_cache_hits"), hits);
		mmf__response__free_unpacked(p2, NULL);
		mmf__response__free_unpacked(p, NULL);
		free(raw_e);
		free(png);
	}

	/* plan: the CPU backend says what it does */
	{
		Mmf__Request q;
		Mmf__PlanRequest pl = MMF__PLAN_REQUEST__INIT;
		req_init(&q, 13);
		q.kind_case = MMF__REQUEST__KIND_PLAN;
		q.plan = &pl;
		p = rpc(fd, &q);
		CHECK(p && p->status == MMF__STATUS__OK && p->id == 13 && p->plan && strstr(p->plan->json, "\"backend\": \"cpu\""),
		      "plan: %s", p ? (p->plan ? p->plan->json : p->error) : "no response");
		mmf__response__free_unpacked(p, NULL);
	}

	/* every response counted by request type and status */
	CHECK(stat_value(g_sock, "responses_by_type{type=\"embed_text\",status=\"ok\"}") >= 3 &&
		      stat_value(g_sock, "responses_by_type{type=\"classify\",status=\"ok\"}") >= 1 &&
		      stat_value(g_sock, "responses_by_type{type=\"plan\",status=\"ok\"}") >= 1,
	      "responses_by_type cells missing");
	CHECK(stat_value(g_sock, "steps_unfused") >= 1 && stat_value(g_sock, "steps_fused") == 0,
	      "steps_unfused/steps_fused on the CPU");
	free(ref);
	free(tok);
	free(rgb);
	free(px);
	close(fd);
}

/* ------------------------------------------------------------ 2. concurrency */

#define CLIENTS 32
#define PER_CLIENT 200

static atomic_int g_conc_bad;

static void *client_thread(void *arg)
{
	int t = (int)(intptr_t)arg, bad = 0;
	int fd = sock_connect(g_sock);
	if (fd < 0) {
		atomic_fetch_add(&g_conc_bad, PER_CLIENT);
		return NULL;
	}
	uint8_t rgb[12 * 10 * 3];
	for (int i = 0; i < PER_CLIENT; i++) {
		treq r;
		uint64_t id = (uint64_t)t << 32 | (uint64_t)i;
		int32_t ids[3] = {49406, 1 + (t * PER_CLIENT + i) % 49000, 49407};
		fill_rgb(rgb, sizeof rgb, (unsigned)(t * 1000 + i));
		Mmf__Request *q = i % 2 ? image_req(&r, id, 12, 10, rgb, sizeof rgb) : text_req(&r, id, ids, 3);
		Mmf__Response *p = rpc(fd, q);
		if (!p || p->id != id || p->status != MMF__STATUS__OK || !p->embedding || p->embedding->n_values != 64) {
			if (bad++ < 3)
				fprintf(stderr, "client %d request %d: %s %s\n", t, i, p ? mmf_status_name(p->status) : "no response",
					p && p->error ? p->error : "");
		}
		mmf__response__free_unpacked(p, NULL);
	}
	close(fd);
	atomic_fetch_add(&g_conc_bad, bad);
	return NULL;
}

static void test_concurrency(void)
{
	pthread_t th[CLIENTS];
	double t0 = now_s();
	for (int t = 0; t < CLIENTS; t++)
		pthread_create(&th[t], NULL, client_thread, (void *)(intptr_t)t);
	for (int t = 0; t < CLIENTS; t++)
		pthread_join(th[t], NULL);
	double dt = now_s() - t0;
	CHECK(atomic_load(&g_conc_bad) == 0, "%d of %d concurrent requests failed", atomic_load(&g_conc_bad),
	      CLIENTS * PER_CLIENT);
	printf("concurrency: %d clients x %d requests in %.2f s (%.0f requests/s), mean batch %.2f\n", CLIENTS, PER_CLIENT,
	       dt, CLIENTS * PER_CLIENT / dt, stat_value(g_sock, "mean_batch_size"));
}

/* ------------------------------------------------------------ 3. bad input */

/* Sends bytes on a new connection; the one response must carry `status`
 * and `sub` in its message; with `closes` the daemon must then close the
 * connection. Afterwards the daemon must answer Health on a new one. */
static void expect_raw(const char *name, const uint8_t *bytes, size_t n, int status, uint64_t id, const char *sub,
		       int closes)
{
	int fd = sock_connect(g_sock);
	CHECK(fd >= 0, "%s: cannot connect", name);
	if (fd < 0)
		return;
	frame_write_all(fd, bytes, n);
	Mmf__Response *p = recv_resp(fd);
	CHECK(p && p->status == (Mmf__Status)status && p->id == id, "%s: got %s (id %llu), expected %s (id %llu)", name,
	      p ? mmf_status_name(p->status) : "no response", p ? (unsigned long long)p->id : 0ULL, mmf_status_name(status),
	      (unsigned long long)id);
	if (p && sub)
		CHECK(p->error && strstr(p->error, sub), "%s: message '%s' lacks '%s'", name, p->error ? p->error : "", sub);
	if (closes) {
		uint8_t b;
		CHECK(read(fd, &b, 1) == 0, "%s: the daemon did not close the connection", name);
	}
	mmf__response__free_unpacked(p, NULL);
	close(fd);
	CHECK(health_ok(g_sock), "%s: no Health answer afterwards", name);
}

static void expect_req(const char *name, const Mmf__Request *q, int status, const char *sub)
{
	uint8_t *b;
	size_t n;
	if (frame_pack_request(q, &b, &n) < 0) {
		CHECK(0, "%s: cannot pack", name);
		return;
	}
	expect_raw(name, b, n, status, q->id, sub, 0);
	free(b);
}

/* A frame around hand-encoded protobuf bytes. */
static size_t framed(const uint8_t *pb, size_t n, uint8_t *out)
{
	out[0] = (uint8_t)(n >> 24), out[1] = (uint8_t)(n >> 16), out[2] = (uint8_t)(n >> 8), out[3] = (uint8_t)n;
	memcpy(out + 4, pb, n);
	return n + 4;
}

static void test_bad_input(void)
{
	uint8_t buf[1024];
	treq r;

	static const uint8_t len0[] = {0, 0, 0, 0};
	expect_raw("length 0", len0, 4, MMF__STATUS__TOO_LARGE, 0, "frame length 0", 1);
	static const uint8_t lenmax[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
	expect_raw("length 0xFFFFFFFF", lenmax, sizeof lenmax, MMF__STATUS__TOO_LARGE, 0, "4294967295", 1);
	uint32_t over = MAX_FRAME + 1;
	uint8_t lenover[] = {(uint8_t)(over >> 24), (uint8_t)(over >> 16), (uint8_t)(over >> 8), (uint8_t)over};
	expect_raw("length over max-frame", lenover, 4, MMF__STATUS__TOO_LARGE, 0, "1048577", 1);

	/* garbage whose first byte makes an absurd length */
	mmf_rng rng;
	mmf_rng_seed(&rng, 42);
	for (size_t i = 0; i < 256; i++)
		buf[i] = (uint8_t)mmf_rng_u64(&rng);
	buf[0] = 0xa5;
	expect_raw("random garbage", buf, 256, MMF__STATUS__TOO_LARGE, 0, "out of range", 1);

	/* a well-framed message that is not protobuf */
	uint8_t junk[20];
	memset(junk, 0xff, sizeof junk);
	expect_raw("garbage protobuf", buf, framed(junk, sizeof junk, buf), MMF__STATUS__BAD_REQUEST, 0,
		   "not a valid mmf.Request", 0);

	health_req(&r, 11);
	r.q.version = 2;
	expect_req("wrong version", &r.q, MMF__STATUS__BAD_VERSION, "protocol version 2");
	r.q.version = 0;
	expect_req("no version", &r.q, MMF__STATUS__BAD_VERSION, "protocol version 0");
	req_init(&r.q, 12);
	expect_req("unset kind", &r.q, MMF__STATUS__BAD_REQUEST, "has no kind");
	{
		Mmf__TraceRequest tr = MMF__TRACE_REQUEST__INIT;
		req_init(&r.q, 16);
		r.q.kind_case = MMF__REQUEST__KIND_TRACE;
		r.q.trace = &tr;
		tr.seconds = 0;
		expect_req("trace of 0 s", &r.q, MMF__STATUS__BAD_REQUEST, "trace of 0 seconds, expected 1..60");
		tr.seconds = 61;
		expect_req("trace of 61 s", &r.q, MMF__STATUS__BAD_REQUEST, "trace of 61 seconds, expected 1..60");
		tr.seconds = 2;
		expect_req("trace on the CPU", &r.q, MMF__STATUS__UNSUPPORTED, "tracing needs mmfd --device cuda");
	}
	/* version 1, id 13, then field 99 (a kind this daemon does not know), empty */
	static const uint8_t unknown_kind[] = {0x08, 0x01, 0x10, 13, 0x9a, 0x06, 0x00};
	expect_raw("unknown kind", buf, framed(unknown_kind, sizeof unknown_kind, buf), MMF__STATUS__BAD_REQUEST, 13,
		   "has no kind", 0);

	uint8_t rgb[300];
	memset(rgb, 100, sizeof rgb);
	expect_req("rgb size mismatch", image_req(&r, 14, 10, 11, rgb, 300), MMF__STATUS__BAD_REQUEST, "needs 330 bytes");
	expect_req("zero-size image", image_req(&r, 15, 0, 0, rgb, 0), MMF__STATUS__BAD_REQUEST, "size 0x0");
	expect_req("huge width x height", image_req(&r, 16, 100000, 100000, rgb, 12), MMF__STATUS__BAD_REQUEST,
		   "needs 30000000000 bytes");
	image_req(&r, 17, 1, 1, rgb, 3);
	r.im.source_case = MMF__IMAGE__SOURCE__NOT_SET;
	expect_req("image without source", &r.q, MMF__STATUS__BAD_REQUEST, "no source");
	image_req(&r, 18, 1, 1, rgb, 3);
	r.im.source_case = MMF__IMAGE__SOURCE_ENCODED;
	r.im.encoded.data = rgb;
	r.im.encoded.len = 0;
	expect_req("empty encoded image", &r.q, MMF__STATUS__BAD_REQUEST, "empty");
	r.im.encoded.len = 200;	/* not an image format at all */
	expect_req("not an image", &r.q, MMF__STATUS__BAD_REQUEST, "not a JPEG or PNG (starts with 64 64 64 64)");
	{
		static const uint8_t jfif[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1};
		expect_req("JPEG header only", encoded_req(&r, 181, jfif, sizeof jfif), MMF__STATUS__BAD_REQUEST,
			   "JPEG data is truncated or corrupt");
		uint8_t px[16 * 16 * 3];
		fill_rgb(px, sizeof px, 5);
		size_t pn;
		uint8_t *png = png_encode(px, 16, 16, &pn);
		expect_req("truncated PNG", encoded_req(&r, 182, png, pn / 2), MMF__STATUS__BAD_REQUEST,
			   "PNG data is truncated or corrupt");
		png[pn / 2] ^= 0x55;	/* a flipped byte in the compressed data: a CRC error */
		expect_req("corrupt PNG", encoded_req(&r, 183, png, pn), MMF__STATUS__BAD_REQUEST, "PNG data is truncated or corrupt");
		free(png);
		/* a decompression bomb: a valid IHDR claiming 100000 x 100000, then nothing */
		uint8_t bomb[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
				    0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 2, 0, 0, 0};
		uLong crc = crc32(0, bomb + 12, 17);
		bomb[29] = (uint8_t)(crc >> 24), bomb[30] = (uint8_t)(crc >> 16), bomb[31] = (uint8_t)(crc >> 8), bomb[32] = (uint8_t)crc;
		expect_req("decompression bomb", encoded_req(&r, 184, bomb, sizeof bomb), MMF__STATUS__TOO_LARGE,
			   "100000 x 100000 = 10000 Mpx is over the limit of 64 Mpx");
	}

	int32_t ids[100];
	for (int i = 0; i < 100; i++)
		ids[i] = 400 + i;
	ids[3] = 49408;
	expect_req("token out of range", text_req(&r, 19, ids, 5), MMF__STATUS__BAD_REQUEST, "49408 at position 3");
	ids[3] = -1;
	expect_req("negative token", text_req(&r, 20, ids, 5), MMF__STATUS__BAD_REQUEST, "-1 at position 3");
	ids[3] = 403;
	expect_req("too many tokens", text_req(&r, 21, ids, 78), MMF__STATUS__BAD_REQUEST, "78 token ids");
	expect_req("empty token list", text_req(&r, 22, ids, 0), MMF__STATUS__BAD_REQUEST, "0 token ids");
	text_req(&r, 23, ids, 3);
	r.t.source_case = MMF__TEXT__SOURCE__NOT_SET;
	expect_req("text without source", &r.q, MMF__STATUS__BAD_REQUEST, "no source");

	char *big = malloc(100001);
	memset(big, 'a', 100000);
	big[100000] = 0;
	text_req(&r, 24, ids, 3);
	r.t.source_case = MMF__TEXT__SOURCE_TEXT;
	r.t.text = big;
	expect_req("100 kB text", &r.q, MMF__STATUS__TOO_LARGE, "text is 100000 bytes, over the limit of 16384");
	free(big);
	expect_req("invalid UTF-8", text_str_req(&r, 241, "caf\xc3 au lait"), MMF__STATUS__BAD_REQUEST, "UTF-8");
	expect_req("overlong UTF-8", text_str_req(&r, 242, "\xc0\xaf"), MMF__STATUS__BAD_REQUEST, "UTF-8");

	/* EmbedText{Text{text: "a\0b\0"}} by hand: protobuf-c would stop at the NUL */
	static const uint8_t nul_text[] = {0x08, 0x01, 0x10, 25, 0x5a, 0x08, 0x0a, 0x06, 0x0a, 0x04, 'a', 0, 'b', 0};
	expect_raw("NUL bytes in text", buf, framed(nul_text, sizeof nul_text, buf), MMF__STATUS__BAD_REQUEST, 25,
		   "NUL byte at byte 1", 0);

	{
		Mmf__Request q;
		Mmf__Classify cl = MMF__CLASSIFY__INIT;
		char **labels = malloc(10000 * sizeof *labels);
		for (int i = 0; i < 10000; i++)
			labels[i] = (char *)"a label";
		image_req(&r, 0, 1, 1, rgb, 3);
		cl.image = &r.im;
		cl.n_labels = 10000;
		cl.labels = labels;
		req_init(&q, 26);
		q.kind_case = MMF__REQUEST__KIND_CLASSIFY;
		q.classify = &cl;
		expect_req("10000 labels", &q, MMF__STATUS__TOO_LARGE, "classify with 10000 labels, expected 1..1000");
		cl.n_labels = 0;
		q.id = 261;
		expect_req("no labels", &q, MMF__STATUS__BAD_REQUEST, "0 labels");
		free(labels);

		Mmf__Similarity s = MMF__SIMILARITY__INIT;
		Mmf__Image *ims[17];
		Mmf__Text *ts[1] = {&r.t};
		text_req(&r, 0, ids, 3);
		for (int i = 0; i < 17; i++)
			ims[i] = &r.im;
		s.images = ims, s.n_images = 0, s.texts = ts, s.n_texts = 1;
		req_init(&q, 27);
		q.kind_case = MMF__REQUEST__KIND_SIMILARITY;
		q.similarity = &s;
		expect_req("similarity without images", &q, MMF__STATUS__BAD_REQUEST, "0 images");
		s.n_images = 17;
		q.id = 28;
		expect_req("similarity of 17 images", &q, MMF__STATUS__TOO_LARGE, "17 images");
		s.n_images = 1;
		r.raw.width = 2;
		q.id = 29;
		expect_req("similarity with a bad image", &q, MMF__STATUS__BAD_REQUEST, "image 0: raw image 2x1");
	}

	/* a truncated frame, then close: no response, but the daemon notes it */
	{
		double before = stat_value(g_sock, "frames_truncated");
		static const uint8_t part[] = {0, 0, 0, 100, 1, 2, 3, 4, 5, 6};
		int fd = sock_connect(g_sock);
		frame_write_all(fd, part, sizeof part);
		close(fd);
		CHECK(stat_reaches(g_sock, "frames_truncated", before + 1, 5), "truncated frame not counted");
		CHECK(health_ok(g_sock), "truncated frame: no Health answer afterwards");
	}
}

/* A client that never reads: 2000 requests sent without reading a byte. The
 * daemon must keep serving others, stop reading from it, and drop it after
 * the stall timeout (1.5 s here). */
static void test_never_reads(void)
{
	int fd = sock_connect(g_sock);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	double before = stat_value(g_sock, "connections_stalled");
	int sent = 0;
	size_t off = 0;
	uint8_t *all = NULL;
	size_t total = 0;
	for (int i = 0; i < 2000; i++) {
		treq r;
		int32_t ids[3] = {49406, 1000 + i, 49407};
		uint8_t *b;
		size_t n;
		frame_pack_request(text_req(&r, (uint64_t)i + 1, ids, 3), &b, &n);
		all = realloc(all, total + n);
		memcpy(all + total, b, n);
		total += n;
		free(b);
	}
	double t0 = now_s();
	while (off < total && now_s() - t0 < 3) {
		ssize_t w = write(fd, all + off, total - off);
		if (w > 0)
			off += (size_t)w;
		else
			sleep_ms(5);
	}
	for (size_t k = 0; k < off; sent++) {	/* count whole frames sent */
		uint32_t l = (uint32_t)all[k] << 24 | (uint32_t)all[k + 1] << 16 | (uint32_t)all[k + 2] << 8 | all[k + 3];
		if (k + 4 + l > off)
			break;
		k += 4 + l;
	}
	printf("never-reads client: %d of 2000 requests written before the daemon stopped reading\n", sent);
	double th = now_s();
	CHECK(health_ok(g_sock), "others not served while a client does not read");
	th = now_s() - th;
	CHECK(th < 2, "Health took %.2f s while a client does not read", th);
	CHECK(stat_reaches(g_sock, "connections_stalled", before + 1, 8), "the non-reading client was not dropped");
	close(fd);
	free(all);
	CHECK(health_ok(g_sock), "never-reads: no Health answer afterwards");
}

static void test_idle_connections(void)
{
	enum { IDLE = 1000 };
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < IDLE + 100) {
		rl.rlim_cur = rl.rlim_max < IDLE + 100 ? rl.rlim_max : IDLE + 100;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < IDLE + 100) {
		printf("SKIP 1000 idle connections: the descriptor limit is %llu\n", (unsigned long long)rl.rlim_cur);
		return;
	}
	int *fds = malloc(IDLE * sizeof *fds), n = 0;
	for (; n < IDLE; n++)
		if ((fds[n] = sock_connect(g_sock)) < 0)
			break;
	CHECK(n == IDLE, "only %d idle connections opened", n);
	CHECK(health_ok(g_sock), "no Health answer with %d idle connections", n);
	CHECK(stat_reaches(g_sock, "connections_open", IDLE, 5), "daemon does not count %d open connections", IDLE);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	CHECK(health_ok(g_sock), "no Health answer after closing the idle connections");
}

/* ------------------------------------------------------------ delayed worker */

/* On a daemon whose worker sleeps 50 ms per batch of at most 2, queue 16:
 * deadlines, a full queue, a client gone before its response, and SIGTERM
 * with requests in flight. */
static void test_delayed(void)
{
	char log[400];
	snprintf(log, sizeof log, "%s/delayed.log", g_tmp);
	const char *extra[] = {"--test-delay-ms", "50", "--max-batch", "2", "--queue", "16", NULL};
	pid_t pid = daemon_start(g_dsock, log, extra, NULL, 0);
	if (wait_socket(g_dsock, pid, 20) < 0) {
		CHECK(0, "delayed daemon did not start (see %s)", log);
		return;
	}
	treq r;
	int32_t ids[3] = {49406, 500, 49407};

	/* deadline: two requests fill the worker's batch; the third waits past 5 ms */
	int fd = sock_connect(g_dsock);
	send_req(fd, text_req(&r, 1, ids, 3));
	send_req(fd, text_req(&r, 2, ids, 3));
	sleep_ms(10);
	text_req(&r, 3, ids, 3);
	r.q.deadline_ms = 5;
	send_req(fd, &r.q);
	for (int i = 0; i < 3; i++) {
		Mmf__Response *p = recv_resp(fd);
		int want = p && p->id == 3 ? MMF__STATUS__DEADLINE_EXCEEDED : MMF__STATUS__OK;
		CHECK(p && p->status == (Mmf__Status)want, "deadline: request %llu got %s, expected %s",
		      p ? (unsigned long long)p->id : 0ULL, p ? mmf_status_name(p->status) : "no response", mmf_status_name(want));
		if (p && p->id == 3)
			CHECK(strstr(p->error, "deadline") != NULL, "deadline message '%s'", p->error);
		mmf__response__free_unpacked(p, NULL);
	}

	/* queue full: 30 requests at once on a queue of 16; each gets one response */
	for (int i = 0; i < 30; i++)
		send_req(fd, text_req(&r, 100 + (uint64_t)i, ids, 3));
	int ok = 0, full = 0, other = 0, seen[30] = {0};
	for (int i = 0; i < 30; i++) {
		Mmf__Response *p = recv_resp(fd);
		if (!p) {
			other++;
			break;
		}
		if (p->id >= 100 && p->id < 130)
			seen[p->id - 100]++;
		if (p->status == MMF__STATUS__OK)
			ok++;
		else if (p->status == MMF__STATUS__QUEUE_FULL && strstr(p->error, "queue is full"))
			full++;
		else
			other++;
		mmf__response__free_unpacked(p, NULL);
	}
	int once = 1;
	for (int i = 0; i < 30; i++)
		once &= seen[i] == 1;
	CHECK(full >= 10 && ok >= 16 && other == 0 && once, "queue full: %d OK, %d QUEUE_FULL, %d other, each once %d", ok,
	      full, other, once);
	close(fd);

	/* a client that disconnects with a request queued: its response is dropped and counted */
	double dropped = stat_value(g_dsock, "responses_dropped");
	fd = sock_connect(g_dsock);
	send_req(fd, text_req(&r, 200, ids, 3));
	send_req(fd, text_req(&r, 201, ids, 3));
	send_req(fd, text_req(&r, 202, ids, 3));
	close(fd);
	CHECK(stat_reaches(g_dsock, "responses_dropped", dropped + 1, 5), "responses to a gone client not counted");
	CHECK(health_ok(g_dsock), "disconnect mid-request: no Health answer afterwards");

	/* SIGTERM with 12 requests queued or computing on 3 connections */
	int fds[3];
	for (int c = 0; c < 3; c++) {
		fds[c] = sock_connect(g_dsock);
		for (int i = 0; i < 4; i++)
			send_req(fds[c], text_req(&r, 300 + (uint64_t)(c * 4 + i), ids, 3));
	}
	sleep_ms(20);
	kill(pid, SIGTERM);
	int answered = 0;
	for (int c = 0; c < 3; c++) {
		for (int i = 0; i < 4; i++) {
			Mmf__Response *p = recv_resp(fds[c]);
			if (p && p->status == MMF__STATUS__OK && p->id == 300 + (uint64_t)(c * 4 + i))
				answered++;
			mmf__response__free_unpacked(p, NULL);
		}
		uint8_t b;
		CHECK(read(fds[c], &b, 1) == 0, "connection %d not closed after the drain", c);
		close(fds[c]);
	}
	CHECK(answered == 12, "SIGTERM: %d of 12 in-flight requests answered OK", answered);
	int st = wait_exit(pid, 10);
	CHECK(st == 0, "SIGTERM: exit status %d, expected 0", st);
	CHECK(access(g_dsock, F_OK) != 0, "socket file left after exit");
	CHECK(file_has(log, "answering"), "no drain message in %s", log);
}

/* ------------------------------------------------------------ 5. sd_notify */

static void test_notify(void)
{
#ifndef HAVE_SYSTEMD
	printf("SKIP sd_notify: built without libsystemd\n");
#else
	char nsock[100], sock[300], log[300];
	snprintf(nsock, sizeof nsock, "%s/notify.sock", g_tmp);
	snprintf(sock, sizeof sock, "%s/n.sock", g_tmp);
	snprintf(log, sizeof log, "%s/notify.log", g_tmp);
	int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", nsock);
	if (ns < 0 || bind(ns, (struct sockaddr *)&sa, sizeof sa) < 0) {
		CHECK(0, "cannot bind the notify socket %s: %s", nsock, strerror(errno));
		return;
	}
	setenv("NOTIFY_SOCKET", nsock, 1);
	pid_t pid = daemon_start(sock, log, NULL, NULL, 1);
	unsetenv("NOTIFY_SOCKET");
	int ready = 0, status = 0, watchdog = 0, stopping = 0, termed = 0;
	double t0 = now_s();
	while (now_s() - t0 < 15 && !stopping) {
		struct pollfd pf = {ns, POLLIN, 0};
		if (poll(&pf, 1, 200) == 1) {
			char m[1024];
			ssize_t n = recv(ns, m, sizeof m - 1, 0);
			if (n <= 0)
				continue;
			m[n] = 0;
			ready |= strstr(m, "READY=1") != NULL;
			status |= strstr(m, "STATUS=") != NULL && strstr(m, "requests") != NULL;
			watchdog |= strstr(m, "WATCHDOG=1") != NULL;
			stopping |= strstr(m, "STOPPING=1") != NULL;
			if (ready && !termed)
				CHECK(health_ok(sock), "READY=1 before the daemon answers");
		}
		if (ready && status && watchdog && !termed) {
			kill(pid, SIGTERM);
			termed = 1;
		}
	}
	CHECK(ready, "no READY=1");
	CHECK(status, "no STATUS= line");
	CHECK(watchdog, "no WATCHDOG=1");
	CHECK(stopping, "no STOPPING=1 after SIGTERM");
	if (!termed)
		kill(pid, SIGTERM);
	int st = wait_exit(pid, 10);
	CHECK(st == 0, "notify daemon exit status %d", st);
	CHECK(file_has(log, "watchdog: 0.6 s"), "no watchdog line in %s", log);
	close(ns);
#endif
}

/* ------------------------------------------------------------ 6. socket activation */

static void test_socket_activation(void)
{
#ifndef HAVE_SYSTEMD
	printf("SKIP socket activation: built without libsystemd (no sd_listen_fds)\n");
	return;
#endif
	if (system("command -v systemd-socket-activate >/dev/null 2>&1") != 0) {
		printf("SKIP socket activation: systemd-socket-activate is not installed\n");
		return;
	}
	char sock[300], unused[300], log[300];
	snprintf(sock, sizeof sock, "%s/sa.sock", g_tmp);
	snprintf(unused, sizeof unused, "%s/unused.sock", g_tmp);
	snprintf(log, sizeof log, "%s/activate.log", g_tmp);
	const char *wrap[] = {"systemd-socket-activate", "-l", sock, NULL};
	pid_t pid = daemon_start(unused, log, NULL, wrap, 0);
	CHECK(wait_socket(sock, pid, 20) == 0, "systemd-socket-activate did not listen (see %s)", log);
	CHECK(health_ok(sock), "no Health answer through the activated socket");
	CHECK(file_has(log, "passed by systemd"), "mmfd did not log socket activation (see %s)", log);
	CHECK(access(unused, F_OK) != 0, "mmfd made its own socket under socket activation");
	kill(pid, SIGTERM);
	int st = wait_exit(pid, 10);
	CHECK(st == 0, "activated daemon exit status %d", st);
}

int main(void)
{
	double t0 = now_s();
	signal(SIGPIPE, SIG_IGN);
	g_mmfd = getenv("MMFD");
	if (!g_mmfd || !*g_mmfd)
		g_mmfd = "./mmfd";
	if (access(g_mmfd, X_OK) != 0) {
		printf("SKIP test_mmfd: %s is not an executable (set MMFD)\n", g_mmfd);
		return 77;
	}
	g_tmp = test_tmpdir();
	snprintf(g_model, sizeof g_model, "%s/tiny.safetensors", g_tmp);
	snprintf(g_sock, sizeof g_sock, "%s/s.sock", g_tmp);
	snprintf(g_dsock, sizeof g_dsock, "%s/d.sock", g_tmp);
	clip_config cfg;
	mmf_err err;
	clip_config_named("tiny", &cfg);
	if (clip_synth_write(&cfg, 7, ST_F32, g_model, &err) || clip_model_load(g_model, &g_m, &err)) {
		fprintf(stderr, "test_mmfd: %s\n", err.msg);
		return 99;
	}
	cpu_set_threads(1);
	const char *srcdir = getenv("srcdir");
	snprintf(g_vocab, sizeof g_vocab, "%s/data/bpe_simple_vocab_16e6.txt.gz", srcdir && *srcdir ? srcdir : ".");
	if (clip_tokenizer_new(g_vocab, &g_tok, &err) < 0) {
		fprintf(stderr, "test_mmfd: %s\n", err.msg);
		return 99;
	}

	char log[400], mf[32];
	snprintf(log, sizeof log, "%s/main.log", g_tmp);
	snprintf(mf, sizeof mf, "%u", MAX_FRAME);
	const char *extra[] = {"--max-frame", mf, "--max-output", "65536", "--stall-timeout-ms", "1500", "--threads", "1", NULL};
	pid_t pid = daemon_start(g_sock, log, extra, NULL, 0);
	if (wait_socket(g_sock, pid, 30) < 0) {
		fprintf(stderr, "test_mmfd: mmfd did not start; its log (%s):\n", log);
		char cmd[500];
		snprintf(cmd, sizeof cmd, "cat '%s' >&2", log);
		if (system(cmd)) {}
		return 1;
	}
	test_types();
	test_concurrency();
	test_bad_input();
	test_never_reads();
	test_idle_connections();
	kill(pid, SIGTERM);
	int st = wait_exit(pid, 20);
	CHECK(st == 0, "main daemon exit status %d (log %s)", st, log);

	test_delayed();
	test_notify();
	test_socket_activation();

	clip_model_free(g_m);
	clip_tokenizer_free(g_tok);
	if (!t_fail) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
		if (system(cmd)) {}
	} else {
		printf("logs kept in %s\n", g_tmp);
	}
	printf("test_mmfd: wall time %.1f s\n", now_s() - t0);
	return test_done("test_mmfd");
}
