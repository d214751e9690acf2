/* mmfd: the resident CLIP inference daemon (CPU backend).
 *
 * Threads: the loop thread (libevent) owns every socket and connection;
 * one worker thread (sched.c) owns the engines. Requests cross over in a
 * bounded queue, results come back through the scheduler's done list and
 * an event the worker activates. See docs/DAEMON.md. */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "model.h"
#include "notify.h"
#include "sched.h"
#include "srv.h"
#include "stats.h"
#include "synth.h"

#define MMFD_SYNTH_SEED 1	/* mmf-bench's default: both share $MMF_CACHE */

static void note_info(const char *msg) { log_info("%s", msg); }

/* Each client costs a descriptor: allow as many as the hard limit does. */
static void mmfd_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	conf cf;
	mmf_err err = {0};
	clip_model *m = NULL;
	sched *sc = NULL;
	srv s;
	int rc = 1;
	char path[1100], cfgstr[512], desc[1700];

	log_init();
	conf_defaults(&cf);
	if (conf_parse_args(&cf, argc, argv, &err) < 0) {
		fprintf(stderr, "mmfd: %s\n", err.msg);
		return 2;
	}
	if (cf.help) {
		conf_usage(stdout);
		return 0;
	}
	log_set_level(cf.log_level);
	signal(SIGPIPE, SIG_IGN);
	mmfd_raise_nofile();
	stats_init();
	memset(&s, 0, sizeof s);

	/* The socket first: a second daemon fails before loading a model. */
	if (evthread_use_pthreads() < 0) {
		log_error("libevent: no thread support");
		goto out;
	}
	if (srv_init(&s, &cf, &err) < 0) {
		log_error("%s", err.msg);
		goto out;
	}

	if (clip_model_resolve(cf.model, MMFD_SYNTH_SEED, path, sizeof path, note_info, &err) < 0 || clip_model_load(path, &m, &err) < 0) {
		log_error("model: %s", err.msg);
		goto out;
	}
	clip_config_str(&m->cfg, cfgstr, sizeof cfgstr);
	snprintf(desc, sizeof desc, "%s: %s", path, cfgstr);
	log_info("model %s (%.1f M parameters)", desc, (double)m->nparams / 1e6);
	s.rctx.m = m;
	s.rctx.model_desc = desc;
	s.rctx.deadline_ms = cf.deadline_ms;
	sched_opts so = {.queue = cf.queue, .max_batch = cf.max_batch, .threads = cf.threads,
			 .test_delay_ms = cf.test_delay_ms, .wake = srv_wake, .wake_ud = &s,
			 .cuda = !strcmp(cf.device, "cuda"), .sms = cf.sms};
	if (sched_new(m, &so, &sc, &err) < 0) {
		log_error("engine: %s", err.msg);
		goto out;
	}
	s.sched = sc;
	s.rctx.device = sched_device(sc);
	log_info("device: %s", sched_device(sc));
	if (!cf.foreground) {
		/* Detach after everything that can fail has been reported; keep
		 * the working directory (relative paths) and stderr (the log). */
		if (daemon(1, 1) < 0) {
			log_error("daemon: %s", strerror(errno));
			goto out;
		}
		event_reinit(s.base);
	}
	if (sched_start(sc, &err) < 0 || srv_start(&s, &err) < 0) {
		log_error("%s", err.msg);
		goto out;
	}
	notify_ready();
	log_info("ready: queue %d, max batch %d, max frame %u, deadline %d ms", cf.queue, cf.max_batch, cf.max_frame,
		 cf.deadline_ms);
	if (event_base_dispatch(s.base) < 0) {
		log_error("event loop failed");
		goto out;
	}
	char line[512];
	stats_status_line(line, sizeof line);
	log_info("stopped: %s", line);
	rc = 0;
out:
	sched_free(sc);
	srv_free(&s);
	clip_model_free(m);
	return rc;
}
