/* libmmf: a blocking client for mmfd, the mmf CLIP inference daemon
 * (docs/PROTOCOL.md describes the wire protocol it speaks).
 *
 * Each call sends one request and waits for its one response. Every call
 * that can fail returns 0 on success, or a nonzero code that is also put in
 * err->status (err may be NULL):
 *   > 0  a status the daemon answered (MMF_STATUS_*), with the daemon's
 *        message in err->msg;
 *   < 0  -errno for local and transport failures (-ENOENT: no socket,
 *        -EPIPE / -ECONNRESET: the daemon closed the connection, -EPROTO:
 *        the daemon's answer did not fit the protocol), with a message
 *        naming what failed.
 * After a transport or protocol failure (< 0, other than argument errors)
 * the connection is unusable and further calls fail with -ENOTCONN; close
 * it and connect again. A status from the daemon leaves it usable.
 *
 * Threads: a connection carries one request at a time. Do not share an
 * mmf_client between threads without a lock around each call; separate
 * connections are independent, and the daemon batches work across them. */
#ifndef MMF_H
#define MMF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMF_SOCKET_DEFAULT "/run/mmf/mmfd.sock"
#define MMF_SOCKET_ENV "MMF_SOCKET"

/* The numbers of mmf.Status in proto/mmf.proto. */
enum {
	MMF_STATUS_OK = 0,
	MMF_STATUS_BAD_REQUEST = 1,
	MMF_STATUS_UNSUPPORTED = 2,
	MMF_STATUS_QUEUE_FULL = 3,
	MMF_STATUS_DEADLINE_EXCEEDED = 4,
	MMF_STATUS_TOO_LARGE = 5,
	MMF_STATUS_BAD_VERSION = 6,
	MMF_STATUS_INTERNAL = 7,
	MMF_STATUS_SHUTTING_DOWN = 8,
};

typedef struct mmf_client mmf_client;

typedef struct mmf_error {
	int status;	/* MMF_STATUS_* from the daemon, or -errno */
	char msg[256];
} mmf_error;

/* "OK", "BAD_REQUEST", ... for a status; "UNKNOWN" for anything else. */
const char *mmf_status_name(int status);

/* Connects to socket_path; NULL means $MMF_SOCKET, or MMF_SOCKET_DEFAULT
 * when that is unset or empty. Returns NULL with err set on failure. */
mmf_client *mmf_connect(const char *socket_path, mmf_error *err);
void mmf_close(mmf_client *c);
/* The socket path this client connected to. */
const char *mmf_client_path(const mmf_client *c);
/* Deadline sent with each later request, in ms; 0 (the initial value)
 * lets the daemon use its default. */
void mmf_set_deadline(mmf_client *c, uint32_t ms);

/* An image: raw RGB when width and height are nonzero (data holds exactly
 * width*height*3 bytes, rows top to bottom, R,G,B interleaved), otherwise
 * the bytes of a JPEG or PNG file. The caller owns data. */
typedef struct mmf_image {
	const uint8_t *data;
	size_t len;
	uint32_t width, height;
} mmf_image;

/* A text: a UTF-8 string when utf8 is non-NULL, otherwise n token ids as
 * open_clip's tokenizer makes them (SOT ... EOT). */
typedef struct mmf_text {
	const char *utf8;
	const int32_t *ids;
	size_t n;
} mmf_text;

typedef struct mmf_health_info {
	char status[32];	/* "ok" or "draining" */
	char model[256];
	char device[128];
	double uptime_s;
} mmf_health_info;

int mmf_health(mmf_client *c, mmf_health_info *out, mmf_error *err);

typedef struct mmf_counter {
	char *name;
	double value;
	int monotonic;	/* only ever grows (a counter); else a level (a gauge) */
} mmf_counter;

/* All the daemon's counters in its order, in a malloc'd array that
 * mmf_counters_free releases. */
int mmf_stats(mmf_client *c, mmf_counter **out, size_t *n, mmf_error *err);
void mmf_counters_free(mmf_counter *v, size_t n);

/* Embeddings are L2-normalised. emb has room for dim_max floats; *dim gets
 * the model's embedding size, and a size over dim_max is an error
 * (-ENOBUFS, with *dim set so the caller can retry with a larger buffer). */
int mmf_embed_text(mmf_client *c, const char *utf8, float *emb, size_t dim_max, size_t *dim, mmf_error *err);
int mmf_embed_text_tokens(mmf_client *c, const int32_t *ids, size_t n, float *emb, size_t dim_max, size_t *dim,
			  mmf_error *err);
int mmf_embed_image(mmf_client *c, const mmf_image *img, float *emb, size_t dim_max, size_t *dim, mmf_error *err);
int mmf_embed_image_rgb(mmf_client *c, const uint8_t *rgb, uint32_t w, uint32_t h, float *emb, size_t dim_max,
			size_t *dim, mmf_error *err);
/* Sends the file's bytes as an encoded image. */
int mmf_embed_image_file(mmf_client *c, const char *path, float *emb, size_t dim_max, size_t *dim, mmf_error *err);

/* One label's probability; label indexes the labels passed in. */
typedef struct mmf_prob {
	size_t label;
	float p;
} mmf_prob;

/* Zero-shot classification of img over nlabels labels. probs has room for
 * nlabels entries and is filled most likely first. */
int mmf_classify(mmf_client *c, const mmf_image *img, const char *const *labels, size_t nlabels, mmf_prob *probs,
		 mmf_error *err);

/* Logits of every image against every text: logits has room for
 * nimages*ntexts floats, row-major (image i, text j at i*ntexts + j). */
int mmf_similarity(mmf_client *c, const mmf_image *images, size_t nimages, const mmf_text *texts, size_t ntexts,
		   float *logits, mmf_error *err);

/* The daemon's execution plan as JSON, in a malloc'd string (free()). */
int mmf_plan(mmf_client *c, char **json, mmf_error *err);

/* Traces every engine step for `seconds` (1..60; the call blocks that
 * long) and returns the per-block timeline as Chrome trace-event JSON in a
 * malloc'd string (free()). CUDA daemons only (else MMF_UNSUPPORTED).
 * steps, records and truncated may be NULL. */
typedef struct mmf_trace_info {
	unsigned steps;			/* engine steps traced */
	unsigned long long records;	/* block records */
	int truncated;			/* the record limit ended the trace early */
} mmf_trace_info;
int mmf_trace(mmf_client *c, unsigned seconds, char **json, mmf_trace_info *info, mmf_error *err);

#ifdef __cplusplus
}
#endif

#endif
