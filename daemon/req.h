/* req: one request frame in, either an immediate response (health, stats,
 * every error, the kinds this build cannot serve) or a job for the worker
 * with its inputs validated and preprocessed. Unpack, handle and free
 * happen in req_handle. */
#ifndef MMFD_REQ_H
#define MMFD_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "sched.h"

/* Per-request sample limits for Similarity: they bound a queued job's
 * memory (an image is 3*S*S floats once preprocessed). */
#define REQ_MAX_IMAGES 16
#define REQ_MAX_TEXTS 256

typedef struct req_ctx {
	const clip_model *m;
	const char *model_desc;
	const char *device;	/* for Health */
	int deadline_ms;	/* default deadline */
	int draining;
} req_ctx;

/* Returns 1 with *jout set (queue it), 0 with *resp set (send it now), or
 * -ENOMEM. */
int req_handle(const req_ctx *ctx, const uint8_t *msg, size_t len, int64_t t_arrive, job **jout, uint8_t **resp,
	       size_t *resp_len);

#endif
