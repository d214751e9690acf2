/* libmmf: one request, one response, over the framing in proto/frame.c. */
#include "config.h"
#include "mmf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"

/* mmf.h repeats the status numbers so that it needs no generated header. */
_Static_assert((int)MMF_STATUS_OK == (int)MMF__STATUS__OK, "MMF_STATUS_OK follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_BAD_REQUEST == (int)MMF__STATUS__BAD_REQUEST, "MMF_STATUS_BAD_REQUEST follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_UNSUPPORTED == (int)MMF__STATUS__UNSUPPORTED, "MMF_STATUS_UNSUPPORTED follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_QUEUE_FULL == (int)MMF__STATUS__QUEUE_FULL, "MMF_STATUS_QUEUE_FULL follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_DEADLINE_EXCEEDED == (int)MMF__STATUS__DEADLINE_EXCEEDED, "MMF_STATUS_DEADLINE_EXCEEDED follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_TOO_LARGE == (int)MMF__STATUS__TOO_LARGE, "MMF_STATUS_TOO_LARGE follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_BAD_VERSION == (int)MMF__STATUS__BAD_VERSION, "MMF_STATUS_BAD_VERSION follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_INTERNAL == (int)MMF__STATUS__INTERNAL, "MMF_STATUS_INTERNAL follows proto/mmf.proto");
_Static_assert((int)MMF_STATUS_SHUTTING_DOWN == (int)MMF__STATUS__SHUTTING_DOWN, "MMF_STATUS_SHUTTING_DOWN follows proto/mmf.proto");

struct mmf_client {
	int fd;
	int broken;	/* a transport or protocol failure desynchronised the stream */
	uint64_t next_id;
	uint32_t deadline_ms;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int fail(mmf_error *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(mmf_error *err, int status, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->status = status;
	}
	return status;
}

static void ok(mmf_error *err)
{
	if (err) {
		err->status = 0;
		err->msg[0] = 0;
	}
}

mmf_client *mmf_connect(const char *socket_path, mmf_error *err)
{
	if (!socket_path || !*socket_path) {
		socket_path = getenv(MMF_SOCKET_ENV);
		if (!socket_path || !*socket_path)
			socket_path = MMF_SOCKET_DEFAULT;
	}
	mmf_client *c = calloc(1, sizeof *c);
	if (!c) {
		fail(err, -ENOMEM, "connecting to %s: out of memory", socket_path);
		return NULL;
	}
	size_t plen = strlen(socket_path);
	if (plen >= sizeof c->path) {
		fail(err, -ENAMETOOLONG, "socket path '%s' is %zu bytes, at most %zu fit a Unix socket address", socket_path,
		     plen, sizeof c->path - 1);
		free(c);
		return NULL;
	}
	memcpy(c->path, socket_path, plen + 1);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, socket_path, plen + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(err, -errno, "socket for %s: %s", socket_path, strerror(errno));
		free(c);
		return NULL;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		fail(err, -e, "connect %s: %s%s", socket_path, strerror(e),
		     e == ENOENT || e == ECONNREFUSED ? " (is mmfd running? --socket or $MMF_SOCKET choose another path)" : "");
		close(c->fd);
		free(c);
		return NULL;
	}
	ok(err);
	return c;
}

void mmf_close(mmf_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

const char *mmf_client_path(const mmf_client *c) { return c->path; }

void mmf_set_deadline(mmf_client *c, uint32_t ms) { c->deadline_ms = ms; }

static const char *kind_name(int kind)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(&mmf__request__descriptor, (unsigned)kind);
	return f ? f->name : "unknown";
}

static const char *payload_name(int payload)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(&mmf__response__descriptor, (unsigned)payload);
	return f ? f->name : "none";
}

/* Sends req (version and id filled in here) and reads its response, which
 * must carry the payload `want`. On success *out is the response (free with
 * mmf__response__free_unpacked). */
static int call(mmf_client *c, Mmf__Request *req, int want, Mmf__Response **out, mmf_error *err)
{
	*out = NULL;
	const char *what = kind_name(req->kind_case);
	if (c->broken)
		return fail(err, -ENOTCONN, "%s request: the connection to %s failed earlier; reconnect", what, c->path);
	req->version = MMF_PROTOCOL_VERSION;
	req->id = ++c->next_id;
	req->deadline_ms = c->deadline_ms;
	uint64_t id = req->id;

	uint8_t *buf;
	size_t len;
	int rc = frame_pack_request(req, &buf, &len);
	if (rc < 0)
		return fail(err, rc, "%s request %llu: cannot encode it: %s", what, (unsigned long long)id, strerror(-rc));
	int wrc = frame_write_all(c->fd, buf, len);
	free(buf);
	/* A daemon that refuses a frame (TOO_LARGE) answers and closes before
	 * reading it all, so a failed send may still have a response waiting. */
	if (wrc < 0 && wrc != -EPIPE && wrc != -ECONNRESET) {
		c->broken = 1;
		return fail(err, wrc, "sending %s request %llu to %s: %s", what, (unsigned long long)id, c->path,
			    strerror(-wrc));
	}

	uint8_t *msg;
	rc = frame_read_one(c->fd, MMF_FRAME_MAX_DEFAULT, &msg, &len);
	if (rc < 0) {
		c->broken = 1;
		if (wrc < 0)
			return fail(err, wrc, "sending %s request %llu to %s: %s", what, (unsigned long long)id, c->path,
				    strerror(-wrc));
		if (rc == -EPIPE)
			return fail(err, rc, "%s request %llu: %s closed the connection without a response", what,
				    (unsigned long long)id, c->path);
		if (rc == -ECONNRESET)
			return fail(err, rc, "%s request %llu: %s closed the connection in the middle of the response", what,
				    (unsigned long long)id, c->path);
		if (rc == -EMSGSIZE)
			return fail(err, -EPROTO,
				    "%s request %llu: the response frame announces a length of 0 or over %u bytes", what,
				    (unsigned long long)id, MMF_FRAME_MAX_DEFAULT);
		return fail(err, rc, "%s request %llu: reading the response from %s: %s", what, (unsigned long long)id,
			    c->path, strerror(-rc));
	}
	Mmf__Response *r = mmf__response__unpack(NULL, len, msg);
	free(msg);
	if (!r) {
		c->broken = 1;
		return fail(err, -EPROTO, "%s request %llu: the response of %zu bytes is not a valid mmf.Response", what,
			    (unsigned long long)id, len);
	}
	if (wrc < 0)
		c->broken = 1;
	/* Id 0 answers a frame the daemon could not read far enough to find
	 * its id (TOO_LARGE, BAD_REQUEST for garbage); the status says why. */
	if (r->id != id && !(r->id == 0 && r->status != MMF__STATUS__OK)) {
		c->broken = 1;
		rc = fail(err, -EPROTO, "%s request %llu: the response carries id %llu", what, (unsigned long long)id,
			  (unsigned long long)r->id);
		goto out;
	}
	if (r->status != MMF__STATUS__OK) {
		if (r->error && *r->error)
			rc = fail(err, r->status, "%s", r->error);
		else
			rc = fail(err, r->status, "the daemon answered %s to %s request %llu with no message",
				  mmf_status_name(r->status), what, (unsigned long long)id);
		if (!rc)	/* a status this client does not know of */
			rc = fail(err, -EPROTO, "%s request %llu: unknown status %d", what, (unsigned long long)id,
				  (int)r->status);
		goto out;
	}
	if ((int)r->payload_case != want) {
		c->broken = 1;
		rc = fail(err, -EPROTO, "%s request %llu: the response carries payload %s, expected %s", what,
			  (unsigned long long)id, payload_name(r->payload_case), payload_name(want));
		goto out;
	}
	*out = r;
	ok(err);
	return 0;
out:
	mmf__response__free_unpacked(r, NULL);
	return rc;
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int mmf_health(mmf_client *c, mmf_health_info *out, mmf_error *err)
{
	Mmf__HealthRequest h = MMF__HEALTH_REQUEST__INIT;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_HEALTH;
	req.health = &h;
	Mmf__Response *r;
	int rc = call(c, &req, MMF__RESPONSE__PAYLOAD_HEALTH, &r, err);
	if (rc)
		return rc;
	copy_str(out->status, sizeof out->status, r->health->status);
	copy_str(out->model, sizeof out->model, r->health->model);
	copy_str(out->device, sizeof out->device, r->health->device);
	out->uptime_s = r->health->uptime_s;
	mmf__response__free_unpacked(r, NULL);
	return 0;
}

void mmf_counters_free(mmf_counter *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int mmf_stats(mmf_client *c, mmf_counter **out, size_t *n, mmf_error *err)
{
	*out = NULL;
	*n = 0;
	Mmf__StatsRequest s = MMF__STATS_REQUEST__INIT;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_STATS;
	req.stats = &s;
	Mmf__Response *r;
	int rc = call(c, &req, MMF__RESPONSE__PAYLOAD_STATS, &r, err);
	if (rc)
		return rc;
	size_t k = r->stats->n_counters;
	mmf_counter *v = calloc(k ? k : 1, sizeof *v);
	if (!v)
		goto nomem;
	for (size_t i = 0; i < k; i++) {
		const char *name = r->stats->counters[i]->name;
		if (!(v[i].name = strdup(name ? name : "")))
			goto nomem;
		v[i].value = r->stats->counters[i]->value;
		v[i].monotonic = r->stats->counters[i]->monotonic;
	}
	mmf__response__free_unpacked(r, NULL);
	*out = v;
	*n = k;
	return 0;
nomem:
	mmf_counters_free(v, k);
	mmf__response__free_unpacked(r, NULL);
	return fail(err, -ENOMEM, "stats: out of memory copying %zu counters", k);
}

/* Copies an Embedding payload out of a successful response (and frees it). */
static int take_embedding(Mmf__Response *r, float *emb, size_t dim_max, size_t *dim, const char *what, mmf_error *err)
{
	size_t n = r->embedding->n_values;
	*dim = n;
	int rc = 0;
	if (n > dim_max)
		rc = fail(err, -ENOBUFS, "%s: the embedding has %zu values, the buffer holds %zu", what, n, dim_max);
	else if (n)
		memcpy(emb, r->embedding->values, n * sizeof *emb);
	mmf__response__free_unpacked(r, NULL);
	return rc;
}

/* Points a Text message at t; tok is storage for the token list. */
static void set_text(Mmf__Text *m, Mmf__TokenIds *tok, const mmf_text *t)
{
	mmf__text__init(m);
	if (t->utf8) {
		m->source_case = MMF__TEXT__SOURCE_TEXT;
		m->text = (char *)t->utf8;
	} else {
		mmf__token_ids__init(tok);
		tok->n_ids = t->n;
		tok->ids = (int32_t *)t->ids;
		m->source_case = MMF__TEXT__SOURCE_TOKENS;
		m->tokens = tok;
	}
}

static int embed_text(mmf_client *c, const mmf_text *t, float *emb, size_t dim_max, size_t *dim, mmf_error *err)
{
	*dim = 0;
	Mmf__Text text;
	Mmf__TokenIds tok;
	set_text(&text, &tok, t);
	Mmf__EmbedText e = MMF__EMBED_TEXT__INIT;
	e.text = &text;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_EMBED_TEXT;
	req.embed_text = &e;
	Mmf__Response *r;
	int rc = call(c, &req, MMF__RESPONSE__PAYLOAD_EMBEDDING, &r, err);
	return rc ? rc : take_embedding(r, emb, dim_max, dim, "embed_text", err);
}

int mmf_embed_text(mmf_client *c, const char *utf8, float *emb, size_t dim_max, size_t *dim, mmf_error *err)
{
	if (!utf8)
		return fail(err, -EINVAL, "embed_text: the text is NULL");
	mmf_text t = {.utf8 = utf8};
	return embed_text(c, &t, emb, dim_max, dim, err);
}

int mmf_embed_text_tokens(mmf_client *c, const int32_t *ids, size_t n, float *emb, size_t dim_max, size_t *dim,
			  mmf_error *err)
{
	mmf_text t = {.ids = ids, .n = n};
	return embed_text(c, &t, emb, dim_max, dim, err);
}

/* Points an Image message at img; raw is storage for the raw form. */
static int set_image(Mmf__Image *m, Mmf__RawImage *raw, const mmf_image *img, mmf_error *err)
{
	mmf__image__init(m);
	if (img->width || img->height) {
		uint64_t want = (uint64_t)img->width * img->height * 3;
		if (!img->width || !img->height || want != img->len)
			return fail(err, -EINVAL, "raw image %ux%u needs %llu bytes of RGB, got %zu", img->width, img->height,
				    (unsigned long long)want, img->len);
		mmf__raw_image__init(raw);
		raw->width = img->width;
		raw->height = img->height;
		raw->rgb.data = (uint8_t *)img->data;
		raw->rgb.len = img->len;
		m->source_case = MMF__IMAGE__SOURCE_RAW;
		m->raw = raw;
	} else {
		m->source_case = MMF__IMAGE__SOURCE_ENCODED;
		m->encoded.data = (uint8_t *)img->data;
		m->encoded.len = img->len;
	}
	return 0;
}

int mmf_embed_image(mmf_client *c, const mmf_image *img, float *emb, size_t dim_max, size_t *dim, mmf_error *err)
{
	*dim = 0;
	Mmf__Image image;
	Mmf__RawImage raw;
	int rc = set_image(&image, &raw, img, err);
	if (rc)
		return rc;
	Mmf__EmbedImage e = MMF__EMBED_IMAGE__INIT;
	e.image = &image;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_EMBED_IMAGE;
	req.embed_image = &e;
	Mmf__Response *r;
	rc = call(c, &req, MMF__RESPONSE__PAYLOAD_EMBEDDING, &r, err);
	return rc ? rc : take_embedding(r, emb, dim_max, dim, "embed_image", err);
}

int mmf_embed_image_rgb(mmf_client *c, const uint8_t *rgb, uint32_t w, uint32_t h, float *emb, size_t dim_max,
			size_t *dim, mmf_error *err)
{
	mmf_image img = {.data = rgb, .len = (size_t)w * h * 3, .width = w, .height = h};
	if (!w || !h) {
		*dim = 0;
		return fail(err, -EINVAL, "raw image %ux%u: both dimensions must be at least 1", w, h);
	}
	return mmf_embed_image(c, &img, emb, dim_max, dim, err);
}

int mmf_embed_image_file(mmf_client *c, const char *path, float *emb, size_t dim_max, size_t *dim, mmf_error *err)
{
	*dim = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return fail(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return fail(err, -EINVAL, "%s: not a regular file", path);
	}
	/* The whole request must fit one frame; refuse before reading it all. */
	if (st.st_size > (off_t)MMF_FRAME_MAX_DEFAULT - 64) {
		fclose(f);
		return fail(err, -EFBIG, "%s is %lld bytes, over the %u-byte frame maximum", path, (long long)st.st_size,
			    MMF_FRAME_MAX_DEFAULT);
	}
	size_t len = (size_t)st.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		fclose(f);
		return fail(err, -ENOMEM, "%s: out of memory for %zu bytes", path, len);
	}
	size_t got = fread(buf, 1, len, f);
	int rerr = ferror(f);
	fclose(f);
	if (got != len || rerr) {
		free(buf);
		return fail(err, -EIO, "%s: read %zu of %zu bytes", path, got, len);
	}
	mmf_image img = {.data = buf, .len = len};
	int rc = mmf_embed_image(c, &img, emb, dim_max, dim, err);
	free(buf);
	return rc;
}

int mmf_classify(mmf_client *c, const mmf_image *img, const char *const *labels, size_t nlabels, mmf_prob *probs,
		 mmf_error *err)
{
	Mmf__Image image;
	Mmf__RawImage raw;
	int rc = set_image(&image, &raw, img, err);
	if (rc)
		return rc;
	Mmf__Classify cl = MMF__CLASSIFY__INIT;
	cl.image = &image;
	cl.n_labels = nlabels;
	cl.labels = (char **)labels;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_CLASSIFY;
	req.classify = &cl;
	Mmf__Response *r;
	if ((rc = call(c, &req, MMF__RESPONSE__PAYLOAD_PROBABILITIES, &r, err)))
		return rc;
	Mmf__Probabilities *p = r->probabilities;
	uint8_t *used = calloc(nlabels ? nlabels : 1, 1);
	if (!used) {
		rc = fail(err, -ENOMEM, "classify: out of memory");
		goto out;
	}
	if (p->n_labels != nlabels || p->n_values != nlabels) {
		rc = fail(err, -EPROTO, "classify: the response has %zu labels and %zu values for %zu labels sent",
			  p->n_labels, p->n_values, nlabels);
		goto out;
	}
	/* The daemon sorts the labels; map each back to the caller's index
	 * (the first unused one, so repeated labels each get an entry). */
	for (size_t i = 0; i < nlabels; i++) {
		size_t j = 0;
		while (j < nlabels && (used[j] || strcmp(labels[j], p->labels[i])))
			j++;
		if (j == nlabels) {
			rc = fail(err, -EPROTO, "classify: the response names label '%s', which was not sent",
				  p->labels[i]);
			goto out;
		}
		used[j] = 1;
		probs[i].label = j;
		probs[i].p = p->values[i];
	}
out:
	free(used);
	mmf__response__free_unpacked(r, NULL);
	return rc;
}

int mmf_similarity(mmf_client *c, const mmf_image *images, size_t nimages, const mmf_text *texts, size_t ntexts,
		   float *logits, mmf_error *err)
{
	int rc = 0;
	Mmf__Image *im = calloc(nimages ? nimages : 1, sizeof *im);
	Mmf__Image **imp = calloc(nimages ? nimages : 1, sizeof *imp);
	Mmf__RawImage *raw = calloc(nimages ? nimages : 1, sizeof *raw);
	Mmf__Text *tx = calloc(ntexts ? ntexts : 1, sizeof *tx);
	Mmf__Text **txp = calloc(ntexts ? ntexts : 1, sizeof *txp);
	Mmf__TokenIds *tok = calloc(ntexts ? ntexts : 1, sizeof *tok);
	Mmf__Response *r = NULL;
	if (!im || !imp || !raw || !tx || !txp || !tok) {
		rc = fail(err, -ENOMEM, "similarity: out of memory for %zu images and %zu texts", nimages, ntexts);
		goto out;
	}
	for (size_t i = 0; i < nimages; i++) {
		if ((rc = set_image(&im[i], &raw[i], &images[i], err)))
			goto out;
		imp[i] = &im[i];
	}
	for (size_t j = 0; j < ntexts; j++) {
		set_text(&tx[j], &tok[j], &texts[j]);
		txp[j] = &tx[j];
	}
	Mmf__Similarity s = MMF__SIMILARITY__INIT;
	s.n_images = nimages;
	s.images = imp;
	s.n_texts = ntexts;
	s.texts = txp;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_SIMILARITY;
	req.similarity = &s;
	if ((rc = call(c, &req, MMF__RESPONSE__PAYLOAD_LOGITS, &r, err)))
		goto out;
	Mmf__Logits *l = r->logits;
	if (l->images != nimages || l->texts != ntexts || l->n_values != nimages * ntexts) {
		rc = fail(err, -EPROTO, "similarity: the response is %ux%u with %zu values for %zux%zu sent", l->images,
			  l->texts, l->n_values, nimages, ntexts);
		goto out;
	}
	if (l->n_values)
		memcpy(logits, l->values, l->n_values * sizeof *logits);
out:
	if (r)
		mmf__response__free_unpacked(r, NULL);
	free(im);
	free(imp);
	free(raw);
	free(tx);
	free(txp);
	free(tok);
	return rc;
}

int mmf_trace(mmf_client *c, unsigned seconds, char **json, mmf_trace_info *info, mmf_error *err)
{
	*json = NULL;
	Mmf__TraceRequest t = MMF__TRACE_REQUEST__INIT;
	t.seconds = seconds;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_TRACE;
	req.trace = &t;
	Mmf__Response *r;
	int rc = call(c, &req, MMF__RESPONSE__PAYLOAD_TRACE, &r, err);
	if (rc)
		return rc;
	*json = strdup(r->trace->json ? r->trace->json : "");
	if (info)
		info->steps = r->trace->steps, info->records = r->trace->records, info->truncated = r->trace->truncated;
	mmf__response__free_unpacked(r, NULL);
	if (!*json)
		return fail(err, -ENOMEM, "trace: out of memory");
	return 0;
}

int mmf_plan(mmf_client *c, char **json, mmf_error *err)
{
	*json = NULL;
	Mmf__PlanRequest p = MMF__PLAN_REQUEST__INIT;
	Mmf__Request req = MMF__REQUEST__INIT;
	req.kind_case = MMF__REQUEST__KIND_PLAN;
	req.plan = &p;
	Mmf__Response *r;
	int rc = call(c, &req, MMF__RESPONSE__PAYLOAD_PLAN, &r, err);
	if (rc)
		return rc;
	*json = strdup(r->plan->json ? r->plan->json : "");
	mmf__response__free_unpacked(r, NULL);
	if (!*json)
		return fail(err, -ENOMEM, "plan: out of memory");
	return 0;
}
