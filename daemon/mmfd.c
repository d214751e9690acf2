/* mmfd: the resident CLIP inference daemon (CPU or CUDA backend).
 *
 * Threads: the loop thread (libevent) owns every socket and connection;
 * a small pool (prep.c) decodes images and tokenizes labels; one worker
 * thread (sched.c) owns the engines. Requests cross over in bounded
 * queues, results come back through the scheduler's done list and an
 * event the worker activates. See docs/DAEMON.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include "tokenizer.h"
#ifdef MMFD_GPU
#include "gpu_exec.h"
#endif

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

/* Without --foreground: fork before any thread or GPU context exists (a
 * CUDA context does not survive fork), and let the parent wait until the
 * child is serving, so that `mmfd` still returns only once the socket and
 * the model are ready, with the child's errors on the same stderr and its
 * exit status 1 when it failed. Returns the pipe the child reports
 * readiness on, or -1 in the foreground. */
static int mmfd_detach(void)
{
	int p[2];
	if (pipe(p) < 0) {
		log_error("pipe: %s", strerror(errno));
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		char c = 0;
		ssize_t n;
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		_exit(n == 1 && c == 'R' ? 0 : 1);
	}
	close(p[0]);
	setsid();
	int fd = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 0);
		if (fd > 0)
			close(fd);
	}
	return p[1];
}

int main(int argc, char **argv)
{
	conf cf;
	mmf_err err = {0};
	clip_model *m = NULL;
	sched *sc = NULL;
	prep *pp = NULL;
	clip_tokenizer *tok = NULL;
	char *plan_json = NULL;
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
	int ready_fd = cf.foreground ? -1 : mmfd_detach();
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
	s.argc = argc, s.argv = argv;

	clip_weights wmode = CLIP_WEIGHTS_AUTO;
	int int8 = 0;
	clip_weights_parse(cf.weights, &wmode);	/* validated with the configuration */
	if (clip_model_resolve(cf.model, MMFD_SYNTH_SEED, path, sizeof path, note_info, &err) < 0 ||
	    clip_model_load_w(path, wmode, &m, &int8, &err) < 0) {
		log_error("model: %s", err.msg);
		goto out;
	}
	clip_config_str(&m->cfg, cfgstr, sizeof cfgstr);
	snprintf(desc, sizeof desc, "%s: %s%s", path, cfgstr, int8 ? "; int8 weights" : "");
	log_info("model %s (%.1f M parameters; %d of %d convolution and linear weights int8%s)", desc,
		 (double)m->nparams / 1e6, m->nint8, m->nweights,
		 m->nint8 && strcmp(cf.device, "cuda") ? ", computed dequantised on the CPU" : "");
	s.rctx.m = m;
	s.rctx.model_desc = desc;
	s.rctx.deadline_ms = cf.deadline_ms;
	s.rctx.max_pixels = cf.max_image_pixels;

	/* The tokenizer: an explicit --vocab must load; without one a missing
	 * default only turns text strings off (token ids still work). */
	if (clip_tokenizer_new(*cf.vocab ? cf.vocab : NULL, &tok, &err) < 0) {
		if (*cf.vocab) {
			log_error("vocab: %s", err.msg);
			goto out;
		}
		log_warn("text strings are refused: %s", err.msg);
		s.rctx.tok_error = strdup(err.msg);
	} else {
		s.rctx.tok = tok;
	}

	int fuse = 0;
#ifdef MMFD_GPU
	fuse = gpu_fuse_mode_parse(cf.fuse);
#endif
	sched_opts so = {.queue = cf.queue, .max_batch = cf.max_batch, .threads = cf.threads,
			 .test_delay_ms = cf.test_delay_ms, .wake = srv_wake, .wake_ud = &s,
			 .cuda = !strcmp(cf.device, "cuda"), .sms = cf.sms, .fuse = fuse, .int8 = int8, .util_every = cf.util_every, .text_cache = cf.text_cache,
			 .model_path = path,
			 .plan_dir = *cf.plan_dir ? cf.plan_dir : NULL, .progress = note_info};
	if (sched_new(m, &so, &sc, &err) < 0) {
		log_error("engine: %s", err.msg);
		goto out;
	}
	s.sched = sc;
	s.rctx.device = sched_device(sc);
	if (!(plan_json = sched_plan_json(sc))) {
		log_error("out of memory");
		goto out;
	}
	s.rctx.plan_json = plan_json;
	log_info("device: %s", sched_device(sc));
	prep_opts po = {.threads = cf.prep_threads, .queue = cf.queue, .ctx = &s.rctx, .sc = sc};
	if (prep_new(&po, &pp, &err) < 0) {
		log_error("%s", err.msg);
		goto out;
	}
	s.prep = pp;
	if (sched_start(sc, &err) < 0 || srv_start(&s, &err) < 0) {
		log_error("%s", err.msg);
		goto out;
	}
	notify_ready();
	if (ready_fd >= 0) {
		ssize_t w = write(ready_fd, "R", 1);
		(void)w;	/* the parent exits 1 if it is not told */
		close(ready_fd);
	}
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
	prep_free(pp);	/* before the scheduler it submits to */
	sched_free(sc);
	clip_tokenizer_free(tok);
	free(plan_json);
	free((char *)s.rctx.tok_error);
	srv_free(&s);
	clip_model_free(m);
	return rc;
}
