/* The request queue and the worker. Jobs are taken in arrival order; a
 * batch stops at the first job whose images or texts would not fit, so no
 * request waits behind later ones. */
#include "config.h"
#include "sched.h"
#include "tcache.h"

#include <errno.h>
#include <math.h>
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
#include "gpu_exec.h"
#endif

struct sched {
	const clip_model *m;
	sched_opts o;
	chain *ch[tower_max];
	cpu_engine *eng[tower_max];
#ifdef MMFD_GPU
	gpu_exec *gx;		/* --device cuda */
	int64_t mem_t;		/* when the device memory gauge was last read */
	int util_samples;	/* SM utilisation samples already in the counters */
#endif
	tcache *tc;		/* text embeddings by token ids, or NULL */
	job *trace_job;		/* the open trace window's request, or NULL */
	int64_t trace_end;	/* when it closes (CLOCK_MONOTONIC ns) */
	char device[200];
	float *px_batch, *img_batch, *txt_batch;
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
	if (j->req)
		mmf__request__free_unpacked(j->req, NULL);
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
	/* CLOCK_MONOTONIC: the trace window's timed wait uses that clock */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc;
	for (int t = 0; t < tower_max; t++)
		if ((rc = chain_build(m, (tower)t, &s->ch[t], err)) < 0)
			goto fail;
	snprintf(s->device, sizeof s->device, "cpu");
	if (o->text_cache > 0 && !(s->tc = tcache_new(o->text_cache, m->cfg.context, m->cfg.embed_dim))) {
		rc = mmf_err_set(err, -ENOMEM, "out of memory for a text cache of %d entries", o->text_cache);
		goto fail;
	}
	if (o->cuda) {
#ifdef MMFD_GPU
		gpu_exec_opts go = {.sms = o->sms, .max_batch = o->max_batch, .fuse = (gpu_fuse_mode)o->fuse,
				    .model_path = o->model_path, .plan_dir = o->plan_dir, .progress = o->progress,
				    .precision = o->int8, .util_every = o->util_every};
		if ((rc = gpu_exec_new(s->ch[TOWER_IMAGE], s->ch[TOWER_TEXT], &go, &s->gx, err)) < 0)
			goto fail;
		snprintf(s->device, sizeof s->device, "cuda: %s", gpu_exec_device(s->gx));
		stats_set(STAT_gpu_memory_mmfd_bytes, (int64_t)gpu_exec_bytes(s->gx));
		stats_set(STAT_gpu_memory_used_bytes, (int64_t)gpu_exec_device_used(s->gx));
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
	s->img_batch = malloc(B * (size_t)c->embed_dim * sizeof(float));
	s->txt_batch = malloc(B * (size_t)c->embed_dim * sizeof(float));
	if (!s->px_batch || !s->tok_batch || !s->img_batch || !s->txt_batch) {
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

char *sched_plan_json(const sched *s)
{
#ifdef MMFD_GPU
	if (s->gx)
		return gpu_exec_plan_json(s->gx);
#endif
	char *out = NULL;
	if (asprintf(&out,
		     "{\n \"backend\": \"cpu\",\n \"device\": \"%s\",\n \"batch_sizes\": [%d],\n"
		     " \"image_and_text\": \"image tower, then text tower (the CPU backend does not fuse)\"\n}",
		     s->device, s->o.max_batch) < 0)
		return NULL;
	return out;
}

int sched_submit(sched *s, job *j, int admitted)
{
	pthread_mutex_lock(&s->mu);
	if ((s->depth >= s->o.queue && !admitted) || s->stopping) {
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

/* Runs the items as engine steps of up to max_batch images and max_batch
 * texts and scatters the embeddings back. Returns 0 or the engine's error
 * (every job of the batch then fails). */
static int sched_run_steps(sched *s, const sched_item *im, int ni, const sched_item *tx, int nt, mmf_err *err)
{
	const clip_config *c = &s->m->cfg;
	size_t S2 = (size_t)c->image_size * (size_t)c->image_size, T = (size_t)c->context, E = (size_t)c->embed_dim;
	int B = s->o.max_batch;
	for (int i0 = 0, t0 = 0; i0 < ni || t0 < nt; i0 += B, t0 += B) {
		int bi = ni - i0 > B ? B : ni - i0 > 0 ? ni - i0 : 0;
		int bt = nt - t0 > B ? B : nt - t0 > 0 ? nt - t0 : 0, rc = 0, fused = 0;
		for (int i = 0; i < bi; i++)
			memcpy(s->px_batch + (size_t)i * 3 * S2, im[i0 + i].j->pixels + (size_t)im[i0 + i].k * 3 * S2,
			       3 * S2 * sizeof(float));
		for (int i = 0; i < bt; i++)
			memcpy(s->tok_batch + (size_t)i * T, tx[t0 + i].j->tokens + (size_t)tx[t0 + i].k * T, T * sizeof(int32_t));
#ifdef MMFD_GPU
		if (s->gx) {
			double us;
			rc = gpu_exec_run(s->gx, s->px_batch, bi, s->tok_batch, bt, s->img_batch, s->txt_batch, &fused, &us, err);
			stats_add(STAT_gpu_busy_us, (int64_t)us);
			trace_util u;
			int n = gpu_exec_util(s->gx, &u);
			if (n > s->util_samples) {	/* this step was traced: a new sample */
				s->util_samples = n;
				stats_add(STAT_sm_util_samples, 1);
				stats_set(STAT_sm_util_pct, (int64_t)(100 * u.total + 0.5));
				stats_set(STAT_sm_util_image_pct, (int64_t)(100 * u.image + 0.5));
				stats_set(STAT_sm_util_text_pct, (int64_t)(100 * u.text + 0.5));
				stats_add(STAT_sm_util_sum_pct, (int64_t)(100 * u.total + 0.5));
			}
			int64_t now = stats_now_ns();
			if (now - s->mem_t > 1000000000) {
				s->mem_t = now;
				stats_set(STAT_gpu_memory_used_bytes, (int64_t)gpu_exec_device_used(s->gx));
			}
		} else
#endif
		{
			if (bi)
				rc = cpu_embed_image(s->eng[TOWER_IMAGE], s->px_batch, bi, s->img_batch, err);
			if (rc == 0 && bt)
				rc = cpu_embed_text(s->eng[TOWER_TEXT], s->tok_batch, bt, s->txt_batch, err);
		}
		if (rc < 0)
			return rc;
		stats_add(fused ? STAT_steps_fused : STAT_steps_unfused, 1);
		stats_add(STAT_batches, 1);
		stats_add(STAT_batch_items, bi + bt);
		for (int i = 0; i < bi; i++)
			memcpy(im[i0 + i].j->img_emb + (size_t)im[i0 + i].k * E, s->img_batch + (size_t)i * E, E * sizeof(float));
		for (int i = 0; i < bt; i++)
			memcpy(tx[t0 + i].j->txt_emb + (size_t)tx[t0 + i].k * E, s->txt_batch + (size_t)i * E, E * sizeof(float));
	}
	return 0;
}

static void sched_pack_result(sched *s, job *j)
{
	const clip_config *c = &s->m->cfg;
	Mmf__Response r = MMF__RESPONSE__INIT;
	Mmf__Embedding e = MMF__EMBEDDING__INIT;
	Mmf__Logits l = MMF__LOGITS__INIT;
	Mmf__Probabilities pr = MMF__PROBABILITIES__INIT;
	float *logits = NULL, *probs = NULL;
	char **names = NULL;
	int *order = NULL;
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
	case JOB_CLASSIFY: {
		/* softmax over the labels of exp(logit_scale) * cosine, as open_clip's zero-shot does */
		int n = j->nt;
		logits = malloc((size_t)n * sizeof(float));
		probs = malloc((size_t)n * sizeof(float));
		names = malloc((size_t)n * sizeof(char *));
		order = malloc((size_t)n * sizeof(int));
		if (!logits || !probs || !names || !order)
			break;
		clip_logits(j->img_emb, 1, j->txt_emb, n, c->embed_dim, s->m->logit_scale, logits);
		if (clip_zero_shot(logits, n, probs, order) < 0)
			break;
		for (int i = 0; i < n; i++)
			names[i] = j->req->classify->labels[order[i]];
		pr.n_labels = pr.n_values = (size_t)n;
		pr.labels = names;
		pr.values = probs;
		r.payload_case = MMF__RESPONSE__PAYLOAD_PROBABILITIES;
		r.probabilities = &pr;
		break;
	}
	case JOB_TRACE:	/* answered by sched_trace_close */
	case job_kind_max:
		break;
	}
	if (r.payload_case == MMF__RESPONSE__PAYLOAD__NOT_SET || resp_pack(&r, j->rtype, &j->resp, &j->resp_len) < 0)
		resp_pack_status(j->id, j->rtype, MMF__STATUS__INTERNAL, "out of memory packing the response", &j->resp,
				 &j->resp_len);
	free(logits);
	free(probs);
	free(names);
	free(order);
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

void sched_complete(sched *s, job *j)
{
	j->next = NULL;
	sched_finish(s, j);
}

/* A trace request taken from the queue: opens the window, or answers at
 * once why it cannot. */
static void sched_trace_open(sched *s, job *j)
{
	/* req.c refuses traces on the CPU backend; this only guards */
	const char *why = "tracing needs mmfd --device cuda";
	Mmf__Status st = MMF__STATUS__UNSUPPORTED;
#ifdef MMFD_GPU
	if (s->gx) {
		why = NULL;
		if (gpu_exec_trace_begin(s->gx) < 0)	/* -EBUSY: a window is open */
			why = "a trace is already running; try again when it has finished", st = MMF__STATUS__QUEUE_FULL;
	}
#endif
	if (why) {
		resp_pack_status(j->id, j->rtype, st, why, &j->resp, &j->resp_len);
		sched_finish(s, j);
		return;
	}
	stats_add(STAT_in_flight, 1);
	j->t_start = stats_now_ns();
	pthread_mutex_lock(&s->mu);
	s->trace_job = j;
	s->trace_end = j->t_start + (int64_t)j->req->trace->seconds * 1000000000LL;
	pthread_mutex_unlock(&s->mu);
	log_info("trace: tracing every engine step for %u s (request %llu)", j->req->trace->seconds,
		 (unsigned long long)j->id);
}

/* Closes the trace window and answers its request. */
static void sched_trace_close(sched *s)
{
	pthread_mutex_lock(&s->mu);
	job *j = s->trace_job;
	s->trace_job = NULL;
	pthread_mutex_unlock(&s->mu);
	if (!j)
		return;
#ifdef MMFD_GPU
	mmf_err err = {0};
	unsigned steps = 0;
	unsigned long long records = 0;
	int truncated = 0;
	char *json = gpu_exec_trace_end(s->gx, &steps, &records, &truncated, &err);
	if (!json) {
		resp_pack_status(j->id, j->rtype, MMF__STATUS__INTERNAL, err.msg, &j->resp, &j->resp_len);
	} else {
		Mmf__Response r = MMF__RESPONSE__INIT;
		Mmf__Trace t = MMF__TRACE__INIT;
		t.json = json, t.steps = steps, t.records = records, t.truncated = truncated;
		r.id = j->id, r.status = MMF__STATUS__OK;
		r.payload_case = MMF__RESPONSE__PAYLOAD_TRACE;
		r.trace = &t;
		if (resp_pack(&r, j->rtype, &j->resp, &j->resp_len) < 0)
			resp_pack_status(j->id, j->rtype, MMF__STATUS__INTERNAL, "out of memory packing the trace", &j->resp,
					 &j->resp_len);
		log_info("trace: %u steps, %llu block records%s (request %llu)", steps, records,
			 truncated ? ", truncated at the record limit" : "", (unsigned long long)j->id);
		free(json);
	}
#endif
	stats_latency(HIST_latency_compute, stats_now_ns() - j->t_start);
	stats_add(STAT_in_flight, -1);
	sched_finish(s, j);
}

static void *sched_worker(void *arg)
{
	sched *s = arg;
	cpu_set_threads(s->o.threads);	/* OpenMP's thread count is per calling thread */
	int B = s->o.max_batch;
	const size_t T = (size_t)s->m->cfg.context, E = (size_t)s->m->cfg.embed_dim;
	sched_item *imgs = NULL, *txts = NULL;
	int icap = 0, tcap = 0;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stopping && !(s->trace_job && stats_now_ns() >= s->trace_end)) {
			if (s->trace_job) {	/* trace_end is CLOCK_MONOTONIC ns, the cv's clock */
				struct timespec ts = {s->trace_end / 1000000000LL, s->trace_end % 1000000000LL};
				pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			} else {
				pthread_cond_wait(&s->cv, &s->mu);
			}
		}
		if (s->trace_job && (s->stopping || stats_now_ns() >= s->trace_end)) {
			pthread_mutex_unlock(&s->mu);
			sched_trace_close(s);
			continue;
		}
		if (!s->head) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		/* The first job always goes (a Similarity may hold more than B
		 * samples); later ones only while both batches still fit. A trace
		 * request goes alone: it opens a window of its own. */
		job *batch = s->head, *last = s->head;
		int ni = batch->ni, nt = batch->nt, n = 1;
		while (batch->kind != JOB_TRACE && last->next && last->next->kind != JOB_TRACE && ni + last->next->ni <= B &&
		       nt + last->next->nt <= B) {
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
		if (batch->kind == JOB_TRACE) {
			sched_trace_open(s, batch);
			continue;
		}
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
				resp_pack_status(j->id, j->rtype, MMF__STATUS__DEADLINE_EXCEEDED, msg, &j->resp, &j->resp_len);
				continue;
			}
			if (oom)
				continue;
			for (int k = 0; k < j->ni; k++)
				imgs[nimg++] = (sched_item){j, k};
			for (int k = 0; k < j->nt; k++) {
				if (tcache_get(s->tc, j->tokens + (size_t)k * T, j->txt_emb + (size_t)k * E)) {
					stats_add(STAT_text_cache_hits, 1);
					continue;
				}
				if (s->tc)
					stats_add(STAT_text_cache_misses, 1);
				txts[ntxt++] = (sched_item){j, k};
			}
		}
		mmf_err err = {0};
		int rc = oom ? mmf_err_set(&err, -ENOMEM, "worker: out of memory for a batch of %d images and %d texts", ni, nt) : 0;
		if (rc == 0 && (nimg || ntxt))
			rc = sched_run_steps(s, imgs, nimg, txts, ntxt, &err);
		for (int i = 0; rc == 0 && s->tc && i < ntxt; i++)
			tcache_put(s->tc, txts[i].j->tokens + (size_t)txts[i].k * T, txts[i].j->txt_emb + (size_t)txts[i].k * E);
		int64_t end = stats_now_ns();
		for (job *j = batch; j; j = j->next) {
			if (j->resp)
				continue;
			stats_latency(HIST_latency_compute, end - now);
			if (rc < 0) {
				log_error("worker: request %llu: %s", (unsigned long long)j->id, err.msg);
				resp_pack_status(j->id, j->rtype, MMF__STATUS__INTERNAL, err.msg, &j->resp, &j->resp_len);
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
	gpu_exec_free(s->gx);	/* first: its towers point into the chains */
#endif
	for (int t = 0; t < tower_max; t++) {
		cpu_engine_free(s->eng[t]);
		chain_free(s->ch[t]);
	}
	tcache_free(s->tc);
	free(s->px_batch);
	free(s->tok_batch);
	free(s->img_batch);
	free(s->txt_batch);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
