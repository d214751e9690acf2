/* resp: packing response frames. Every response the daemon sends goes
 * through resp_pack, which also counts it by status. */
#ifndef MMFD_RESP_H
#define MMFD_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "mmf.pb-c.h"

/* Packs r into a framed malloc'd buffer. Returns 0 or -ENOMEM. */
int resp_pack(const Mmf__Response *r, uint8_t **out, size_t *len);
/* A response with no payload; msg may be NULL for OK. */
int resp_pack_status(uint64_t id, int status, const char *msg, uint8_t **out, size_t *len);

#endif
