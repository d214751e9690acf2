/* fuzz_frame: libFuzzer target for the daemon's side of the framing
 * (proto/frame.c): arbitrary bytes are fed to a frame_reader in chunks
 * whose sizes come from the input itself, and every complete frame goes
 * to frame_unpack_request. Besides what ASan/UBSan catch, it aborts when
 * the reader or the unpacker breaks a promise of frame.h.
 *
 * Build: ./configure CC=clang --enable-fuzz && make tests/fuzz/fuzz_frame
 * Run on a copy of the seed corpus (libFuzzer adds to the directory):
 *   cp -r tests/fuzz/corpus_frame /tmp/ff && tests/fuzz/fuzz_frame -max_total_time=120 /tmp/ff
 * Seeds: the first byte is the chunk size less 1, then the stream; valid_*
 * are well-formed requests of each kind, bad_* malformed frames. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small maximum, so that over-long lengths are reached often. */
#define FUZZ_FRAME_MAX 4096

static void check_request(const uint8_t *msg, size_t len)
{
	Mmf__Request *req = (Mmf__Request *)1;
	uint64_t id = 1;
	char err[256];
	err[0] = 0;
	int st = frame_unpack_request(msg, len, &req, &id, err, sizeof err);
	if (st == MMF__STATUS__OK) {
		if (!req || req->version != MMF_PROTOCOL_VERSION || req->kind_case == MMF__REQUEST__KIND__NOT_SET ||
		    req->id != id)
			abort();
		/* The daemon answers with the id; make sure it re-encodes. */
		uint8_t *out;
		size_t olen;
		if (frame_pack_request(req, &out, &olen) == 0)
			free(out);
		mmf__request__free_unpacked(req, NULL);
	} else {
		if (req || (st != MMF__STATUS__BAD_REQUEST && st != MMF__STATUS__BAD_VERSION) || !err[0] ||
		    strlen(err) >= sizeof err)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the chunk size (1..256); the rest is the stream. */
	if (size < 1)
		return 0;
	size_t chunk = (size_t)data[0] + 1;
	data++, size--;
	frame_reader r;
	frame_reader_init(&r, FUZZ_FRAME_MAX);
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		size_t used;
		const uint8_t *msg;
		size_t len;
		int rc = frame_reader_feed(&r, data + off, n, &used, &msg, &len);
		if (used > n)
			abort();
		off += used;
		if (rc == -EMSGSIZE) {
			if (len != 0 && len <= FUZZ_FRAME_MAX)
				abort();
			break;	/* the daemon answers TOO_LARGE and closes */
		}
		if (rc == 1) {
			if (len == 0 || len > FUZZ_FRAME_MAX)
				abort();
			check_request(msg, len);
		} else if (rc != 0 || used != n) {
			abort();	/* 0 means every byte was taken */
		}
	}
	frame_reader_free(&r);
	return 0;
}
