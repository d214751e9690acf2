/* conn: one client connection as a state machine.
 *
 *   READING  --output over max_output-->      BLOCKED (reading stops)
 *   BLOCKED  --output flushed-->              READING
 *   BLOCKED  --stall timeout-->               CLOSED (counted)
 *   READING/BLOCKED --bad frame length, SIGTERM--> CLOSING
 *   CLOSING  --nothing pending, output flushed--> CLOSED
 *   any      --EOF, error-->                  CLOSED
 *
 * Every request gets exactly one response while the connection is open.
 * Queued jobs hold a reference, so a connection closed under them stays
 * allocated (CLOSED) until the worker's results for it arrive and are
 * discarded (counted as dropped). conn_set_state is the only place the
 * state changes. */
#ifndef MMFD_CONN_H
#define MMFD_CONN_H

#include <event2/util.h>

#include "sched.h"
#include "srv.h"

typedef enum conn_state { CONN_READING, CONN_BLOCKED, CONN_CLOSING, CONN_CLOSED, conn_state_max } conn_state;

/* Takes ownership of fd. Returns 0 or -ENOMEM (fd closed). */
int conn_new(srv *s, evutil_socket_t fd);
/* A job the worker finished: its response goes to its connection, or is
 * dropped if that has closed. Frees j. */
void conn_complete(srv *s, job *j);
/* Shutdown: every connection takes the requests already received, then
 * stops reading; each closes once they are answered. */
void conn_drain_all(srv *s);

#endif
