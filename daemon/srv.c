/* The loop thread: listeners, signals, timers, completions, drain. */
#include "config.h"
#include "srv.h"

#include <errno.h>
#include <grp.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "notify.h"
#include "stats.h"

static void srv_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	(void)l, (void)sa, (void)len;
	srv *s = arg;
	if (s->draining) {
		evutil_closesocket(fd);
		return;
	}
	if (conn_new(s, fd) < 0)
		log_error("out of memory for a new connection");
}

static void srv_listeners_enable(srv *s, int on)
{
	for (int i = 0; i < s->nlis; i++)
		if (on)
			evconnlistener_enable(s->lis[i]);
		else
			evconnlistener_disable(s->lis[i]);
}

/* Out of descriptors: accepting again at once would spin, so pause. */
static void srv_accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	srv *s = arg;
	int e = EVUTIL_SOCKET_ERROR();
	log_warn("accept: %s; not accepting for 100 ms", evutil_socket_error_to_string(e));
	srv_listeners_enable(s, 0);
	struct timeval tv = {0, 100000};
	evtimer_add(s->ev_accept_retry, &tv);
}

static void srv_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	srv *s = arg;
	if (!s->draining)
		srv_listeners_enable(s, 1);
}

static int srv_add_listener(srv *s, evutil_socket_t fd, mmf_err *err)
{
	if (s->nlis == SRV_MAX_LISTENERS)
		return mmf_err_set(err, -EMFILE, "more than %d listening sockets", SRV_MAX_LISTENERS);
	evutil_make_socket_nonblocking(fd);
	/* backlog 0: the socket is already listening */
	struct evconnlistener *l = evconnlistener_new(s->base, srv_accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!l)
		return mmf_err_set(err, -ENOMEM, "cannot watch listening socket %d", (int)fd);
	evconnlistener_set_error_cb(l, srv_accept_error_cb);
	s->lis[s->nlis++] = l;
	return 0;
}

/* Our own socket: a stale file is removed only if no one answers on it. */
static int srv_bind(srv *s, mmf_err *err)
{
	const char *path = s->cf->socket;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	struct stat st;
	int fd;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return mmf_err_set(err, -EEXIST, "%s: exists and is not a socket", path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return mmf_err_set(err, -errno, "socket: %s", strerror(errno));
		int r = connect(fd, (struct sockaddr *)&sa, sizeof sa), e = errno;
		close(fd);
		if (r == 0)
			return mmf_err_set(err, -EADDRINUSE, "%s: another daemon is listening on it", path);
		if (e != ECONNREFUSED)
			return mmf_err_set(err, -e, "%s: cannot tell whether it is in use: %s", path, strerror(e));
		if (unlink(path) < 0)
			return mmf_err_set(err, -errno, "%s: cannot remove the stale socket: %s", path, strerror(errno));
		log_info("%s: removed a stale socket no one was listening on", path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return mmf_err_set(err, -errno, "socket: %s", strerror(errno));
	mode_t old = umask(0177);	/* born 0600: no one else connects before chmod */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa), e = errno;
	umask(old);
	if (r < 0) {
		close(fd);
		return mmf_err_set(err, -e, "%s: bind: %s", path, strerror(e));
	}
	s->own_socket = 1;
	gid_t gid = (gid_t)-1;
	if (*s->cf->socket_group) {
		struct group *g = getgrnam(s->cf->socket_group);
		if (!g) {
			close(fd);
			return mmf_err_set(err, -ENOENT, "socket-group '%s': no such group", s->cf->socket_group);
		}
		gid = g->gr_gid;
	}
	if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || chmod(path, (mode_t)s->cf->socket_mode) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		e = errno;
		close(fd);
		return mmf_err_set(err, -e, "%s: %s", path, strerror(e));
	}
	int rc = srv_add_listener(s, fd, err);
	if (rc < 0)
		return rc;
	log_info("listening on %s (own socket, mode %04o%s%s)", path, s->cf->socket_mode, gid != (gid_t)-1 ? ", group " : "",
		 gid != (gid_t)-1 ? s->cf->socket_group : "");
	return 0;
}

int srv_init(srv *s, conf *cf, mmf_err *err)
{
	memset(s, 0, sizeof *s);
	s->cf = cf;
	if (!(s->base = event_base_new()))
		return mmf_err_set(err, -ENOMEM, "cannot create the event loop");
	if (!(s->ev_accept_retry = evtimer_new(s->base, srv_accept_retry_cb, s)))
		return mmf_err_set(err, -ENOMEM, "out of memory");
	int n = notify_listen_fds(), rc;
	if (n < 0)
		return mmf_err_set(err, n, "sd_listen_fds: %s", strerror(-n));
	if (n == 0)
		return srv_bind(s, err);
	for (int i = 0; i < n; i++)
		if ((rc = srv_add_listener(s, 3 + i, err)) < 0)
			return rc;
	log_info("listening on %d socket(s) passed by systemd (socket activation); --socket is not used", n);
	return 0;
}

static void srv_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	srv *s = arg;
	for (job *j = sched_take_done(s->sched), *next; j; j = next) {
		next = j->next;
		conn_complete(s, j);
	}
	srv_check_drained(s);
}

void srv_wake(void *ud)
{
	srv *s = ud;
	event_active(s->ev_done, EV_READ, 0);
}

void srv_check_drained(srv *s)
{
	if (s->draining && !s->conns && s->outstanding == 0)
		event_base_loopexit(s->base, NULL);
}

static void srv_drain(srv *s, const char *why)
{
	s->draining = 1;
	notify_stopping();
	log_info("%s: not accepting connections; answering %lld queued requests, then exiting", why,
		 (long long)s->outstanding);
	for (int i = 0; i < s->nlis; i++)
		evconnlistener_free(s->lis[i]);
	s->nlis = 0;
	if (s->own_socket) {
		unlink(s->cf->socket);
		s->own_socket = 0;
	}
	conn_drain_all(s);
	s->rctx.draining = 1;
	srv_check_drained(s);
}

/* SIGHUP: re-reads the configuration file and applies what the loop
 * thread alone uses (log level, default deadline, output limits); settings
 * that shape the engine or the socket need a restart, and a changed one is
 * named in the log. The command line still overrides the file. */
static void srv_reload(srv *s)
{
	conf tmp;
	mmf_err err = {0};
	conf_defaults(&tmp);
	if (conf_parse_args(&tmp, s->argc, s->argv, &err) < 0) {
		log_warn("SIGHUP: %s; keeping the running settings", err.msg);
		return;
	}
	conf *c = s->cf;
	char fixed[256] = "";
#define FIXED(cond, name) \
	if (cond)          \
		snprintf(fixed + strlen(fixed), sizeof fixed - strlen(fixed), "%s%s", *fixed ? ", " : "", name)
	FIXED(strcmp(tmp.model, c->model), "model");
	FIXED(strcmp(tmp.device, c->device), "device");
	FIXED(tmp.sms != c->sms, "sms");
	FIXED(tmp.max_batch != c->max_batch, "max-batch");
	FIXED(tmp.queue != c->queue, "queue");
	FIXED(tmp.threads != c->threads, "threads");
	FIXED(strcmp(tmp.socket, c->socket), "socket");
	FIXED(strcmp(tmp.fuse, c->fuse), "fuse");
	FIXED(strcmp(tmp.weights, c->weights), "weights");
	FIXED(tmp.max_frame != c->max_frame, "max-frame");
	FIXED(tmp.util_every != c->util_every, "util-every");
	FIXED(tmp.text_cache != c->text_cache, "text-cache");
#undef FIXED
	c->log_level = tmp.log_level;
	c->deadline_ms = tmp.deadline_ms;
	c->max_output = tmp.max_output;
	c->stall_timeout_ms = tmp.stall_timeout_ms;
	s->rctx.deadline_ms = tmp.deadline_ms;
	log_set_level(tmp.log_level);
	/* at a level the new setting shows, so the reload is always logged */
	log_msg(tmp.log_level < LOG_INFO ? tmp.log_level : LOG_INFO,
		"SIGHUP: re-read %s: log level %s, deadline %d ms, max output %d, stall timeout %d ms%s%s%s", tmp.config,
		log_level_name(tmp.log_level), tmp.deadline_ms, tmp.max_output, tmp.stall_timeout_ms,
		*fixed ? "; changed but applied only at restart: " : "", fixed, "");
}

static void srv_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	srv *s = arg;
	if (sig == SIGHUP) {
		srv_reload(s);
		return;
	}
	if (s->draining) {
		log_warn("%s again: exiting without answering %lld requests", strsignal((int)sig), (long long)s->outstanding);
		_exit(1);
	}
	srv_drain(s, strsignal((int)sig));
}

static void srv_status_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	srv *s = arg;
	/* GPU busy: engine GPU time over wall time since the last tick */
	int64_t now = stats_now_ns(), busy = stats_get(STAT_gpu_busy_us);
	int64_t wall_us = (now - s->tick_ns) / 1000;
	if (s->tick_ns && wall_us > 0)
		stats_set(STAT_gpu_busy_pct, (busy - s->tick_busy_us) * 100 / wall_us);
	s->tick_ns = now, s->tick_busy_us = busy;
	char line[512];
	stats_status_line(line, sizeof line);
	notify_status(line);
}

static void srv_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	notify_watchdog();
}

int srv_start(srv *s, mmf_err *err)
{
	static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
	if (!(s->ev_done = event_new(s->base, -1, 0, srv_done_cb, s)))
		return mmf_err_set(err, -ENOMEM, "out of memory");
	for (int i = 0; i < 3; i++)
		if (!(s->ev_sig[i] = evsignal_new(s->base, sigs[i], srv_signal_cb, s)) || event_add(s->ev_sig[i], NULL) < 0)
			return mmf_err_set(err, -ENOMEM, "cannot watch signal %d", sigs[i]);
	struct timeval sec = {1, 0};
	if (!(s->ev_status = event_new(s->base, -1, EV_PERSIST, srv_status_cb, s)) || event_add(s->ev_status, &sec) < 0)
		return mmf_err_set(err, -ENOMEM, "out of memory");
	uint64_t wd = notify_watchdog_usec();
	if (wd) {
		struct timeval tv = {(time_t)(wd / 3 / 1000000), (suseconds_t)(wd / 3 % 1000000)};
		if (!(s->ev_watchdog = event_new(s->base, -1, EV_PERSIST, srv_watchdog_cb, s)) ||
		    event_add(s->ev_watchdog, &tv) < 0)
			return mmf_err_set(err, -ENOMEM, "out of memory");
		log_info("watchdog: %.1f s; pinging every %.1f s", (double)wd / 1e6, (double)wd / 3e6);
		notify_watchdog();
	}
	return 0;
}

void srv_free(srv *s)
{
	for (int i = 0; i < s->nlis; i++)
		evconnlistener_free(s->lis[i]);
	s->nlis = 0;
	if (s->own_socket)
		unlink(s->cf->socket);
	struct event *evs[] = {s->ev_done, s->ev_sig[0], s->ev_sig[1], s->ev_sig[2], s->ev_status, s->ev_watchdog,
			       s->ev_accept_retry};
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	if (s->base)
		event_base_free(s->base);
	memset(s, 0, sizeof *s);
}
