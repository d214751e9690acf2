/* frame: the wire framing shared by mmfd and libmmf (docs/PROTOCOL.md):
 * a 4-byte big-endian length, then one protobuf-c encoded message
 * (proto/mmf.proto). The length is checked against a maximum before any
 * allocation, and every request's protocol version is checked. */
#ifndef MMF_FRAME_H
#define MMF_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "mmf.pb-c.h"

#define MMF_PROTOCOL_VERSION 1
#define MMF_FRAME_MAX_DEFAULT (16u << 20)

/* Incremental decoder for a non-blocking byte stream. */
typedef struct frame_reader {
	uint32_t max;
	uint8_t hdr[4];
	size_t hdr_have;
	uint8_t *buf;	/* the frame being read (owned) */
	size_t len, have;
} frame_reader;

void frame_reader_init(frame_reader *r, uint32_t max);
void frame_reader_free(frame_reader *r);
/* Consumes up to n bytes (*used says how many). Returns 1 when a whole
 * frame is ready: *msg and *len then point at it, valid until the next call;
 * 0 when more bytes are needed; -EMSGSIZE when the announced length is 0
 * or over the maximum (*len then holds the announced length; the stream
 * cannot be resynchronised); -ENOMEM. */
int frame_reader_feed(frame_reader *r, const uint8_t *data, size_t n, size_t *used, const uint8_t **msg, size_t *len);

/* Encodes a message with its length prefix into a malloc'd buffer. */
int frame_pack_request(const Mmf__Request *req, uint8_t **out, size_t *len);
int frame_pack_response(const Mmf__Response *resp, uint8_t **out, size_t *len);

/* Decodes a request. Returns MMF__STATUS__OK with *out set (free with
 * mmf__request__free_unpacked(*out, NULL)), or BAD_REQUEST (not a valid
 * message, or no request kind) / BAD_VERSION with a message in err. *id
 * is the request id when it could be read (0 otherwise). */
int frame_unpack_request(const uint8_t *msg, size_t len, Mmf__Request **out, uint64_t *id, char *err, size_t errlen);

/* Blocking helpers for clients: write all bytes (EINTR-safe; on a socket
 * a closed peer gives -EPIPE, never SIGPIPE), and read
 * one whole frame into a malloc'd buffer. Return 0 or -errno; -EMSGSIZE
 * for a length over max; -ECONNRESET when the peer closed mid-frame;
 * -EPIPE when it closed before a frame started. */
int frame_write_all(int fd, const uint8_t *buf, size_t len);
int frame_read_one(int fd, uint32_t max, uint8_t **msg, size_t *len);

const char *mmf_status_name(int status);

#endif
