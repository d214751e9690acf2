/* req: one request frame in, either an immediate response (health, stats,
 * plan, every error found by validation) or a job for the worker. Sizes
 * are checked before anything is allocated. EmbedText is prepared on the
 * loop thread (tokenizing one text is microseconds); a job with images or
 * many texts is marked for the prep pool, which calls req_prepare. */
#ifndef MMFD_REQ_H
#define MMFD_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "sched.h"
#include "tokenizer.h"

/* Per-request limits: they bound a queued job's memory (an image is 3*S*S
 * floats once preprocessed, a text `context` ids and an embedding). */
#define REQ_MAX_IMAGES 16
#define REQ_MAX_TEXTS 256
#define REQ_MAX_LABELS 1000
#define REQ_MAX_TRACE_S 60	/* longest trace window, seconds */
#define REQ_MAX_TEXT_BYTES 16384
#define REQ_ERR_MAX 512

typedef struct req_ctx {
	const clip_model *m;
	const char *model_desc;
	const char *device;	/* for Health */
	const char *plan_json;	/* for Plan */
	const clip_tokenizer *tok;	/* NULL: text strings are refused with tok_error */
	const char *tok_error;
	int64_t max_pixels;	/* decoded image limit */
	int deadline_ms;	/* default deadline */
	int draining;
} req_ctx;

/* Returns 1 with *jout set (queue it: to the prep pool when *prep_out),
 * 0 with *resp set (send it now), or -ENOMEM. */
int req_handle(const req_ctx *ctx, const uint8_t *msg, size_t len, int64_t t_arrive, job **jout, int *prep_out,
	       uint8_t **resp, size_t *resp_len);

/* Fills a job's pixels and tokens from its request (decoding, resizing,
 * tokenizing). Returns MMF__STATUS__OK, or a status with err (REQ_ERR_MAX
 * bytes) set. Thread-safe. */
int req_prepare(const req_ctx *ctx, job *j, char *err);

#endif
