/* sched: the bounded request queue and the one worker thread that owns the
 * engines (CPU, or the GPU executor). The loop thread (and the prep pool)
 * submit jobs; the worker takes as many queued jobs as fit in one image
 * batch and one text batch (up to max_batch samples each, from any
 * clients) and runs them as engine steps of up to max_batch images plus
 * max_batch texts: on the GPU one step is one graph launch, fused when the
 * executor chose a fusion plan. It packs each job's response frame and
 * hands the finished jobs back through a mutex-protected list, calling
 * `wake` (which must be thread-safe). The worker never touches a job's
 * owner. */
#ifndef MMFD_SCHED_H
#define MMFD_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "err.h"
#include "mmf.pb-c.h"
#include "model.h"
#include "stats.h"

/* JOB_TRACE: no images or texts; the worker traces every step for
 * req->trace->seconds, then answers (CUDA only). */
typedef enum job_kind { JOB_EMBED_IMAGE, JOB_EMBED_TEXT, JOB_SIMILARITY, JOB_CLASSIFY, JOB_TRACE, job_kind_max } job_kind;

typedef struct job {
	struct job *next;
	job_kind kind;
	stat_rtype rtype;	/* for the (type, status) counters */
	uint64_t id;		/* the request id */
	Mmf__Request *req;	/* the unpacked request, owned: its images are
				 * decoded by the prep pool, its labels named in
				 * a Classify response */
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
/* Frees j and everything it owns (its request too). */
void job_free(job *j);

typedef struct sched sched;

typedef struct sched_opts {
	int queue, max_batch, threads, test_delay_ms;
	int cuda;		/* run the towers on the GPU (MMFD_GPU builds) */
	int sms;		/* cuda: partition size, 0 for the whole GPU */
	int fuse;		/* cuda: gpu_fuse_mode (auto, on, off) */
	int int8;		/* cuda: run the model's int8 weights */
	int util_every;		/* cuda: sample SM utilisation every this many images+texts (0: never) */
	int text_cache;		/* text embeddings kept by token ids (0: none) */
	const char *model_path;	/* cuda: keys the plan cache */
	const char *plan_dir;	/* cuda: where fusion plans are cached, or NULL */
	void (*progress)(const char *line);	/* setup progress lines */
	void (*wake)(void *ud);	/* called by the worker when finished jobs are waiting */
	void *wake_ud;
} sched_opts;

int sched_new(const clip_model *m, const sched_opts *o, sched **out, mmf_err *err);
/* "cpu", or "cuda: NVIDIA H200, all 132 SMs" / "cuda: NVIDIA H200, 8 SMs". */
const char *sched_device(const sched *s);
int sched_start(sched *s, mmf_err *err);
/* What the engine does per step, as JSON (malloc'd, NULL on OOM). */
char *sched_plan_json(const sched *s);
/* Queues j. Returns 0, or -EAGAIN when the queue is full or the worker is
 * stopping (j stays the caller's). `admitted` jobs (already counted
 * against a queue, e.g. by the prep pool) are queued even when full. */
int sched_submit(sched *s, job *j, int admitted);
/* Hands a job whose response is already packed straight to the done list. */
void sched_complete(sched *s, job *j);
/* Takes every finished job (a list linked by next, oldest first). */
job *sched_take_done(sched *s);
/* Lets the worker finish everything queued, then joins it. */
void sched_stop(sched *s);
/* Stops (if needed) and frees; finished jobs not yet taken are freed too. */
void sched_free(sched *s);

#endif
