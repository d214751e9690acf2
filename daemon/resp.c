/* Response framing and counting. */
#include "config.h"
#include "resp.h"

#include <errno.h>

#include "frame.h"
#include "stats.h"

int resp_pack(const Mmf__Response *r, stat_rtype t, uint8_t **out, size_t *len)
{
	int rc = frame_pack_response(r, out, len);
	if (rc == 0)
		stats_response(t, r->status);
	return rc;
}

int resp_pack_status(uint64_t id, stat_rtype t, int status, const char *msg, uint8_t **out, size_t *len)
{
	Mmf__Response r = MMF__RESPONSE__INIT;
	r.id = id;
	r.status = (Mmf__Status)status;
	if (msg)
		r.error = (char *)msg;
	return resp_pack(&r, t, out, len);
}
