/* test_frame: the framing in proto/frame.c, without a daemon. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "testutil.h"

static void put_len(uint8_t *b, uint32_t l)
{
	b[0] = (uint8_t)(l >> 24), b[1] = (uint8_t)(l >> 16), b[2] = (uint8_t)(l >> 8), b[3] = (uint8_t)l;
}

/* Feeds buf one byte at a time; returns the reader's first nonzero result
 * and the bytes fed until then. */
static int feed_bytewise(frame_reader *r, const uint8_t *buf, size_t n, size_t *fed, const uint8_t **msg, size_t *len)
{
	for (*fed = 0; *fed < n;) {
		size_t used;
		int rc = frame_reader_feed(r, buf + *fed, 1, &used, msg, len);
		*fed += used;
		if (rc)
			return rc;
		if (used != 1)
			return -1000;
	}
	return 0;
}

static void test_reader_bytewise(void)
{
	uint8_t buf[4 + 5] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	frame_reader r;
	frame_reader_init(&r, 0);
	CHECK(r.max == MMF_FRAME_MAX_DEFAULT, "max %u", r.max);
	const uint8_t *msg = NULL;
	size_t len = 0, fed;
	int rc = feed_bytewise(&r, buf, sizeof buf, &fed, &msg, &len);
	CHECK(rc == 1 && fed == sizeof buf, "rc %d after %zu bytes", rc, fed);
	CHECK(len == 5 && msg && !memcmp(msg, "hello", 5), "len %zu", len);
	/* The same reader goes on to the next frame. */
	rc = feed_bytewise(&r, buf, sizeof buf, &fed, &msg, &len);
	CHECK(rc == 1 && len == 5 && !memcmp(msg, "hello", 5), "second frame: rc %d len %zu", rc, len);
	/* A header split in two calls, nothing else yet. */
	size_t used;
	rc = frame_reader_feed(&r, buf, 2, &used, &msg, &len);
	CHECK(rc == 0 && used == 2, "rc %d used %zu", rc, used);
	rc = frame_reader_feed(&r, buf + 2, 2, &used, &msg, &len);
	CHECK(rc == 0 && used == 2 && r.buf && r.len == 5, "rc %d used %zu", rc, used);
	rc = frame_reader_feed(&r, buf + 4, 0, &used, &msg, &len);
	CHECK(rc == 0 && used == 0, "empty feed: rc %d used %zu", rc, used);
	rc = frame_reader_feed(&r, buf + 4, 5, &used, &msg, &len);
	CHECK(rc == 1 && used == 5 && len == 5, "rc %d used %zu", rc, used);
	frame_reader_free(&r);
}

static void test_reader_many(void)
{
	/* Three frames of 1, 3 and 2 bytes in one buffer, plus half a header. */
	const uint8_t buf[] = {0, 0, 0, 1, 'a', 0, 0, 0, 3, 'b', 'c', 'd', 0, 0, 0, 2, 'e', 'f', 0, 0};
	const char *want[] = {"a", "bcd", "ef"};
	frame_reader r;
	frame_reader_init(&r, 100);
	size_t off = 0;
	for (int k = 0; k < 3; k++) {
		const uint8_t *msg;
		size_t len, used;
		int rc = frame_reader_feed(&r, buf + off, sizeof buf - off, &used, &msg, &len);
		off += used;
		CHECK(rc == 1, "frame %d: rc %d", k, rc);
		CHECK(len == strlen(want[k]) && !memcmp(msg, want[k], len), "frame %d: len %zu", k, len);
	}
	const uint8_t *msg;
	size_t len, used;
	int rc = frame_reader_feed(&r, buf + off, sizeof buf - off, &used, &msg, &len);
	CHECK(rc == 0 && used == 2 && off + used == sizeof buf, "tail: rc %d used %zu", rc, used);
	frame_reader_free(&r);
}

static void test_reader_lengths(void)
{
	struct {
		uint32_t announced, max;
		int want;
	} cases[] = {
		{0, 0, -EMSGSIZE},
		{0xFFFFFFFFu, 0, -EMSGSIZE},
		{MMF_FRAME_MAX_DEFAULT + 1, 0, -EMSGSIZE},
		{1001, 1000, -EMSGSIZE},
		{1000, 1000, 0},	/* exactly max: accepted, waits for the body */
		{MMF_FRAME_MAX_DEFAULT, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		frame_reader r;
		frame_reader_init(&r, cases[i].max);
		uint8_t h[4];
		put_len(h, cases[i].announced);
		const uint8_t *msg;
		size_t len = 12345, used;
		int rc = frame_reader_feed(&r, h, 4, &used, &msg, &len);
		CHECK(rc == cases[i].want && used == 4, "length %u max %u: rc %d used %zu", cases[i].announced,
		      cases[i].max, rc, used);
		if (rc == -EMSGSIZE)
			CHECK(len == cases[i].announced && !r.buf, "length %u: *len %zu", cases[i].announced, len);
		else
			CHECK(r.buf && r.len == cases[i].announced && r.have == 0, "length %u: nothing allocated",
			      cases[i].announced);
		frame_reader_free(&r);
	}
	/* Exactly max, fed whole. */
	uint32_t max = 64;
	uint8_t buf[4 + 64];
	put_len(buf, max);
	memset(buf + 4, 0xAB, max);
	frame_reader r;
	frame_reader_init(&r, max);
	const uint8_t *msg;
	size_t len, used;
	int rc = frame_reader_feed(&r, buf, sizeof buf, &used, &msg, &len);
	CHECK(rc == 1 && len == max && used == sizeof buf && msg[max - 1] == 0xAB, "exactly max: rc %d", rc);
	frame_reader_free(&r);
}

/* Packs req, checks the prefix, unpacks it with frame_unpack_request. */
static Mmf__Request *round_trip(const Mmf__Request *req, const char *what)
{
	uint8_t *buf;
	size_t len;
	int rc = frame_pack_request(req, &buf, &len);
	CHECK(rc == 0 && len >= 4, "%s: pack rc %d", what, rc);
	if (rc)
		return NULL;
	uint32_t l = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	CHECK(l == len - 4 && l == mmf__request__get_packed_size(req), "%s: prefix %u for %zu bytes", what, l, len - 4);
	/* Through the reader, as the daemon would see it. */
	frame_reader r;
	frame_reader_init(&r, 0);
	const uint8_t *msg;
	size_t mlen, used;
	rc = frame_reader_feed(&r, buf, len, &used, &msg, &mlen);
	CHECK(rc == 1 && used == len && mlen == l, "%s: reader rc %d", what, rc);
	Mmf__Request *out = NULL;
	uint64_t id = 0;
	char err[256] = "";
	rc = rc == 1 ? frame_unpack_request(msg, mlen, &out, &id, err, sizeof err) : -1;
	CHECK(rc == MMF__STATUS__OK && out, "%s: unpack %d: %s", what, rc, err);
	CHECK(id == req->id, "%s: id %llu", what, (unsigned long long)id);
	if (out)
		CHECK(out->kind_case == req->kind_case && out->version == req->version &&
			      out->deadline_ms == req->deadline_ms,
		      "%s: kind %d", what, out->kind_case);
	frame_reader_free(&r);
	free(buf);
	return out;
}

static void test_round_trips(void)
{
	Mmf__Request req = MMF__REQUEST__INIT;
	req.version = MMF_PROTOCOL_VERSION;
	req.id = 0xFFFFFFFFFFull + 7;
	req.deadline_ms = 250;

	uint8_t rgb[2 * 3 * 3];
	for (size_t i = 0; i < sizeof rgb; i++)
		rgb[i] = (uint8_t)(i * 13);
	Mmf__RawImage raw = MMF__RAW_IMAGE__INIT;
	raw.width = 2, raw.height = 3, raw.rgb.data = rgb, raw.rgb.len = sizeof rgb;
	Mmf__Image img_raw = MMF__IMAGE__INIT;
	img_raw.source_case = MMF__IMAGE__SOURCE_RAW, img_raw.raw = &raw;
	uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10};
	Mmf__Image img_enc = MMF__IMAGE__INIT;
	img_enc.source_case = MMF__IMAGE__SOURCE_ENCODED, img_enc.encoded.data = jpeg, img_enc.encoded.len = sizeof jpeg;

	Mmf__EmbedImage ei = MMF__EMBED_IMAGE__INIT;
	ei.image = &img_raw;
	req.kind_case = MMF__REQUEST__KIND_EMBED_IMAGE, req.embed_image = &ei;
	Mmf__Request *o = round_trip(&req, "embed_image raw");
	if (o) {
		CHECK(o->embed_image->image->source_case == MMF__IMAGE__SOURCE_RAW, "source %d",
		      o->embed_image->image->source_case);
		Mmf__RawImage *rw = o->embed_image->image->raw;
		CHECK(rw->width == 2 && rw->height == 3 && rw->rgb.len == sizeof rgb && !memcmp(rw->rgb.data, rgb, sizeof rgb),
		      "raw %ux%u %zu bytes", rw->width, rw->height, rw->rgb.len);
		mmf__request__free_unpacked(o, NULL);
	}
	ei.image = &img_enc;
	if ((o = round_trip(&req, "embed_image encoded"))) {
		CHECK(o->embed_image->image->source_case == MMF__IMAGE__SOURCE_ENCODED &&
			      o->embed_image->image->encoded.len == sizeof jpeg,
		      "encoded %zu bytes", o->embed_image->image->encoded.len);
		mmf__request__free_unpacked(o, NULL);
	}

	int32_t ids[] = {49406, 320, 1125, 49407};
	Mmf__TokenIds tok = MMF__TOKEN_IDS__INIT;
	tok.n_ids = 4, tok.ids = ids;
	Mmf__Text t_tok = MMF__TEXT__INIT;
	t_tok.source_case = MMF__TEXT__SOURCE_TOKENS, t_tok.tokens = &tok;
	Mmf__Text t_str = MMF__TEXT__INIT;
	t_str.source_case = MMF__TEXT__SOURCE_TEXT, t_str.text = (char *)"a photo of a cat";
	Mmf__EmbedText et = MMF__EMBED_TEXT__INIT;
	et.text = &t_tok;
	req.kind_case = MMF__REQUEST__KIND_EMBED_TEXT, req.embed_text = &et;
	if ((o = round_trip(&req, "embed_text tokens"))) {
		Mmf__TokenIds *ot = o->embed_text->text->tokens;
		CHECK(o->embed_text->text->source_case == MMF__TEXT__SOURCE_TOKENS && ot->n_ids == 4 &&
			      !memcmp(ot->ids, ids, sizeof ids),
		      "tokens");
		mmf__request__free_unpacked(o, NULL);
	}
	et.text = &t_str;
	if ((o = round_trip(&req, "embed_text string"))) {
		CHECK(!strcmp(o->embed_text->text->text, "a photo of a cat"), "text '%s'", o->embed_text->text->text);
		mmf__request__free_unpacked(o, NULL);
	}

	char *labels[] = {(char *)"a cat", (char *)"a dog", (char *)""};
	Mmf__Classify cl = MMF__CLASSIFY__INIT;
	cl.image = &img_raw, cl.n_labels = 3, cl.labels = labels;
	req.kind_case = MMF__REQUEST__KIND_CLASSIFY, req.classify = &cl;
	if ((o = round_trip(&req, "classify"))) {
		CHECK(o->classify->n_labels == 3 && !strcmp(o->classify->labels[1], "a dog") && !*o->classify->labels[2],
		      "labels");
		mmf__request__free_unpacked(o, NULL);
	}

	Mmf__Image *imgs[] = {&img_raw, &img_enc};
	Mmf__Text *texts[] = {&t_tok, &t_str, &t_tok};
	Mmf__Similarity si = MMF__SIMILARITY__INIT;
	si.n_images = 2, si.images = imgs, si.n_texts = 3, si.texts = texts;
	req.kind_case = MMF__REQUEST__KIND_SIMILARITY, req.similarity = &si;
	if ((o = round_trip(&req, "similarity"))) {
		CHECK(o->similarity->n_images == 2 && o->similarity->n_texts == 3, "%zu x %zu", o->similarity->n_images,
		      o->similarity->n_texts);
		mmf__request__free_unpacked(o, NULL);
	}

	Mmf__StatsRequest st = MMF__STATS_REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_STATS, req.stats = &st;
	if ((o = round_trip(&req, "stats")))
		mmf__request__free_unpacked(o, NULL);
	Mmf__HealthRequest he = MMF__HEALTH_REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_HEALTH, req.health = &he;
	if ((o = round_trip(&req, "health")))
		mmf__request__free_unpacked(o, NULL);
	Mmf__PlanRequest pl = MMF__PLAN_REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_PLAN, req.plan = &pl;
	if ((o = round_trip(&req, "plan")))
		mmf__request__free_unpacked(o, NULL);

	/* A response, through frame_pack_response. */
	float vals[] = {0.6f, 0.8f};
	Mmf__Embedding emb = MMF__EMBEDDING__INIT;
	emb.n_values = 2, emb.values = vals;
	Mmf__Response resp = MMF__RESPONSE__INIT;
	resp.id = 42, resp.payload_case = MMF__RESPONSE__PAYLOAD_EMBEDDING, resp.embedding = &emb;
	uint8_t *buf;
	size_t len;
	CHECK(frame_pack_response(&resp, &buf, &len) == 0, "pack response");
	Mmf__Response *ro = mmf__response__unpack(NULL, len - 4, buf + 4);
	CHECK(ro && ro->id == 42 && ro->status == MMF__STATUS__OK && ro->embedding->n_values == 2 &&
		      ro->embedding->values[1] == 0.8f,
	      "response round trip");
	if (ro)
		mmf__response__free_unpacked(ro, NULL);
	free(buf);
}

static void test_unpack_errors(void)
{
	Mmf__HealthRequest he = MMF__HEALTH_REQUEST__INIT;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.version = 2, req.id = 9, req.kind_case = MMF__REQUEST__KIND_HEALTH, req.health = &he;
	uint8_t buf[64];
	size_t n = mmf__request__pack(&req, buf);
	Mmf__Request *out = (Mmf__Request *)&req;
	uint64_t id = 1;
	char err[256];
	int rc = frame_unpack_request(buf, n, &out, &id, err, sizeof err);
	CHECK(rc == MMF__STATUS__BAD_VERSION && !out && id == 9, "wrong version: rc %d id %llu", rc, (unsigned long long)id);
	CHECK(!strcmp(err, "protocol version 2, this daemon speaks version 1"), "message '%s'", err);

	/* Version 0 is what a client that forgot the field sends. */
	req.version = 0;
	n = mmf__request__pack(&req, buf);
	rc = frame_unpack_request(buf, n, &out, &id, err, sizeof err);
	CHECK(rc == MMF__STATUS__BAD_VERSION, "version 0: rc %d", rc);
	CHECK_MSG(err, "protocol version 0");

	req.version = 1, req.id = 11, req.kind_case = MMF__REQUEST__KIND__NOT_SET;
	n = mmf__request__pack(&req, buf);
	rc = frame_unpack_request(buf, n, &out, &id, err, sizeof err);
	CHECK(rc == MMF__STATUS__BAD_REQUEST && !out && id == 11, "no kind: rc %d", rc);
	CHECK(!strcmp(err, "request 11 has no kind (expected one of embed_image, embed_text, classify, similarity, stats, "
			   "health, plan, trace)"),
	      "message '%s'", err);

	/* A field number the protocol does not know of (kind 99, as a newer
	 * client might send) is skipped, leaving no kind. */
	const uint8_t unknown[] = {0x08, 0x01, 0x10, 0x05, 0x9a, 0x06, 0x00};
	rc = frame_unpack_request(unknown, sizeof unknown, &out, &id, err, sizeof err);
	CHECK(rc == MMF__STATUS__BAD_REQUEST && id == 5, "unknown kind: rc %d id %llu", rc, (unsigned long long)id);
	CHECK_MSG(err, "request 5 has no kind");

	const uint8_t garbage[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
	rc = frame_unpack_request(garbage, sizeof garbage, &out, &id, err, sizeof err);
	CHECK(rc == MMF__STATUS__BAD_REQUEST && !out && id == 0, "garbage: rc %d", rc);
	CHECK(!strcmp(err, "request of 12 bytes is not a valid mmf.Request protobuf message"), "message '%s'", err);

	/* A valid request cut short inside its embedded message. */
	req.kind_case = MMF__REQUEST__KIND_HEALTH, req.id = 12;
	Mmf__EmbedText et = MMF__EMBED_TEXT__INIT;
	Mmf__Text t = MMF__TEXT__INIT;
	t.source_case = MMF__TEXT__SOURCE_TEXT, t.text = (char *)"a photo of a cat";
	et.text = &t;
	req.kind_case = MMF__REQUEST__KIND_EMBED_TEXT, req.embed_text = &et;
	n = mmf__request__pack(&req, buf);
	rc = frame_unpack_request(buf, n - 3, &out, &id, err, sizeof err);
	CHECK(rc == MMF__STATUS__BAD_REQUEST && !out, "truncated: rc %d", rc);
	char want[128];
	snprintf(want, sizeof want, "request of %zu bytes is not a valid mmf.Request protobuf message", n - 3);
	CHECK(!strcmp(err, want), "message '%s'", err);

	/* The message is cut to the buffer it is given. */
	char small[16];
	rc = frame_unpack_request(garbage, sizeof garbage, &out, &id, small, sizeof small);
	CHECK(rc == MMF__STATUS__BAD_REQUEST && strlen(small) == sizeof small - 1, "short err buffer '%s'", small);
}

static void test_read_one(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(99);
	}
	/* A whole frame, then one announcing too much, then the peer closes. */
	uint8_t f[4 + 3] = {0, 0, 0, 3, 'x', 'y', 'z'};
	CHECK(frame_write_all(sv[0], f, sizeof f) == 0, "write");
	uint8_t *msg = NULL;
	size_t len = 0;
	int rc = frame_read_one(sv[1], 0, &msg, &len);
	CHECK(rc == 0 && len == 3 && !memcmp(msg, "xyz", 3), "read_one: rc %d len %zu", rc, len);
	free(msg);
	uint8_t big[4];
	put_len(big, 11);
	CHECK(frame_write_all(sv[0], big, 4) == 0, "write");
	rc = frame_read_one(sv[1], 10, &msg, &len);
	CHECK(rc == -EMSGSIZE, "over max: rc %d", rc);
	put_len(big, 0);
	CHECK(frame_write_all(sv[0], big, 4) == 0, "write");
	rc = frame_read_one(sv[1], 10, &msg, &len);
	CHECK(rc == -EMSGSIZE, "length 0: rc %d", rc);
	close(sv[0]);
	rc = frame_read_one(sv[1], 0, &msg, &len);
	CHECK(rc == -EPIPE, "closed before a frame: rc %d", rc);
	close(sv[1]);

	/* Closed inside the header, and inside the body. */
	const struct {
		uint8_t bytes[6];
		size_t n;
		const char *what;
	} cut[] = {{{0, 0}, 2, "mid header"}, {{0, 0, 0, 9, 'a', 'b'}, 6, "mid body"}};
	for (size_t i = 0; i < 2; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			exit(99);
		CHECK(frame_write_all(sv[0], cut[i].bytes, cut[i].n) == 0, "write");
		close(sv[0]);
		msg = NULL;
		rc = frame_read_one(sv[1], 0, &msg, &len);
		CHECK(rc == -ECONNRESET && !msg, "%s: rc %d", cut[i].what, rc);
		close(sv[1]);
	}

	/* Writing to a closed peer: -EPIPE (with SIGPIPE ignored). */
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		exit(99);
	close(sv[1]);
	rc = frame_write_all(sv[0], f, sizeof f);
	CHECK(rc == -EPIPE, "write to closed: rc %d", rc);
	close(sv[0]);
}

static void test_status_names(void)
{
	const char *names[] = {"OK", "BAD_REQUEST", "UNSUPPORTED", "QUEUE_FULL", "DEADLINE_EXCEEDED",
			       "TOO_LARGE", "BAD_VERSION", "INTERNAL", "SHUTTING_DOWN"};
	for (int i = 0; i < 9; i++)
		CHECK(!strcmp(mmf_status_name(i), names[i]), "status %d: '%s'", i, mmf_status_name(i));
	CHECK(!strcmp(mmf_status_name(9), "UNKNOWN"), "9: '%s'", mmf_status_name(9));
	CHECK(!strcmp(mmf_status_name(-1), "UNKNOWN"), "-1: '%s'", mmf_status_name(-1));
}

int main(void)
{
	test_reader_bytewise();
	test_reader_many();
	test_reader_lengths();
	test_round_trips();
	test_unpack_errors();
	test_read_one();
	test_status_names();
	return test_done("test_frame");
}
