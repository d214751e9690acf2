/* The request queue and the CPU worker. Jobs are taken in arrival order;
 * a batch stops at the first job whose images or texts would not fit, so no
 * request waits behind later ones. */
#include "config.h"
#include "sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain.h"
#include "log.h"
#include "resp.h"
#include "stats.h"
#ifdef MMFD_GPU
#include "gpu.h"
#include "gpu_part.h"
#endif

struct sched {
	const clip_model *m;
	sched_opts o;
	chain *ch[tower_max];
	cpu_engine *eng[tower_max];
#ifdef MMFD_GPU
	/* --device cuda: resident fp16 weights and one tower per chain at
	 * max_batch, on a stream of the chosen partition. */
	gpu_parts *parts;
	gpu_model *gm;
	gpu_tower *gt[tower_max];
	cudaStream_t stream;
#endif
	char device[160];
	float *px_batch, *emb_batch;
	int32_t *tok_batch;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *head, *tail;	/* queued */
	int depth;
	int stopping;
	job *done_head, *done_tail;
};

job *job_new(job_kind kind, uint64_t id, const clip_config *cfg, int ni, int nt)
{
	job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->kind = kind;
	j->id = id;
	j->ni = ni;
	j->nt = nt;
	size_t S = (size_t)cfg->image_size, E = (size_t)cfg->embed_dim;
	if ((ni && (!(j->pixels = malloc((size_t)ni * 3 * S * S * sizeof(float))) ||
		    !(j->img_emb = malloc((size_t)ni * E * sizeof(float))))) ||
	    (nt && (!(j->tokens = calloc((size_t)nt * (size_t)cfg->context, sizeof(int32_t))) ||
		    !(j->txt_emb = malloc((size_t)nt * E * sizeof(float)))))) {
		job_free(j);
		return NULL;
	}
	return j;
}

void job_free(job *j)
{
	if (!j)
		return;
	free(j->pixels);
	free(j->tokens);
	free(j->img_emb);
	free(j->txt_emb);
	free(j->resp);
	free(j);
}

int sched_new(const clip_model *m, const sched_opts *o, sched **out, mmf_err *err)
{
	sched *s = calloc(1, sizeof *s);
	if (!s)
		return mmf_err_set(err, -ENOMEM, "out of memory");
	s->m = m;
	s->o = *o;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	int rc;
	for (int t = 0; t < tower_max; t++)
		if ((rc = chain_build(m, (tower)t, &s->ch[t], err)) < 0)
			goto fail;
	snprintf(s->device, sizeof s->device, "cpu");
	if (o->cuda) {
#ifdef MMFD_GPU
		gpu_part *p;
		if ((rc = gpu_parts_open(0, &s->parts, err)) < 0 || (rc = gpu_parts_check(s->parts, o->sms, err)) < 0 ||
		    (rc = gpu_part_get(s->parts, o->sms, &p, err)) < 0 || (rc = gpu_part_stream(p, 0, &s->stream, err)) < 0 ||
		    (rc = gpu_model_new(s->ch[TOWER_IMAGE], s->ch[TOWER_TEXT], &s->gm, err)) < 0)
			goto fail;
		for (int t = 0; t < tower_max; t++)	/* GEMM shapes timed on the partition */
			if ((rc = gpu_tower_new(s->gm, s->ch[t], o->max_batch, gpu_part_sms(p), s->stream, &s->gt[t], err)) < 0)
				goto fail;
		snprintf(s->device, sizeof s->device, "cuda: %s, %s", gpu_parts_device_name(s->parts), gpu_part_name(p));
#else
		rc = mmf_err_set(err, -ENOTSUP, "--device cuda: this mmfd was built without CUDA");
		goto fail;
#endif
	} else {
		for (int t = 0; t < tower_max; t++)
			if ((rc = cpu_engine_new(s->ch[t], o->max_batch, &s->eng[t], err)) < 0)
				goto fail;
	}
	const clip_config *c = &m->cfg;
	size_t B = (size_t)o->max_batch, S = (size_t)c->image_size;
	s->px_batch = malloc(B * 3 * S * S * sizeof(float));
	s->tok_batch = malloc(B * (size_t)c->context * sizeof(int32_t));
	s->emb_batch = malloc(B * (size_t)c->embed_dim * sizeof(float));
	if (!s->px_batch || !s->tok_batch || !s->emb_batch) {
		rc = mmf_err_set(err, -ENOMEM, "out of memory for batches of %d", o->max_batch);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	sched_free(s);
	return rc;
}

const char *sched_device(const sched *s) { return s->device; }

int sched_submit(sched *s, job *j)
{
	pthread_mutex_lock(&s->mu);
	if (s->depth >= s->o.queue || s->stopping) {
		pthread_mutex_unlock(&s->mu);
		return -EAGAIN;
	}
	j->next = NULL;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->depth++;
	stats_add(STAT_queue_depth, 1);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

job *sched_take_done(sched *s)
{
	pthread_mutex_lock(&s->mu);
	job *d = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->mu);
	return d;
}

/* One (job, sample) pair of a tower's batch. */
typedef struct sched_item {
	job *j;
	int k;
} sched_item;

/* Runs tower t over every item, max_batch at a time, and scatters the
 * embeddings back. Returns 0 or the engine's error (every job then fails). */
static int sched_run_tower(sched *s, tower t, sched_item *it, int n, mmf_err *err)
{
	const clip_config *c = &s->m->cfg;
	size_t S2 = (size_t)c->image_size * (size_t)c->image_size, T = (size_t)c->context, E = (size_t)c->embed_dim;
	for (int i0 = 0; i0 < n; i0 += s->o.max_batch) {
		int b = n - i0 < s->o.max_batch ? n - i0 : s->o.max_batch, rc;
		for (int i = 0; i < b; i++) {
			const sched_item *x = &it[i0 + i];
			if (t == TOWER_IMAGE)
				memcpy(s->px_batch + (size_t)i * 3 * S2, x->j->pixels + (size_t)x->k * 3 * S2, 3 * S2 * sizeof(float));
			else
				memcpy(s->tok_batch + (size_t)i * T, x->j->tokens + (size_t)x->k * T, T * sizeof(int32_t));
		}
#ifdef MMFD_GPU
		if (s->gt[t]) {
			rc = t == TOWER_IMAGE ? gpu_tower_set_image(s->gt[t], s->px_batch, b, s->stream, err)
					      : gpu_tower_set_text(s->gt[t], s->tok_batch, b, s->stream, err);
			if (rc == 0 && gpu_tower_enqueue(s->gt[t], s->stream) < 0)
				rc = mmf_err_set(err, -EIO, "gpu: launching the %s tower failed", tower_name(t));
			if (rc == 0)
				rc = gpu_tower_get_output(s->gt[t], s->emb_batch, b, s->stream, err);
		} else
#endif
			rc = t == TOWER_IMAGE ? cpu_embed_image(s->eng[t], s->px_batch, b, s->emb_batch, err)
					      : cpu_embed_text(s->eng[t], s->tok_batch, b, s->emb_batch, err);
		if (rc < 0)
			return rc;
		stats_add(STAT_batches, 1);
		stats_add(STAT_batch_items, b);
		for (int i = 0; i < b; i++) {
			const sched_item *x = &it[i0 + i];
			float *dst = (t == TOWER_IMAGE ? x->j->img_emb : x->j->txt_emb) + (size_t)x->k * E;
			memcpy(dst, s->emb_batch + (size_t)i * E, E * sizeof(float));
		}
	}
	return 0;
}

static void sched_pack_result(sched *s, job *j)
{
	const clip_config *c = &s->m->cfg;
	Mmf__Response r = MMF__RESPONSE__INIT;
	Mmf__Embedding e = MMF__EMBEDDING__INIT;
	Mmf__Logits l = MMF__LOGITS__INIT;
	float *logits = NULL;
	r.id = j->id;
	r.status = MMF__STATUS__OK;
	switch (j->kind) {
	case JOB_EMBED_IMAGE:
	case JOB_EMBED_TEXT:
		e.n_values = (size_t)c->embed_dim;
		e.values = j->kind == JOB_EMBED_IMAGE ? j->img_emb : j->txt_emb;
		r.payload_case = MMF__RESPONSE__PAYLOAD_EMBEDDING;
		r.embedding = &e;
		break;
	case JOB_SIMILARITY:
		if (!(logits = malloc((size_t)j->ni * (size_t)j->nt * sizeof(float))))
			break;
		clip_logits(j->img_emb, j->ni, j->txt_emb, j->nt, c->embed_dim, s->m->logit_scale, logits);
		l.images = (uint32_t)j->ni;
		l.texts = (uint32_t)j->nt;
		l.n_values = (size_t)j->ni * (size_t)j->nt;
		l.values = logits;
		r.payload_case = MMF__RESPONSE__PAYLOAD_LOGITS;
		r.logits = &l;
		break;
	case job_kind_max:
		break;
	}
	if (r.payload_case == MMF__RESPONSE__PAYLOAD__NOT_SET || resp_pack(&r, &j->resp, &j->resp_len) < 0)
		resp_pack_status(j->id, MMF__STATUS__INTERNAL, "out of memory packing the response", &j->resp, &j->resp_len);
	free(logits);
}

static void sched_finish(sched *s, job *list)
{
	if (!list)
		return;
	job *last = list;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&s->mu);
	int was_empty = !s->done_head;
	if (s->done_tail)
		s->done_tail->next = list;
	else
		s->done_head = list;
	s->done_tail = last;
	pthread_mutex_unlock(&s->mu);
	if (was_empty && s->o.wake)
		s->o.wake(s->o.wake_ud);
}

static void *sched_worker(void *arg)
{
	sched *s = arg;
	cpu_set_threads(s->o.threads);	/* OpenMP's thread count is per calling thread */
	int B = s->o.max_batch;
	sched_item *imgs = NULL, *txts = NULL;
	int icap = 0, tcap = 0;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->head) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		/* The first job always goes (a Similarity may hold more than B
		 * samples); later ones only while both batches still fit. */
		job *batch = s->head, *last = s->head;
		int ni = batch->ni, nt = batch->nt, n = 1;
		while (last->next && ni + last->next->ni <= B && nt + last->next->nt <= B) {
			last = last->next;
			ni += last->ni, nt += last->nt, n++;
		}
		s->head = last->next;
		if (!s->head)
			s->tail = NULL;
		last->next = NULL;
		s->depth -= n;
		pthread_mutex_unlock(&s->mu);
		stats_add(STAT_queue_depth, -n);
		stats_add(STAT_in_flight, n);

		int64_t now = stats_now_ns();
		if (s->o.test_delay_ms > 0) {
			struct timespec d = {s->o.test_delay_ms / 1000, (long)(s->o.test_delay_ms % 1000) * 1000000};
			nanosleep(&d, NULL);
		}
		int oom = 0;
		if (ni > icap) {
			sched_item *a = realloc(imgs, (size_t)ni * sizeof *a);
			if (a)
				imgs = a, icap = ni;
			else
				oom = 1;
		}
		if (nt > tcap) {
			sched_item *a = realloc(txts, (size_t)nt * sizeof *a);
			if (a)
				txts = a, tcap = nt;
			else
				oom = 1;
		}
		int nimg = 0, ntxt = 0;
		for (job *j = batch; j; j = j->next) {
			j->t_start = now;
			stats_latency(HIST_latency_queue, now - j->t_arrive);
			if (now > j->t_deadline) {
				char msg[128];
				snprintf(msg, sizeof msg, "request waited %.1f ms in the queue, past its deadline",
					 (double)(now - j->t_arrive) / 1e6);
				resp_pack_status(j->id, MMF__STATUS__DEADLINE_EXCEEDED, msg, &j->resp, &j->resp_len);
				continue;
			}
			if (oom)
				continue;
			for (int k = 0; k < j->ni; k++)
				imgs[nimg++] = (sched_item){j, k};
			for (int k = 0; k < j->nt; k++)
				txts[ntxt++] = (sched_item){j, k};
		}
		mmf_err err = {0};
		int rc = oom ? mmf_err_set(&err, -ENOMEM, "worker: out of memory for a batch of %d images and %d texts", ni, nt) : 0;
		if (rc == 0 && nimg)
			rc = sched_run_tower(s, TOWER_IMAGE, imgs, nimg, &err);
		if (rc == 0 && ntxt)
			rc = sched_run_tower(s, TOWER_TEXT, txts, ntxt, &err);
		int64_t end = stats_now_ns();
		for (job *j = batch; j; j = j->next) {
			if (j->resp)
				continue;
			stats_latency(HIST_latency_compute, end - now);
			if (rc < 0) {
				log_error("worker: request %llu: %s", (unsigned long long)j->id, err.msg);
				resp_pack_status(j->id, MMF__STATUS__INTERNAL, err.msg, &j->resp, &j->resp_len);
			} else {
				sched_pack_result(s, j);
			}
		}
		stats_add(STAT_in_flight, -n);
		sched_finish(s, batch);
	}
	free(imgs);
	free(txts);
	return NULL;
}

int sched_start(sched *s, mmf_err *err)
{
	int rc = pthread_create(&s->thread, NULL, sched_worker, s);
	if (rc)
		return mmf_err_set(err, -rc, "cannot start the worker thread: %s", strerror(rc));
	s->started = 1;
	return 0;
}

void sched_stop(sched *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->started = 0;
}

void sched_free(sched *s)
{
	if (!s)
		return;
	sched_stop(s);
	for (job *j = s->head, *n; j; j = n)
		n = j->next, job_free(j);
	for (job *j = s->done_head, *n; j; j = n)
		n = j->next, job_free(j);
#ifdef MMFD_GPU
	/* Towers and weights first: they point into the chains. */
	for (int t = 0; t < tower_max; t++)
		gpu_tower_free(s->gt[t]);
	gpu_model_free(s->gm);
	gpu_parts_close(s->parts);
#endif
	for (int t = 0; t < tower_max; t++) {
		cpu_engine_free(s->eng[t]);
		chain_free(s->ch[t]);
	}
	free(s->px_batch);
	free(s->tok_batch);
	free(s->emb_batch);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
