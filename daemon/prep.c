/* The preparation pool (prep.h). */
#include "config.h"
#include "prep.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "stats.h"

struct prep {
	prep_opts o;
	pthread_t *th;
	int nth;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *head, *tail;
	int depth, stopping;
};

static void *prep_thread(void *arg)
{
	prep *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		job *j = p->head;
		if (!j) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		if (!(p->head = j->next))
			p->tail = NULL;
		p->depth--;
		pthread_mutex_unlock(&p->mu);
		stats_add(STAT_prep_depth, -1);

		char msg[REQ_ERR_MAX];
		int64_t t0 = stats_now_ns();
		int st = req_prepare(p->o.ctx, j, msg);
		stats_latency(HIST_latency_prep, stats_now_ns() - t0);
		if (st == MMF__STATUS__OK && sched_submit(p->o.sc, j, 1) == 0)
			continue;
		if (st == MMF__STATUS__OK)
			st = MMF__STATUS__SHUTTING_DOWN, snprintf(msg, sizeof msg, "the daemon is shutting down");
		if (resp_pack_status(j->id, j->rtype, st, msg, &j->resp, &j->resp_len) < 0) {
			j->resp = NULL;	/* the loop thread answers INTERNAL for a job without a response */
			j->resp_len = 0;
		}
		sched_complete(p->o.sc, j);
	}
	return NULL;
}

int prep_new(const prep_opts *o, prep **out, mmf_err *err)
{
	prep *p = calloc(1, sizeof *p);
	if (!p || !(p->th = calloc((size_t)o->threads, sizeof *p->th))) {
		free(p);
		return mmf_err_set(err, -ENOMEM, "out of memory");
	}
	p->o = *o;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (; p->nth < o->threads; p->nth++) {
		int rc = pthread_create(&p->th[p->nth], NULL, prep_thread, p);
		if (rc) {
			prep_free(p);
			return mmf_err_set(err, -rc, "cannot start a preparation thread: %s", strerror(rc));
		}
	}
	*out = p;
	return 0;
}

int prep_submit(prep *p, job *j)
{
	pthread_mutex_lock(&p->mu);
	if (p->depth >= p->o.queue || p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -EAGAIN;
	}
	j->next = NULL;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->depth++;
	stats_add(STAT_prep_depth, 1);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void prep_stop(prep *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	p->nth = 0;
}

void prep_free(prep *p)
{
	if (!p)
		return;
	prep_stop(p);
	for (job *j = p->head, *n; j; j = n)
		n = j->next, job_free(j);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->th);
	free(p);
}
