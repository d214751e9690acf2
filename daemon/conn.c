/* Client connections: framing in, responses out with a bounded output
 * buffer, and the state machine described in conn.h. */
#include "config.h"
#include "conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "req.h"
#include "prep.h"
#include "resp.h"
#include "stats.h"

struct conn {
	conn_state state;
	int refs;		/* one for the server's list while not CLOSED, one per queued job */
	uint64_t id;
	srv *srv;
	struct bufferevent *bev;
	struct event *stall;	/* armed while we wait for the client to read */
	frame_reader fr;
	int pending;		/* jobs queued or computing */
	conn *prev, *next;
};

static const char *const conn_state_names[conn_state_max] = {"reading", "blocked", "closing", "closed"};

static void conn_set_state(conn *c, conn_state to);

static void conn_unref(conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static size_t conn_out_len(const conn *c) { return evbuffer_get_length(bufferevent_get_output(c->bev)); }

static void conn_stall_arm(conn *c)
{
	if (evtimer_pending(c->stall, NULL))
		return;
	int ms = c->srv->cf->stall_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(c->stall, &tv);
}

static void conn_free_resp(const void *data, size_t len, void *arg)
{
	(void)len, (void)arg;
	free((void *)data);
}

/* Queues a framed response (taking ownership of buf). */
static void conn_send(conn *c, uint8_t *buf, size_t len)
{
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), buf, len, conn_free_resp, NULL) < 0) {
		free(buf);
		log_error("connection %llu: cannot queue a response of %zu bytes", (unsigned long long)c->id, len);
		conn_set_state(c, CONN_CLOSED);
		return;
	}
	stats_add(STAT_bytes_out, (int64_t)len);
	if (c->state == CONN_READING && conn_out_len(c) > (size_t)c->srv->cf->max_output)
		conn_set_state(c, CONN_BLOCKED);
	else if (c->state == CONN_CLOSING)
		conn_stall_arm(c);
}

static void conn_send_status(conn *c, uint64_t id, stat_rtype t, int status, const char *msg)
{
	uint8_t *buf;
	size_t len;
	if (resp_pack_status(id, t, status, msg, &buf, &len) < 0) {
		conn_set_state(c, CONN_CLOSED);
		return;
	}
	conn_send(c, buf, len);
}

static void conn_request(conn *c, const uint8_t *msg, size_t len)
{
	srv *s = c->srv;
	job *j;
	uint8_t *resp;
	size_t rlen;
	int prep_it;
	int rc = req_handle(&s->rctx, msg, len, stats_now_ns(), &j, &prep_it, &resp, &rlen);
	if (rc < 0) {
		log_error("connection %llu: out of memory answering a request", (unsigned long long)c->id);
		conn_set_state(c, CONN_CLOSED);
		return;
	}
	if (rc == 0) {
		conn_send(c, resp, rlen);
		return;
	}
	j->owner = c;
	if (prep_it ? prep_submit(s->prep, j) < 0 : sched_submit(s->sched, j, 0) < 0) {
		char m[160];
		uint64_t id = j->id;
		stat_rtype t = j->rtype;
		job_free(j);
		snprintf(m, sizeof m, "the %s queue is full (%d requests waiting); try again later",
			 prep_it ? "image decoding" : "request", s->cf->queue);
		conn_send_status(c, id, t, MMF__STATUS__QUEUE_FULL, m);
		return;
	}
	c->pending++;
	c->refs++;
	s->outstanding++;
}

/* Feeds buffered input to the frame reader and handles whole frames, while
 * the state allows (or regardless, when force). */
static void conn_process(conn *c, int force)
{
	c->refs++;	/* a request may close c */
	while (force ? c->state != CONN_CLOSED : c->state == CONN_READING) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		const uint8_t *msg = NULL;
		size_t used, len = 0;
		int rc = frame_reader_feed(&c->fr, v.iov_base, v.iov_len, &used, &msg, &len);
		evbuffer_drain(in, used);
		stats_add(STAT_bytes_in, (int64_t)used);
		if (rc == 1) {
			conn_request(c, msg, len);
		} else if (rc == -EMSGSIZE) {
			char m[160];
			snprintf(m, sizeof m, "frame length %zu is out of range: expected 1..%u bytes; closing the connection",
				 len, c->srv->cf->max_frame);
			log_info("connection %llu: %s", (unsigned long long)c->id, m);
			conn_send_status(c, 0, RT_invalid, MMF__STATUS__TOO_LARGE, m);
			conn_set_state(c, CONN_CLOSING);
			break;
		} else if (rc < 0) {
			log_error("connection %llu: out of memory reading a frame", (unsigned long long)c->id);
			conn_set_state(c, CONN_CLOSED);
			break;
		}
	}
	conn_unref(c);
}

static int conn_mid_frame(const conn *c)
{
	return c->fr.hdr_have > 0 && !(c->fr.buf && c->fr.have == c->fr.len);
}

static void conn_set_state(conn *c, conn_state to)
{
	conn_state from = c->state;
	if (from == to || from == CONN_CLOSED)
		return;
	log_debug("connection %llu: %s -> %s", (unsigned long long)c->id, conn_state_names[from], conn_state_names[to]);
	c->state = to;
	srv *s = c->srv;
	switch (to) {
	case CONN_READING:
		evtimer_del(c->stall);
		bufferevent_enable(c->bev, EV_READ);
		conn_process(c, 0);	/* frames that arrived while blocked */
		break;
	case CONN_BLOCKED:
		bufferevent_disable(c->bev, EV_READ);
		conn_stall_arm(c);
		break;
	case CONN_CLOSING:
		bufferevent_disable(c->bev, EV_READ);
		if (c->pending == 0 && conn_out_len(c) == 0)
			conn_set_state(c, CONN_CLOSED);
		else if (conn_out_len(c))
			conn_stall_arm(c);
		break;
	case CONN_CLOSED:
		if (conn_mid_frame(c))
			stats_add(STAT_frames_truncated, 1);
		event_free(c->stall);
		c->stall = NULL;
		bufferevent_free(c->bev);
		c->bev = NULL;
		frame_reader_free(&c->fr);
		if (c->prev)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		stats_add(STAT_connections_open, -1);
		log_debug("connection %llu closed, %d responses still to come", (unsigned long long)c->id, c->pending);
		conn_unref(c);	/* the list's reference */
		srv_check_drained(s);
		break;
	case conn_state_max:
		break;
	}
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg, 0);
}

/* The output buffer is empty (the default low watermark). */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn *c = arg;
	if (c->state == CONN_BLOCKED) {
		conn_set_state(c, CONN_READING);
	} else if (c->state == CONN_CLOSING) {
		evtimer_del(c->stall);
		if (c->pending == 0)
			conn_set_state(c, CONN_CLOSED);
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	conn *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (what & BEV_EVENT_ERROR)
			log_debug("connection %llu: %s", (unsigned long long)c->id,
				  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_set_state(c, CONN_CLOSED);
	}
}

static void conn_stall_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	conn *c = arg;
	stats_add(STAT_connections_stalled, 1);
	log_warn("connection %llu: dropped: it read none of its %zu bytes of responses for %d ms",
		 (unsigned long long)c->id, conn_out_len(c), c->srv->cf->stall_timeout_ms);
	conn_set_state(c, CONN_CLOSED);
}

int conn_new(srv *s, evutil_socket_t fd)
{
	conn *c = calloc(1, sizeof *c);
	if (!c || !(c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
		free(c);
		evutil_closesocket(fd);
		return -ENOMEM;
	}
	if (!(c->stall = evtimer_new(s->base, conn_stall_cb, c))) {
		bufferevent_free(c->bev);
		free(c);
		return -ENOMEM;
	}
	c->srv = s;
	c->refs = 1;
	c->id = ++s->next_conn_id;
	c->state = CONN_READING;
	frame_reader_init(&c->fr, s->cf->max_frame);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	stats_add(STAT_connections_open, 1);
	stats_add(STAT_connections_total, 1);
	log_debug("connection %llu opened", (unsigned long long)c->id);
	return 0;
}

void conn_complete(srv *s, job *j)
{
	conn *c = j->owner;
	s->outstanding--;
	c->pending--;
	stats_latency(HIST_latency_total, stats_now_ns() - j->t_arrive);
	if (c->state == CONN_CLOSED) {
		stats_add(STAT_responses_dropped, 1);
	} else if (!j->resp) {
		conn_send_status(c, j->id, j->rtype, MMF__STATUS__INTERNAL, "out of memory packing the response");
	} else {
		conn_send(c, j->resp, j->resp_len);
		j->resp = NULL;
		if (c->state == CONN_CLOSING && c->pending == 0 && conn_out_len(c) == 0)
			conn_set_state(c, CONN_CLOSED);
	}
	conn_unref(c);
	job_free(j);
}

void conn_drain_all(srv *s)
{
	for (conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		c->refs++;	/* c may close below */
		/* Requests the client sent before the signal are answered: read
		 * what the kernel holds for us, then handle every whole frame. */
		if (c->state == CONN_READING || c->state == CONN_BLOCKED) {
			struct evbuffer *in = bufferevent_get_input(c->bev);
			while (evbuffer_read(in, bufferevent_getfd(c->bev), -1) > 0)
				;
			conn_process(c, 1);
		}
		if (c->state != CONN_CLOSED)
			conn_set_state(c, CONN_CLOSING);
		conn_unref(c);
	}
}
