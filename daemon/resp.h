/* resp: packing response frames. Every response the daemon sends goes
 * through resp_pack, which also counts it by request type and status. */
#ifndef MMFD_RESP_H
#define MMFD_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "mmf.pb-c.h"
#include "stats.h"

/* Packs r, the answer to a request of type t, into a framed malloc'd
 * buffer. Returns 0 or -ENOMEM. */
int resp_pack(const Mmf__Response *r, stat_rtype t, uint8_t **out, size_t *len);
/* A response with no payload; msg may be NULL for OK. */
int resp_pack_status(uint64_t id, stat_rtype t, int status, const char *msg, uint8_t **out, size_t *len);

#endif
