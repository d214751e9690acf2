/* Request validation (every size is checked before it is used) and the
 * preparation of model inputs. */
#include "config.h"
#include "req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "image.h"
#include "resp.h"
#include "stats.h"

/* Ids the CLIP BPE tokenizer makes: 49152 merges' worth plus SOT and EOT. */
#define REQ_BPE_VOCAB 49408
/* Longer texts are tokenized by the prep pool, not the loop thread. */
#define REQ_INLINE_TEXT_BYTES 1024


/* Strings inside the frame at `path` (field numbers from the Request down,
 * the last one a string) that hold a NUL byte: protobuf-c hands strings
 * over NUL-terminated, so one would silently cut the text short. The
 * frame has already unpacked cleanly, so the walk can trust its lengths.
 * Returns the offset of the first NUL in such a string, or -1. */
static long req_find_nul(const uint8_t *p, size_t n, const int *path, int depth)
{
	size_t i = 0;
	while (i < n) {
		uint64_t key = 0, v = 0;
		for (int sh = 0; i < n && sh < 64; sh += 7) {
			key |= (uint64_t)(p[i] & 0x7f) << sh;
			if (!(p[i++] & 0x80))
				break;
		}
		int wt = (int)(key & 7), field = (int)(key >> 3);
		if (wt == 0) {
			while (i < n && (p[i++] & 0x80))
				;
		} else if (wt == 1 || wt == 5) {
			i += wt == 1 ? 8 : 4;
		} else if (wt == 2) {
			for (int sh = 0; i < n && sh < 64; sh += 7) {
				v |= (uint64_t)(p[i] & 0x7f) << sh;
				if (!(p[i++] & 0x80))
					break;
			}
			if (v > n - i)
				return -1;
			if (field == path[0]) {
				if (depth == 1) {
					const uint8_t *z = memchr(p + i, 0, (size_t)v);
					if (z)
						return (long)(z - (p + i));
				} else {
					long r = req_find_nul(p + i, (size_t)v, path + 1, depth - 1);
					if (r >= 0)
						return r;
				}
			}
			i += (size_t)v;
		} else {
			return -1;	/* groups: not in proto3 */
		}
	}
	return -1;
}

/* Checks an image; returns OK or the status, with a message naming it. */
static int req_check_image(const req_ctx *ctx, const Mmf__Image *im, const char *what, char *err)
{
	if (!im || im->source_case == MMF__IMAGE__SOURCE__NOT_SET) {
		snprintf(err, REQ_ERR_MAX, "%s has no source (expected raw or encoded)", what);
		return MMF__STATUS__BAD_REQUEST;
	}
	if (im->source_case == MMF__IMAGE__SOURCE_ENCODED) {
		if (!im->encoded.len) {
			snprintf(err, REQ_ERR_MAX, "%s: encoded image is empty (0 bytes)", what);
			return MMF__STATUS__BAD_REQUEST;
		}
		return MMF__STATUS__OK;	/* decoded by the prep pool */
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
	if ((int64_t)r->width * r->height > ctx->max_pixels) {
		snprintf(err, REQ_ERR_MAX, "%s: raw image %ux%u is over the limit of %lld pixels", what, r->width, r->height,
			 (long long)ctx->max_pixels);
		return MMF__STATUS__TOO_LARGE;
	}
	return MMF__STATUS__OK;
}

/* Checks a text: token ids fully; a string's size and that it can be
 * tokenized at all (its content is checked by the tokenizer). */
static int req_check_text(const req_ctx *ctx, const Mmf__Text *t, const char *what, char *err)
{
	const clip_config *c = &ctx->m->cfg;
	if (!t || t->source_case == MMF__TEXT__SOURCE__NOT_SET) {
		snprintf(err, REQ_ERR_MAX, "%s has no source (expected tokens or text)", what);
		return MMF__STATUS__BAD_REQUEST;
	}
	if (t->source_case == MMF__TEXT__SOURCE_TEXT)
		return MMF__STATUS__OK;	/* req_check_string, with the frame */
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

static int req_check_string(const req_ctx *ctx, const char *text, const char *what, char *err)
{
	size_t n = strlen(text);
	if (n > REQ_MAX_TEXT_BYTES) {
		snprintf(err, REQ_ERR_MAX, "%s is %zu bytes, over the limit of %d (the model reads %d tokens)", what, n,
			 REQ_MAX_TEXT_BYTES, ctx->m->cfg.context);
		return MMF__STATUS__TOO_LARGE;
	}
	if (!ctx->tok) {
		snprintf(err, REQ_ERR_MAX, "%s: this daemon cannot tokenize text: %s; send token ids", what, ctx->tok_error);
		return MMF__STATUS__UNSUPPORTED;
	}
	if (ctx->m->cfg.vocab < REQ_BPE_VOCAB) {
		snprintf(err, REQ_ERR_MAX,
			 "%s: the model's vocabulary has %d tokens, the CLIP BPE tokenizer makes ids up to %d; send token ids",
			 what, ctx->m->cfg.vocab, REQ_BPE_VOCAB - 1);
		return MMF__STATUS__BAD_REQUEST;
	}
	return MMF__STATUS__OK;
}

/* Every string of the request, checked; NULs found in the frame itself. */
static int req_check_strings(const req_ctx *ctx, const Mmf__Request *q, const uint8_t *msg, size_t len, char *err)
{
	static const int p_embed[] = {MMF__REQUEST__KIND_EMBED_TEXT, 1, 1}, p_labels[] = {MMF__REQUEST__KIND_CLASSIFY, 2},
			 p_sim[] = {MMF__REQUEST__KIND_SIMILARITY, 2, 1};
	long nul = q->kind_case == MMF__REQUEST__KIND_EMBED_TEXT ? req_find_nul(msg, len, p_embed, 3)
		 : q->kind_case == MMF__REQUEST__KIND_CLASSIFY ? req_find_nul(msg, len, p_labels, 2)
		 : q->kind_case == MMF__REQUEST__KIND_SIMILARITY ? req_find_nul(msg, len, p_sim, 3) : -1;
	if (nul >= 0) {
		snprintf(err, REQ_ERR_MAX, "a text holds a NUL byte at byte %ld; texts must be NUL-free UTF-8", nul);
		return MMF__STATUS__BAD_REQUEST;
	}
	char what[64];
	int st;
	if (q->kind_case == MMF__REQUEST__KIND_EMBED_TEXT && q->embed_text->text &&
	    q->embed_text->text->source_case == MMF__TEXT__SOURCE_TEXT)
		return req_check_string(ctx, q->embed_text->text->text, "text", err);
	if (q->kind_case == MMF__REQUEST__KIND_CLASSIFY)
		for (size_t i = 0; i < q->classify->n_labels; i++) {
			snprintf(what, sizeof what, "label %zu", i);
			if ((st = req_check_string(ctx, q->classify->labels[i], what, err)) != MMF__STATUS__OK)
				return st;
		}
	if (q->kind_case == MMF__REQUEST__KIND_SIMILARITY)
		for (size_t i = 0; i < q->similarity->n_texts; i++) {
			const Mmf__Text *t = q->similarity->texts[i];
			snprintf(what, sizeof what, "text %zu", i);
			if (t && t->source_case == MMF__TEXT__SOURCE_TEXT &&
			    (st = req_check_string(ctx, t->text, what, err)) != MMF__STATUS__OK)
				return st;
		}
	return MMF__STATUS__OK;
}

static int req_fill_image(const req_ctx *ctx, const Mmf__Image *im, const char *what, float *out, char *err)
{
	const clip_config *c = &ctx->m->cfg;
	mmf_err e = {0};
	int rc;
	if (im->source_case == MMF__IMAGE__SOURCE_RAW) {
		const Mmf__RawImage *r = im->raw;
		rc = mmf_image_preprocess(r->rgb.data, (int)r->width, (int)r->height, c->image_size, out, &e);
	} else {
		mmf_image img = {0};
		rc = mmf_image_decode(im->encoded.data, im->encoded.len, ctx->max_pixels, &img, &e);
		if (rc == 0)
			rc = mmf_image_preprocess(img.rgb, img.w, img.h, c->image_size, out, &e);
		mmf_image_free(&img);
	}
	if (rc == 0)
		return MMF__STATUS__OK;
	/* "image 2: JPEG data is ...", not "image 2: image: JPEG data is ..." */
	snprintf(err, REQ_ERR_MAX, "%s: %.440s", what, e.msg + (strncmp(e.msg, "image: ", 7) == 0 ? 7 : 0));
	return rc == -E2BIG ? MMF__STATUS__TOO_LARGE : rc == -ENOMEM ? MMF__STATUS__INTERNAL : MMF__STATUS__BAD_REQUEST;
}

static int req_fill_string(const req_ctx *ctx, const char *text, const char *what, int32_t *out, char *err)
{
	mmf_err e = {0};
	int rc = clip_tokenize(ctx->tok, text, strlen(text), out, ctx->m->cfg.context, &e);
	if (rc >= 0)
		return MMF__STATUS__OK;
	snprintf(err, REQ_ERR_MAX, "%s: %.440s", what, e.msg);
	return rc == -ENOMEM ? MMF__STATUS__INTERNAL : MMF__STATUS__BAD_REQUEST;
}

static int req_fill_text(const req_ctx *ctx, const Mmf__Text *t, const char *what, int32_t *out, char *err)
{
	if (t->source_case == MMF__TEXT__SOURCE_TEXT)
		return req_fill_string(ctx, t->text, what, out, err);
	/* the rest of the context row stays zero (job_new clears it) */
	memcpy(out, t->tokens->ids, t->tokens->n_ids * sizeof(int32_t));
	return MMF__STATUS__OK;
}

int req_prepare(const req_ctx *ctx, job *j, char *err)
{
	const clip_config *c = &ctx->m->cfg;
	const Mmf__Request *q = j->req;
	size_t S2 = (size_t)c->image_size * (size_t)c->image_size, T = (size_t)c->context;
	char what[64];
	int st = MMF__STATUS__OK;
	switch (j->kind) {
	case JOB_EMBED_IMAGE:
		return req_fill_image(ctx, q->embed_image->image, "image", j->pixels, err);
	case JOB_EMBED_TEXT:
		return req_fill_text(ctx, q->embed_text->text, "text", j->tokens, err);
	case JOB_CLASSIFY:
		if ((st = req_fill_image(ctx, q->classify->image, "image", j->pixels, err)) != MMF__STATUS__OK)
			return st;
		for (int i = 0; i < j->nt && st == MMF__STATUS__OK; i++) {
			snprintf(what, sizeof what, "label %d", i);
			st = req_fill_string(ctx, q->classify->labels[i], what, j->tokens + (size_t)i * T, err);
		}
		return st;
	case JOB_SIMILARITY:
		for (int i = 0; i < j->ni && st == MMF__STATUS__OK; i++) {
			snprintf(what, sizeof what, "image %d", i);
			st = req_fill_image(ctx, q->similarity->images[i], what, j->pixels + (size_t)i * 3 * S2, err);
		}
		for (int i = 0; i < j->nt && st == MMF__STATUS__OK; i++) {
			snprintf(what, sizeof what, "text %d", i);
			st = req_fill_text(ctx, q->similarity->texts[i], what, j->tokens + (size_t)i * T, err);
		}
		return st;
	case JOB_TRACE:	/* nothing to prepare */
		return MMF__STATUS__OK;
	case job_kind_max:
		break;
	}
	snprintf(err, REQ_ERR_MAX, "job kind %d cannot be prepared", (int)j->kind);
	return MMF__STATUS__INTERNAL;
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
	return resp_pack(&r, RT_stats, resp, len);
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
	return resp_pack(&r, RT_health, resp, len);
}

static int req_plan(const req_ctx *ctx, uint64_t id, uint8_t **resp, size_t *len)
{
	Mmf__Plan pl = MMF__PLAN__INIT;
	pl.json = (char *)(ctx->plan_json ? ctx->plan_json : "{}");
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = id;
	r.payload_case = MMF__RESPONSE__PAYLOAD_PLAN;
	r.plan = &pl;
	return resp_pack(&r, RT_plan, resp, len);
}

/* Validates a work request and builds its job (which takes q). Returns OK
 * with *jout set, or the error status with err set. */
static int req_job(const req_ctx *ctx, Mmf__Request *q, const uint8_t *msg, size_t len, int64_t t_arrive, job **jout,
		   int *prep, char *err)
{
	const clip_config *c = &ctx->m->cfg;
	int st, ni = 0, nt = 0;
	job_kind kind;
	char what[64];
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_EMBED_IMAGE:
		kind = JOB_EMBED_IMAGE, ni = 1;
		if ((st = req_check_image(ctx, q->embed_image->image, "image", err)) != MMF__STATUS__OK)
			return st;
		break;
	case MMF__REQUEST__KIND_EMBED_TEXT:
		kind = JOB_EMBED_TEXT, nt = 1;
		if ((st = req_check_text(ctx, q->embed_text->text, "text", err)) != MMF__STATUS__OK)
			return st;
		break;
	case MMF__REQUEST__KIND_CLASSIFY: {
		const Mmf__Classify *cl = q->classify;
		kind = JOB_CLASSIFY, ni = 1;
		if (cl->n_labels < 1 || cl->n_labels > REQ_MAX_LABELS) {
			snprintf(err, REQ_ERR_MAX, "classify with %zu labels, expected 1..%d", cl->n_labels, REQ_MAX_LABELS);
			return cl->n_labels > REQ_MAX_LABELS ? MMF__STATUS__TOO_LARGE : MMF__STATUS__BAD_REQUEST;
		}
		if ((st = req_check_image(ctx, cl->image, "image", err)) != MMF__STATUS__OK)
			return st;
		nt = (int)cl->n_labels;
		break;
	}
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
			if ((st = req_check_image(ctx, s->images[i], what, err)) != MMF__STATUS__OK)
				return st;
		}
		for (size_t i = 0; i < s->n_texts; i++) {
			snprintf(what, sizeof what, "text %zu", i);
			if ((st = req_check_text(ctx, s->texts[i], what, err)) != MMF__STATUS__OK)
				return st;
		}
		ni = (int)s->n_images, nt = (int)s->n_texts;
		break;
	}
	case MMF__REQUEST__KIND_TRACE:
		kind = JOB_TRACE;
		if (q->trace->seconds < 1 || q->trace->seconds > REQ_MAX_TRACE_S) {
			snprintf(err, REQ_ERR_MAX, "trace of %u seconds, expected 1..%d", q->trace->seconds, REQ_MAX_TRACE_S);
			return MMF__STATUS__BAD_REQUEST;
		}
		if (strncmp(ctx->device, "cuda", 4) != 0) {
			snprintf(err, REQ_ERR_MAX, "tracing needs mmfd --device cuda (the block records come from the GPU kernels)");
			return MMF__STATUS__UNSUPPORTED;
		}
		break;
	default:
		snprintf(err, REQ_ERR_MAX, "request kind %d is not a work request", (int)q->kind_case);
		return MMF__STATUS__INTERNAL;
	}
	if (kind != JOB_TRACE && (st = req_check_strings(ctx, q, msg, len, err)) != MMF__STATUS__OK)
		return st;
	job *j = job_new(kind, q->id, c, ni, nt);
	if (!j) {
		snprintf(err, REQ_ERR_MAX, "out of memory for %d images and %d texts", ni, nt);
		return MMF__STATUS__INTERNAL;
	}
	j->rtype = stats_rtype_of(q->kind_case);
	j->req = q;
	j->t_arrive = t_arrive;
	j->t_deadline = t_arrive + (int64_t)(q->deadline_ms ? q->deadline_ms : (uint32_t)ctx->deadline_ms) * 1000000;
	/* One short text is tokenized here (microseconds); a long one goes to
	 * the pool: nested HTML entities make cleaning quadratic in length. */
	*prep = kind != JOB_TRACE && (kind != JOB_EMBED_TEXT || (q->embed_text->text->source_case == MMF__TEXT__SOURCE_TEXT &&
								 strlen(q->embed_text->text->text) > REQ_INLINE_TEXT_BYTES));
	if (kind == JOB_TRACE) {	/* nothing to prepare; its window ignores the deadline */
		j->t_deadline = INT64_MAX;
		*jout = j;
		return MMF__STATUS__OK;
	}
	if (!*prep && (st = req_prepare(ctx, j, err)) != MMF__STATUS__OK) {
		j->req = NULL;	/* the caller still owns q */
		job_free(j);
		return st;
	}
	*jout = j;
	return MMF__STATUS__OK;
}

int req_handle(const req_ctx *ctx, const uint8_t *msg, size_t len, int64_t t_arrive, job **jout, int *prep_out,
	       uint8_t **resp, size_t *resp_len)
{
	char err[REQ_ERR_MAX];
	Mmf__Request *q;
	uint64_t id;
	int rc, st = frame_unpack_request(msg, len, &q, &id, err, sizeof err);
	*jout = NULL;
	*prep_out = 0;
	if (st != MMF__STATUS__OK) {
		stats_add(STAT_requests_invalid, 1);
		return resp_pack_status(id, RT_invalid, st, err, resp, resp_len);
	}
	stat_rtype rt = stats_rtype_of(q->kind_case);
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_EMBED_IMAGE: stats_add(STAT_requests_embed_image, 1); break;
	case MMF__REQUEST__KIND_EMBED_TEXT: stats_add(STAT_requests_embed_text, 1); break;
	case MMF__REQUEST__KIND_CLASSIFY: stats_add(STAT_requests_classify, 1); break;
	case MMF__REQUEST__KIND_SIMILARITY: stats_add(STAT_requests_similarity, 1); break;
	case MMF__REQUEST__KIND_STATS: stats_add(STAT_requests_stats, 1); break;
	case MMF__REQUEST__KIND_HEALTH: stats_add(STAT_requests_health, 1); break;
	case MMF__REQUEST__KIND_PLAN: stats_add(STAT_requests_plan, 1); break;
	case MMF__REQUEST__KIND_TRACE: stats_add(STAT_requests_trace, 1); break;
	default: stats_add(STAT_requests_invalid, 1); break;
	}
	switch (q->kind_case) {
	case MMF__REQUEST__KIND_HEALTH:
		rc = req_health(ctx, id, resp, resp_len);
		break;
	case MMF__REQUEST__KIND_STATS:
		rc = req_stats(id, resp, resp_len);
		break;
	case MMF__REQUEST__KIND_PLAN:
		rc = req_plan(ctx, id, resp, resp_len);
		break;
	default:
		if (ctx->draining) {
			rc = resp_pack_status(id, rt, MMF__STATUS__SHUTTING_DOWN, "the daemon is shutting down", resp, resp_len);
			break;
		}
		st = req_job(ctx, q, msg, len, t_arrive, jout, prep_out, err);
		if (st == MMF__STATUS__OK)
			return 1;	/* the job owns q now */
		rc = resp_pack_status(id, rt, st, err, resp, resp_len);
		break;
	}
	mmf__request__free_unpacked(q, NULL);
	return rc;
}
