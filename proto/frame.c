/* Framing: length prefix, bounded incremental reader, packing helpers. */
#include "config.h"
#include "frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void frame_reader_init(frame_reader *r, uint32_t max)
{
	memset(r, 0, sizeof *r);
	r->max = max ? max : MMF_FRAME_MAX_DEFAULT;
}

void frame_reader_free(frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

int frame_reader_feed(frame_reader *r, const uint8_t *data, size_t n, size_t *used, const uint8_t **msg, size_t *len)
{
	size_t u = 0;
	*used = 0;
	if (r->buf && r->have == r->len) {	/* the previous frame was taken */
		free(r->buf);
		r->buf = NULL;
		r->hdr_have = 0;
	}
	while (r->hdr_have < 4 && u < n)
		r->hdr[r->hdr_have++] = data[u++];
	if (r->hdr_have < 4) {
		*used = u;
		return 0;
	}
	if (!r->buf) {
		uint32_t l = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 | (uint32_t)r->hdr[2] << 8 | r->hdr[3];
		if (l == 0 || l > r->max) {
			*used = u;
			*len = l;
			return -EMSGSIZE;
		}
		if (!(r->buf = malloc(l)))
			return -ENOMEM;
		r->len = l;
		r->have = 0;
	}
	size_t take = r->len - r->have < n - u ? r->len - r->have : n - u;
	memcpy(r->buf + r->have, data + u, take);
	r->have += take;
	u += take;
	*used = u;
	if (r->have < r->len)
		return 0;
	*msg = r->buf;
	*len = r->len;
	return 1;
}

static int pack(size_t size, void (*packer)(const void *, uint8_t *), const void *m, uint8_t **out, size_t *len)
{
	if (size > UINT32_MAX)
		return -EMSGSIZE;
	uint8_t *b = malloc(4 + (size ? size : 1));
	if (!b)
		return -ENOMEM;
	b[0] = (uint8_t)(size >> 24), b[1] = (uint8_t)(size >> 16), b[2] = (uint8_t)(size >> 8), b[3] = (uint8_t)size;
	packer(m, b + 4);
	*out = b;
	*len = 4 + size;
	return 0;
}

static void pack_req(const void *m, uint8_t *b) { mmf__request__pack(m, b); }
static void pack_resp(const void *m, uint8_t *b) { mmf__response__pack(m, b); }

int frame_pack_request(const Mmf__Request *req, uint8_t **out, size_t *len)
{
	return pack(mmf__request__get_packed_size(req), pack_req, req, out, len);
}

int frame_pack_response(const Mmf__Response *resp, uint8_t **out, size_t *len)
{
	return pack(mmf__response__get_packed_size(resp), pack_resp, resp, out, len);
}

int frame_unpack_request(const uint8_t *msg, size_t len, Mmf__Request **out, uint64_t *id, char *err, size_t errlen)
{
	*out = NULL;
	*id = 0;
	Mmf__Request *r = mmf__request__unpack(NULL, len, msg);
	if (!r) {
		snprintf(err, errlen, "request of %zu bytes is not a valid mmf.Request protobuf message", len);
		return MMF__STATUS__BAD_REQUEST;
	}
	*id = r->id;
	if (r->version != MMF_PROTOCOL_VERSION) {
		snprintf(err, errlen, "protocol version %u, this daemon speaks version %d", r->version, MMF_PROTOCOL_VERSION);
		mmf__request__free_unpacked(r, NULL);
		return MMF__STATUS__BAD_VERSION;
	}
	if (r->kind_case == MMF__REQUEST__KIND__NOT_SET) {
		snprintf(err, errlen, "request %llu has no kind (expected one of embed_image, embed_text, classify, similarity, stats, health, plan, trace)",
			 (unsigned long long)r->id);
		mmf__request__free_unpacked(r, NULL);
		return MMF__STATUS__BAD_REQUEST;
	}
	*out = r;
	return MMF__STATUS__OK;
}

int frame_write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		/* send(MSG_NOSIGNAL): a peer that closed must not kill the caller
		 * with SIGPIPE; write() for descriptors that are not sockets. */
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *buf, size_t len, int started)
{
	while (len) {
		ssize_t n = read(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return started ? -ECONNRESET : -EPIPE;
		buf += n;
		len -= (size_t)n;
		started = 1;
	}
	return 0;
}

int frame_read_one(int fd, uint32_t max, uint8_t **msg, size_t *len)
{
	uint8_t h[4];
	int rc = read_all(fd, h, 4, 0);
	if (rc < 0)
		return rc;
	uint32_t l = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (l == 0 || l > (max ? max : MMF_FRAME_MAX_DEFAULT))
		return -EMSGSIZE;
	uint8_t *b = malloc(l);
	if (!b)
		return -ENOMEM;
	if ((rc = read_all(fd, b, l, 1)) < 0) {
		free(b);
		return rc;
	}
	*msg = b;
	*len = l;
	return 0;
}

const char *mmf_status_name(int status)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&mmf__status__descriptor, status);
	return v ? v->name : "UNKNOWN";
}
