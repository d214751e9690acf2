/* Request validation: every size is checked before it is used. */
#include "config.h"
#include "req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "preproc.h"
#include "resp.h"
#include "stats.h"

#define REQ_ERR_MAX 512

/* Checks an image; returns OK or the status, with a message naming it. */
static int req_check_image(const Mmf__Image *im, const char *what, char *err)
{
	if (!im || im->source_case == MMF__IMAGE__SOURCE__NOT_SET) {
		snprintf(err, REQ_ERR_MAX, "%s has no source (expected raw or encoded)", what);
		return MMF__STATUS__BAD_REQUEST;
	}
	if (im->source_case == MMF__IMAGE__SOURCE_ENCODED) {
		if (!im->encoded.len) {
			snprintf(err, REQ_ERR_MAX, "%s: encoded image is empty", what);
			return MMF__STATUS__BAD_REQUEST;
		}
		snprintf(err, REQ_ERR_MAX,
			 "%s: encoded (JPEG/PNG) images are not supported yet: image decoding is issue 6; send raw RGB", what);
		return MMF__STATUS__UNSUPPORTED;
	}
	const Mmf__RawImage *r = im->raw;
	if (!r || !r->width || !r->height) {
		snprintf(err, REQ_ERR_MAX, "%s: raw image has size %ux%u, expected at least 1x1", what, r ? r->width : 0,
			 r ? r->height : 0);
		return MMF__STATUS__BAD_REQUEST;
	}
	uint64_t need = (uint64_t)r->width * r->height * 3;
	if (need != r->rgb.len) {
		snprintf(err, REQ_ERR_MAX, "%s: raw image %ux%u needs %llu bytes of RGB, got %zu", what, r->width, r->height,
			 (unsigned long long)need, r->rgb.len);
		return MMF__STATUS__BAD_REQUEST;
	}
	return MMF__STATUS__OK;
}

static int req_check_text(const clip_config *c, const Mmf__Text *t, const char *what, char *err)
{
	if (!t || t->source_case == MMF__TEXT__SOURCE__NOT_SET) {
		snprintf(err, REQ_ERR_MAX, "%s has no source (expected tokens or text)", what);
		return MMF__STATUS__BAD_REQUEST;
	}
	if (t->source_case == MMF__TEXT__SOURCE_TEXT) {
		snprintf(err, REQ_ERR_MAX,
			 "%s: text strings are not supported yet: the tokenizer is issue 6; send token ids", what);
		return MMF__STATUS__UNSUPPORTED;
	}
	const Mmf__TokenIds *k = t->tokens;
	size_t n = k ? k->n_ids : 0;
	if (n < 1 || n > (size_t)c->context) {
		snprintf(err, REQ_ERR_MAX, "%s: %zu token ids, expected 1..%d (the model's context)", what, n, c->context);
		return MMF__STATUS__BAD_REQUEST;
	}
	for (size_t i = 0; i < n; i++)
		if (k->ids[i] < 0 || k->ids[i] >= c->vocab) {
			snprintf(err, REQ_ERR_MAX, "%s: token %d at position %zu is out of the vocabulary [0,%d)", what,
				 k->ids[i], i, c->vocab);
			return MMF__STATUS__BAD_REQUEST;
		}
	return MMF__STATUS__OK;
}

static void req_fill_image(const clip_config *c, const Mmf__Image *im, float *out)
{
	const Mmf__RawImage *r = im->raw;
	pre_image(r->rgb.data, (int)r->width, (int)r->height, c->image_size, out);
}

static void req_fill_text(const clip_config *c, const Mmf__Text *t, int32_t *out)
{
	memcpy(out, t->tokens->ids, t->tokens->n_ids * sizeof(int32_t));
	(void)c;	/* the rest of the context row stays zero (job_new clears it) */
}

static int req_stats(uint64_t id, uint8_t **resp, size_t *len)
{
	stats_value v[STATS_VALUES_MAX];
	int n = stats_snapshot(v, STATS_VALUES_MAX);
	Mmf__Counter cs[STATS_VALUES_MAX], *cp[STATS_VALUES_MAX];
	for (int i = 0; i < n; i++) {
		mmf__counter__init(&cs[i]);
		cs[i].name = v[i].name;
		cs[i].value = v[i].value;
		cs[i].monotonic = v[i].monotonic;
		cp[i] = &cs[i];
	}
	Mmf__Stats st = MMF__STATS__INIT;
	st.n_counters = (size_t)n;
	st.counters = cp;
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = id;
	r.payload_case = MMF__RESPONSE__PAYLOAD_STATS;
	r.stats = &st;
	return resp_pack(&r, resp, len);
}

static int req_health(const req_ctx *ctx, uint64_t id, uint8_t **resp, size_t *len)
{
	Mmf__Health h = MMF__HEALTH__INIT;
	h.status = (char *)(ctx->draining ? "draining" : "ok");
	h.model = (char *)ctx->model_desc;
	h.device = (char *)(ctx->device ? ctx->device : "cpu");
	h.uptime_s = stats_uptime_s();
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = id;
	r.payload_case = MMF__RESPONSE__PAYLOAD_HEALTH;
	r.health = &h;
	return resp_pack(&r, resp, len);
}

/* Builds the job for a validated work request, or sets the error status. */
static int req_job(const req_ctx *ctx, const Mmf__Request *q, int64_t t_arrive, job **jout, char *err)
{
	const clip_config *c = &ctx->m->cfg;
	int st, ni = 0, nt = 0;
	job_kind kind;
	char what[64];
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_EMBED_IMAGE:
		kind = JOB_EMBED_IMAGE, ni = 1;
		if ((st = req_check_image(q->embed_image->image, "image", err)) != MMF__STATUS__OK)
			return st;
		break;
	case MMF__REQUEST__KIND_EMBED_TEXT:
		kind = JOB_EMBED_TEXT, nt = 1;
		if ((st = req_check_text(c, q->embed_text->text, "text", err)) != MMF__STATUS__OK)
			return st;
		break;
	case MMF__REQUEST__KIND_SIMILARITY: {
		const Mmf__Similarity *s = q->similarity;
		kind = JOB_SIMILARITY;
		if (s->n_images < 1 || s->n_images > REQ_MAX_IMAGES || s->n_texts < 1 || s->n_texts > REQ_MAX_TEXTS) {
			snprintf(err, REQ_ERR_MAX, "similarity of %zu images x %zu texts, expected 1..%d images and 1..%d texts",
				 s->n_images, s->n_texts, REQ_MAX_IMAGES, REQ_MAX_TEXTS);
			return s->n_images > REQ_MAX_IMAGES || s->n_texts > REQ_MAX_TEXTS ? MMF__STATUS__TOO_LARGE
											 : MMF__STATUS__BAD_REQUEST;
		}
		for (size_t i = 0; i < s->n_images; i++) {
			snprintf(what, sizeof what, "image %zu", i);
			if ((st = req_check_image(s->images[i], what, err)) != MMF__STATUS__OK)
				return st;
		}
		for (size_t i = 0; i < s->n_texts; i++) {
			snprintf(what, sizeof what, "text %zu", i);
			if ((st = req_check_text(c, s->texts[i], what, err)) != MMF__STATUS__OK)
				return st;
		}
		ni = (int)s->n_images, nt = (int)s->n_texts;
		break;
	}
	default:
		snprintf(err, REQ_ERR_MAX, "request kind %d is not a work request", (int)q->kind_case);
		return MMF__STATUS__INTERNAL;
	}
	job *j = job_new(kind, q->id, c, ni, nt);
	if (!j) {
		snprintf(err, REQ_ERR_MAX, "out of memory for %d images and %d texts", ni, nt);
		return MMF__STATUS__INTERNAL;
	}
	size_t S = (size_t)c->image_size, T = (size_t)c->context;
	if (kind == JOB_EMBED_IMAGE)
		req_fill_image(c, q->embed_image->image, j->pixels);
	else if (kind == JOB_EMBED_TEXT)
		req_fill_text(c, q->embed_text->text, j->tokens);
	else {
		for (int i = 0; i < ni; i++)
			req_fill_image(c, q->similarity->images[i], j->pixels + (size_t)i * 3 * S * S);
		for (int i = 0; i < nt; i++)
			req_fill_text(c, q->similarity->texts[i], j->tokens + (size_t)i * T);
	}
	j->t_arrive = t_arrive;
	j->t_deadline = t_arrive + (int64_t)(q->deadline_ms ? q->deadline_ms : (uint32_t)ctx->deadline_ms) * 1000000;
	*jout = j;
	return MMF__STATUS__OK;
}

int req_handle(const req_ctx *ctx, const uint8_t *msg, size_t len, int64_t t_arrive, job **jout, uint8_t **resp,
	       size_t *resp_len)
{
	char err[REQ_ERR_MAX];
	Mmf__Request *q;
	uint64_t id;
	int rc, st = frame_unpack_request(msg, len, &q, &id, err, sizeof err);
	*jout = NULL;
	if (st != MMF__STATUS__OK) {
		stats_add(STAT_requests_invalid, 1);
		return resp_pack_status(id, st, err, resp, resp_len);
	}
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_EMBED_IMAGE: stats_add(STAT_requests_embed_image, 1); break;
	case MMF__REQUEST__KIND_EMBED_TEXT: stats_add(STAT_requests_embed_text, 1); break;
	case MMF__REQUEST__KIND_CLASSIFY: stats_add(STAT_requests_classify, 1); break;
	case MMF__REQUEST__KIND_SIMILARITY: stats_add(STAT_requests_similarity, 1); break;
	case MMF__REQUEST__KIND_STATS: stats_add(STAT_requests_stats, 1); break;
	case MMF__REQUEST__KIND_HEALTH: stats_add(STAT_requests_health, 1); break;
	case MMF__REQUEST__KIND_PLAN: stats_add(STAT_requests_plan, 1); break;
	default: stats_add(STAT_requests_invalid, 1); break;
	}
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_HEALTH:
		rc = req_health(ctx, id, resp, resp_len);
		break;
	case MMF__REQUEST__KIND_STATS:
		rc = req_stats(id, resp, resp_len);
		break;
	case MMF__REQUEST__KIND_CLASSIFY:
		snprintf(err, sizeof err,
			 "classify is not supported yet: its %zu labels need the text tokenizer (issue 6); use similarity with token ids",
			 q->classify->n_labels);
		rc = resp_pack_status(id, MMF__STATUS__UNSUPPORTED, err, resp, resp_len);
		break;
	case MMF__REQUEST__KIND_PLAN:
		rc = resp_pack_status(id, MMF__STATUS__UNSUPPORTED,
				      "plan is not supported: there is no execution plan without the GPU backend; this daemon serves from the CPU",
				      resp, resp_len);
		break;
	default:
		if (ctx->draining) {
			rc = resp_pack_status(id, MMF__STATUS__SHUTTING_DOWN, "the daemon is shutting down", resp, resp_len);
			break;
		}
		st = req_job(ctx, q, t_arrive, jout, err);
		rc = st == MMF__STATUS__OK ? 1 : resp_pack_status(id, st, err, resp, resp_len);
		break;
	}
	mmf__request__free_unpacked(q, NULL);
	return rc;
}
