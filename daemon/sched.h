/* sched: the bounded request queue and the one worker thread that owns the
 * CPU engines. The loop thread submits jobs; the worker takes as many
 * queued jobs as fit in one image batch and one text batch (up to
 * max_batch samples each, from any clients), runs both towers, packs each
 * job's response frame and hands the finished jobs back through a
 * mutex-protected list, calling `wake` (which must be thread-safe). The
 * worker never touches a job's owner. */
#ifndef MMFD_SCHED_H
#define MMFD_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "err.h"
#include "model.h"

typedef enum job_kind { JOB_EMBED_IMAGE, JOB_EMBED_TEXT, JOB_SIMILARITY, job_kind_max } job_kind;

typedef struct job {
	struct job *next;
	job_kind kind;
	uint64_t id;		/* the request id */
	void *owner;		/* the connection, for the loop thread only */
	int64_t t_arrive, t_deadline, t_start;	/* CLOCK_MONOTONIC ns */
	int ni, nt;		/* images and texts */
	float *pixels;		/* ni x [3][S][S], normalised */
	int32_t *tokens;	/* nt x context */
	float *img_emb, *txt_emb;	/* ni x embed, nt x embed */
	uint8_t *resp;		/* the framed response, set by the worker */
	size_t resp_len;
} job;

/* Allocates a job with room for ni images and nt texts of model m. */
job *job_new(job_kind kind, uint64_t id, const clip_config *cfg, int ni, int nt);
void job_free(job *j);

typedef struct sched sched;

typedef struct sched_opts {
	int queue, max_batch, threads, test_delay_ms;
	int cuda;		/* run the towers on the GPU (MMFD_GPU builds) */
	int sms;		/* cuda: partition size, 0 for the whole GPU */
	void (*wake)(void *ud);	/* called by the worker when finished jobs are waiting */
	void *wake_ud;
} sched_opts;

int sched_new(const clip_model *m, const sched_opts *o, sched **out, mmf_err *err);
/* "cpu", or "cuda: NVIDIA H200, all 132 SMs" / "cuda: NVIDIA H200, 8 SMs". */
const char *sched_device(const sched *s);
int sched_start(sched *s, mmf_err *err);
/* Queues j. Returns 0, or -EAGAIN when the queue is full (j stays the caller's). */
int sched_submit(sched *s, job *j);
/* Takes every finished job (a list linked by next, oldest first). */
job *sched_take_done(sched *s);
/* Lets the worker finish everything queued, then joins it. */
void sched_stop(sched *s);
/* Stops (if needed) and frees; finished jobs not yet taken are freed too. */
void sched_free(sched *s);

#endif
