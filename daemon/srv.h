/* srv: the loop thread's server: the listening sockets (its own, or those
 * systemd passes), the live connections, signals, the once-a-second
 * STATUS timer and the watchdog timer, and the graceful drain on SIGTERM.
 * Everything here is touched by the loop thread only. */
#ifndef MMFD_SRV_H
#define MMFD_SRV_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "prep.h"
#include "req.h"
#include "sched.h"

#define SRV_MAX_LISTENERS 16

typedef struct conn conn;

typedef struct srv {
	struct event_base *base;
	conf *cf;
	int argc;		/* the command line, re-applied over the file on SIGHUP */
	char **argv;
	sched *sched;
	prep *prep;
	req_ctx rctx;
	struct evconnlistener *lis[SRV_MAX_LISTENERS];
	int nlis;
	int own_socket;		/* we made cf->socket: unlink it on exit */
	conn *conns;		/* live connections */
	uint64_t next_conn_id;
	int64_t outstanding;	/* jobs submitted and not yet completed */
	int draining, exit_code;
	int64_t tick_ns, tick_busy_us;	/* the last STATUS tick, for gpu_busy_pct */
	struct event *ev_done, *ev_sig[3], *ev_status, *ev_watchdog, *ev_accept_retry;
} srv;

/* Makes the event base and the listeners. */
int srv_init(srv *s, conf *cf, mmf_err *err);
/* Installs signals and timers, starts delivering completions; call once
 * the worker runs, then event_base_dispatch. */
int srv_start(srv *s, mmf_err *err);
/* Called by the worker thread: finished jobs wait in the scheduler. */
void srv_wake(void *ud);
/* Exits the loop once draining and nothing is left to answer. */
void srv_check_drained(srv *s);
void srv_free(srv *s);

#endif
