/* prep: the small pool that turns image requests into model inputs off the
 * loop thread: JPEG/PNG decoding, resizing and normalisation, and the
 * tokenizing of Classify labels and Similarity texts. The loop thread
 * admits a job (bounded queue, QUEUE_FULL when full); a pool thread
 * prepares it and passes it to the scheduler, or, when its input turns out
 * bad (an undecodable image), packs the error response and hands it
 * straight to the done list. */
#ifndef MMFD_PREP_H
#define MMFD_PREP_H

#include "err.h"
#include "req.h"
#include "sched.h"

typedef struct prep prep;

typedef struct prep_opts {
	int threads;		/* at least 1 */
	int queue;		/* jobs waiting for a pool thread */
	const req_ctx *ctx;
	sched *sc;
} prep_opts;

int prep_new(const prep_opts *o, prep **out, mmf_err *err);
/* Queues j. Returns 0, or -EAGAIN when the queue is full or the pool is
 * stopping (j stays the caller's). */
int prep_submit(prep *p, job *j);
/* Lets the threads finish everything queued, then joins them. */
void prep_stop(prep *p);
void prep_free(prep *p);

#endif
