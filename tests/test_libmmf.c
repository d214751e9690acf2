/* test_libmmf: libmmf's requests and error paths against a fake daemon on a
 * Unix socket in a private directory (no mmfd needed). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "mmf.h"
#include "testutil.h"

/* How the fake daemon answers request number `step` (0-based) of a
 * connection; it writes to fd whatever the scenario needs. Returns 0 to
 * read the next request, 1 to close. */
typedef int (*fake_fn)(int fd, const Mmf__Request *req, int step);

struct fake {
	int lfd;
	fake_fn fn;
	pthread_t th;
	uint64_t ids[8];	/* the ids and versions seen */
	uint32_t versions[8];
	int nreq;
};

static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	for (int step = 0;; step++) {
		uint8_t *msg;
		size_t len;
		if (frame_read_one(fd, 0, &msg, &len) < 0)
			break;
		Mmf__Request *req = mmf__request__unpack(NULL, len, msg);
		free(msg);
		if (!req)
			break;
		if (f->nreq < 8)
			f->ids[f->nreq] = req->id, f->versions[f->nreq] = req->version;
		f->nreq++;
		int stop = f->fn(fd, req, step);
		mmf__request__free_unpacked(req, NULL);
		if (stop)
			break;
	}
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f, fake_fn fn)
{
	memset(f, 0, sizeof *f);
	f->fn = fn;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	unlink(sock_path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(f->lfd, 1) < 0 ||
	    pthread_create(&f->th, NULL, fake_run, f)) {
		perror("fake daemon");
		exit(99);
	}
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(sock_path);
}

static void send_resp(int fd, Mmf__Response *r)
{
	uint8_t *b;
	size_t n;
	if (frame_pack_response(r, &b, &n) == 0) {
		frame_write_all(fd, b, n);
		free(b);
	}
}

static void send_health(int fd, uint64_t id)
{
	Mmf__Health h = MMF__HEALTH__INIT;
	h.status = (char *)"ok", h.model = (char *)"RN50", h.device = (char *)"cpu", h.uptime_s = 12.5;
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = id, r.payload_case = MMF__RESPONSE__PAYLOAD_HEALTH, r.health = &h;
	send_resp(fd, &r);
}

static void send_status(int fd, uint64_t id, int status, const char *msg)
{
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = id, r.status = status, r.error = (char *)msg;
	send_resp(fd, &r);
}

/* A daemon that does its job. */
static int fake_good(int fd, const Mmf__Request *q, int step)
{
	(void)step;
	float v[4] = {0.5f, 0.5f, 0.5f, 0.5f};
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = q->id;
	Mmf__Embedding e = MMF__EMBEDDING__INIT;
	e.n_values = 4, e.values = v;
	Mmf__Counter c1 = MMF__COUNTER__INIT, c2 = MMF__COUNTER__INIT, *cs[] = {&c1, &c2};
	c1.name = (char *)"requests_total", c1.value = 3, c2.name = (char *)"queue_depth", c2.value = 0.5;
	Mmf__Stats st = MMF__STATS__INIT;
	st.n_counters = 2, st.counters = cs;
	Mmf__Plan pl = MMF__PLAN__INIT;
	pl.json = (char *)"{\"steps\":[]}";
	/* Labels sorted by the fake's own order: the last one sent first. */
	char *labels[8];
	float probs[8];
	Mmf__Probabilities p = MMF__PROBABILITIES__INIT;
	float lg[64];
	Mmf__Logits l = MMF__LOGITS__INIT;
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_HEALTH:
		send_health(fd, q->id);
		return 0;
	case MMF__REQUEST__KIND_STATS:
		r.payload_case = MMF__RESPONSE__PAYLOAD_STATS, r.stats = &st;
		break;
	case MMF__REQUEST__KIND_PLAN:
		r.payload_case = MMF__RESPONSE__PAYLOAD_PLAN, r.plan = &pl;
		break;
	case MMF__REQUEST__KIND_EMBED_TEXT:
	case MMF__REQUEST__KIND_EMBED_IMAGE:
		r.payload_case = MMF__RESPONSE__PAYLOAD_EMBEDDING, r.embedding = &e;
		break;
	case MMF__REQUEST__KIND_CLASSIFY: {
		size_t n = q->classify->n_labels < 8 ? q->classify->n_labels : 8;
		for (size_t i = 0; i < n; i++)
			labels[i] = q->classify->labels[n - 1 - i], probs[i] = (float)(n - i) / 10;
		p.n_labels = p.n_values = n, p.labels = labels, p.values = probs;
		r.payload_case = MMF__RESPONSE__PAYLOAD_PROBABILITIES, r.probabilities = &p;
		break;
	}
	case MMF__REQUEST__KIND_SIMILARITY:
		l.images = (uint32_t)q->similarity->n_images, l.texts = (uint32_t)q->similarity->n_texts;
		l.n_values = l.images * l.texts;
		for (size_t i = 0; i < l.n_values && i < 64; i++)
			lg[i] = (float)i;
		l.values = lg;
		r.payload_case = MMF__RESPONSE__PAYLOAD_LOGITS, r.logits = &l;
		break;
	default:
		return 1;
	}
	send_resp(fd, &r);
	return 0;
}

static void test_good(void)
{
	struct fake f;
	fake_start(&f, fake_good);
	mmf_error e;
	mmf_client *c = mmf_connect(sock_path, &e);
	CHECK(c && e.status == 0, "connect: %s", e.msg);
	if (!c) {
		fake_stop(&f);
		return;
	}
	CHECK(!strcmp(mmf_client_path(c), sock_path), "path %s", mmf_client_path(c));
	mmf_health_info h;
	CHECK(mmf_health(c, &h, &e) == 0, "health: %s", e.msg);
	CHECK(!strcmp(h.status, "ok") && !strcmp(h.model, "RN50") && !strcmp(h.device, "cpu") && h.uptime_s == 12.5,
	      "health %s %s %s", h.status, h.model, h.device);

	mmf_counter *v;
	size_t n;
	CHECK(mmf_stats(c, &v, &n, &e) == 0 && n == 2, "stats: %s", e.msg);
	if (n == 2)
		CHECK(!strcmp(v[0].name, "requests_total") && v[0].value == 3 && v[1].value == 0.5, "counters");
	mmf_counters_free(v, n);

	float emb[8];
	size_t dim;
	int32_t ids[] = {49406, 320, 1125, 49407};
	CHECK(mmf_embed_text_tokens(c, ids, 4, emb, 8, &dim, &e) == 0 && dim == 4 && emb[3] == 0.5f, "tokens: %s", e.msg);
	CHECK(mmf_embed_text(c, "a cat", emb, 8, &dim, &e) == 0 && dim == 4, "text: %s", e.msg);
	uint8_t rgb[2 * 2 * 3] = {0};
	CHECK(mmf_embed_image_rgb(c, rgb, 2, 2, emb, 8, &dim, &e) == 0 && dim == 4, "rgb: %s", e.msg);
	/* A buffer too small: -ENOBUFS with the size needed. */
	int rc = mmf_embed_text_tokens(c, ids, 4, emb, 3, &dim, &e);
	CHECK(rc == -ENOBUFS && e.status == -ENOBUFS && dim == 4, "small buffer: rc %d", rc);
	CHECK_MSG(e.msg, "4 values", "holds 3");

	const char *labels[] = {"a cat", "a dog", "a cat"};
	mmf_prob probs[3];
	mmf_image img = {.data = rgb, .len = sizeof rgb, .width = 2, .height = 2};
	CHECK(mmf_classify(c, &img, labels, 3, probs, &e) == 0, "classify: %s", e.msg);
	CHECK(probs[0].label == 0 && probs[1].label == 1 && probs[2].label == 2, "labels %zu %zu %zu", probs[0].label,
	      probs[1].label, probs[2].label);
	CHECK(fabsf(probs[0].p - 0.3f) < 1e-6f, "p %g", probs[0].p);

	mmf_image imgs[2] = {img, {.data = rgb, .len = 5}};
	int32_t ids2[] = {1, 2};
	mmf_text texts[3] = {{.utf8 = "x"}, {.ids = ids2, .n = 2}, {.utf8 = ""}};
	float logits[6];
	CHECK(mmf_similarity(c, imgs, 2, texts, 3, logits, &e) == 0 && logits[5] == 5, "similarity: %s", e.msg);

	char *json;
	CHECK(mmf_plan(c, &json, &e) == 0 && !strcmp(json, "{\"steps\":[]}"), "plan: %s", e.msg);
	free(json);

	/* A raw image whose size disagrees is refused before it is sent. */
	img.width = 3;
	rc = mmf_classify(c, &img, labels, 3, probs, &e);
	CHECK(rc == -EINVAL, "bad raw: rc %d", rc);
	CHECK(!strcmp(e.msg, "raw image 3x2 needs 18 bytes of RGB, got 12"), "message '%s'", e.msg);
	CHECK(mmf_embed_image_rgb(c, rgb, 0, 2, emb, 8, &dim, &e) == -EINVAL, "0x2");

	mmf_set_deadline(c, 50);
	CHECK(mmf_health(c, &h, NULL) == 0, "health without err");
	mmf_close(c);
	fake_stop(&f);
	CHECK(f.nreq == 10, "%d requests", f.nreq);
	for (int i = 0; i < 8 && i < f.nreq; i++)
		CHECK(f.ids[i] == (uint64_t)i + 1 && f.versions[i] == 1, "request %d: id %llu version %u", i,
		      (unsigned long long)f.ids[i], f.versions[i]);
}

static int fake_wrong_id(int fd, const Mmf__Request *q, int step)
{
	(void)step;
	send_health(fd, q->id + 1);
	return 0;
}

static int fake_truncated(int fd, const Mmf__Request *q, int step)
{
	(void)q, (void)step;
	const uint8_t part[] = {0, 0, 0, 10, 0x08, 0x01, 0x72};
	frame_write_all(fd, part, sizeof part);
	return 1;
}

static int fake_close(int fd, const Mmf__Request *q, int step)
{
	(void)fd, (void)q, (void)step;
	return 1;
}

static int fake_too_large(int fd, const Mmf__Request *q, int step)
{
	(void)q, (void)step;
	send_status(fd, 0, MMF__STATUS__TOO_LARGE, "frame length 0 is out of range: expected 1..16777216 bytes");
	return 1;
}

/* UNSUPPORTED for the first request, then a good health. */
static int fake_unsupported(int fd, const Mmf__Request *q, int step)
{
	if (step == 0)
		send_status(fd, q->id, MMF__STATUS__UNSUPPORTED,
			    "text: text strings are not supported yet: the tokenizer is issue 6; send token ids");
	else if (step == 1)
		send_status(fd, q->id, MMF__STATUS__QUEUE_FULL, "");
	else
		send_health(fd, q->id);
	return 0;
}

static int fake_wrong_payload(int fd, const Mmf__Request *q, int step)
{
	(void)step;
	Mmf__Plan pl = MMF__PLAN__INIT;
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = q->id, r.payload_case = MMF__RESPONSE__PAYLOAD_PLAN, r.plan = &pl;
	send_resp(fd, &r);
	return 0;
}

static int fake_huge(int fd, const Mmf__Request *q, int step)
{
	(void)q, (void)step;
	const uint8_t h[] = {0xFF, 0xFF, 0xFF, 0xFF};
	frame_write_all(fd, h, 4);
	return 1;
}

static int fake_garbage(int fd, const Mmf__Request *q, int step)
{
	(void)q, (void)step;
	const uint8_t g[] = {0, 0, 0, 3, 0xFF, 0xFF, 0xFF};
	frame_write_all(fd, g, sizeof g);
	return 1;
}

/* Connects, makes one health call against fn, and checks the outcome. */
static void health_case(fake_fn fn, int want, const char *what, const char *msg1, const char *msg2)
{
	struct fake f;
	fake_start(&f, fn);
	mmf_error e;
	mmf_client *c = mmf_connect(sock_path, &e);
	CHECK(c != NULL, "%s: connect: %s", what, e.msg);
	if (c) {
		mmf_health_info h;
		int rc = mmf_health(c, &h, &e);
		CHECK(rc == want && e.status == want, "%s: rc %d, expected %d (%s)", what, rc, want, e.msg);
		CHECK_MSG(e.msg, msg1, msg2);
		/* After a transport or protocol failure the connection is done. */
		if (want < 0) {
			rc = mmf_health(c, &h, &e);
			CHECK(rc == -ENOTCONN, "%s: then rc %d", what, rc);
			CHECK_MSG(e.msg, "failed earlier; reconnect");
		}
		mmf_close(c);
	}
	fake_stop(&f);
}

static void test_errors(void)
{
	mmf_error e;
	char missing[400];
	snprintf(missing, sizeof missing, "%s/no-such.sock", test_tmpdir());
	mmf_client *c = mmf_connect(missing, &e);
	CHECK(!c && e.status == -ENOENT, "missing socket: %d", e.status);
	CHECK_MSG(e.msg, missing, "No such file or directory");

	setenv("MMF_SOCKET", missing, 1);
	c = mmf_connect(NULL, &e);
	CHECK(!c && e.status == -ENOENT, "$MMF_SOCKET: %d", e.status);
	CHECK_MSG(e.msg, missing);
	unsetenv("MMF_SOCKET");

	char longp[200];
	memset(longp, 'x', sizeof longp - 1);
	longp[sizeof longp - 1] = 0;
	c = mmf_connect(longp, &e);
	CHECK(!c && e.status == -ENAMETOOLONG, "long path: %d", e.status);
	CHECK_MSG(e.msg, "is 199 bytes, at most 107 fit");

	health_case(fake_wrong_id, -EPROTO, "wrong id", "health request 1", "carries id 2");
	health_case(fake_truncated, -ECONNRESET, "truncated", "health request 1", "in the middle of the response");
	health_case(fake_close, -EPIPE, "close", "health request 1", "closed the connection without a response");
	health_case(fake_too_large, MMF__STATUS__TOO_LARGE, "too large", "frame length 0 is out of range", "16777216");
	health_case(fake_wrong_payload, -EPROTO, "wrong payload", "carries payload plan", "expected health");
	health_case(fake_huge, -EPROTO, "huge length", "response frame announces a length of 0 or over", "16777216");
	health_case(fake_garbage, -EPROTO, "garbage", "response of 3 bytes", "not a valid mmf.Response");

	/* A status leaves the connection usable. */
	struct fake f;
	fake_start(&f, fake_unsupported);
	c = mmf_connect(sock_path, &e);
	if (c) {
		float emb[4];
		size_t dim;
		int rc = mmf_embed_text(c, "a cat", emb, 4, &dim, &e);
		CHECK(rc == MMF_STATUS_UNSUPPORTED && e.status == MMF_STATUS_UNSUPPORTED, "unsupported: rc %d", rc);
		CHECK(!strcmp(e.msg, "text: text strings are not supported yet: the tokenizer is issue 6; send token ids"),
		      "message '%s'", e.msg);
		mmf_health_info h;
		rc = mmf_health(c, &h, &e);
		CHECK(rc == MMF_STATUS_QUEUE_FULL, "queue full: rc %d", rc);
		CHECK(!strcmp(e.msg, "the daemon answered QUEUE_FULL to health request 2 with no message"), "message '%s'",
		      e.msg);
		rc = mmf_health(c, &h, &e);
		CHECK(rc == 0 && !strcmp(h.status, "ok"), "then health: rc %d %s", rc, e.msg);
		mmf_close(c);
	} else {
		CHECK(0, "connect: %s", e.msg);
	}
	fake_stop(&f);

	/* embed_image_file: a missing file and a directory, without a daemon. */
	fake_start(&f, fake_close);
	c = mmf_connect(sock_path, &e);
	if (c) {
		float emb[4];
		size_t dim;
		int rc = mmf_embed_image_file(c, missing, emb, 4, &dim, &e);
		CHECK(rc == -ENOENT, "missing image: rc %d", rc);
		CHECK_MSG(e.msg, missing);
		rc = mmf_embed_image_file(c, test_tmpdir(), emb, 4, &dim, &e);
		CHECK(rc == -EINVAL, "directory: rc %d", rc);
		CHECK_MSG(e.msg, "not a regular file");
		mmf_close(c);
	}
	fake_stop(&f);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(sock_path, sizeof sock_path, "%s/fake.sock", test_tmpdir());
	test_good();
	test_errors();
	CHECK(!strcmp(mmf_status_name(MMF_STATUS_SHUTTING_DOWN), "SHUTTING_DOWN"), "status name");
	return test_done("test_libmmf");
}
