/* stats: the daemon's counters, declared once in STATS_COUNTERS and
 * expanded for the storage, the Stats response and the systemd STATUS
 * line. Counters and gauges are atomics, so the loop thread and the worker
 * update them without a lock. Latencies go to fixed log-scale histograms
 * (four buckets per octave from 1 us) that give p50/p90/p99. */
#ifndef MMFD_STATS_H
#define MMFD_STATS_H

#include <stddef.h>
#include <stdint.h>

/* X(name, help); "requests_*" by type, then "responses_*" by status in the
 * order of mmf.Status (stats_response relies on it). */
#define STATS_COUNTERS(X)                                                              \
	X(requests_embed_image, "EmbedImage requests")                                  \
	X(requests_embed_text, "EmbedText requests")                                    \
	X(requests_classify, "Classify requests")                                       \
	X(requests_similarity, "Similarity requests")                                   \
	X(requests_stats, "Stats requests")                                             \
	X(requests_health, "Health requests")                                           \
	X(requests_plan, "Plan requests")                                               \
	X(requests_trace, "Trace requests")                                             \
	X(requests_invalid, "frames that were not a valid request")                     \
	X(responses_ok, "responses with status OK")                                     \
	X(responses_bad_request, "responses with status BAD_REQUEST")                   \
	X(responses_unsupported, "responses with status UNSUPPORTED")                   \
	X(responses_queue_full, "responses with status QUEUE_FULL")                     \
	X(responses_deadline_exceeded, "responses with status DEADLINE_EXCEEDED")       \
	X(responses_too_large, "responses with status TOO_LARGE")                       \
	X(responses_bad_version, "responses with status BAD_VERSION")                   \
	X(responses_internal, "responses with status INTERNAL")                         \
	X(responses_shutting_down, "responses with status SHUTTING_DOWN")               \
	X(responses_dropped, "responses discarded because the client had gone")         \
	X(bytes_in, "bytes read from clients")                                          \
	X(bytes_out, "response bytes queued to clients")                                \
	X(connections_open, "connections open now")                                     \
	X(connections_total, "connections accepted")                                    \
	X(connections_stalled, "connections dropped for not reading their responses")   \
	X(frames_truncated, "connections closed in the middle of a frame")              \
	X(queue_depth, "requests waiting for the worker")                               \
	X(prep_depth, "requests waiting for image decoding or tokenizing")             \
	X(in_flight, "requests the worker is computing")                                \
	X(batches, "engine batches run")                                                \
	X(batch_items, "images and texts embedded")                                     \
	X(text_cache_hits, "texts (labels, prompts) answered from the text cache")     \
	X(text_cache_misses, "texts embedded and added to the text cache")             \
	X(steps_fused, "engine steps that ran image and text work as fused kernels")    \
	X(steps_unfused, "engine steps that ran the towers' own kernels")               \
	X(gpu_busy_us, "GPU time of the engine steps (CUDA events), microseconds")      \
	X(gpu_busy_pct, "GPU time over wall time in the last second, percent")          \
	X(gpu_memory_mmfd_bytes, "device memory mmfd holds: weights and activations")   \
	X(gpu_memory_used_bytes, "device memory in use on the GPU, all processes")                 \
	X(sm_util_samples, "engine steps traced for SM utilisation (one per --util-every items)")  \
	X(sm_util_pct, "SM utilisation of the last traced step: SM-time covered by blocks, percent") \
	X(sm_util_image_pct, "the image tower's share of it, percent")                          \
	X(sm_util_text_pct, "the text tower's share of it, percent")                            \
	X(sm_util_sum_pct, "sum of sm_util_pct over the samples (mean = sum / samples)")

/* Request types (the Request oneof, plus frames that were not a request)
 * and response statuses (mmf.Status, in its order): every response is
 * counted in one (type, status) cell. */
#define STATS_RTYPES(X) X(embed_image) X(embed_text) X(classify) X(similarity) X(stats) X(health) X(plan) X(trace) X(invalid)
#define STATS_STATUSES(X)                                                                           \
	X(ok) X(bad_request) X(unsupported) X(queue_full) X(deadline_exceeded) X(too_large) X(bad_version) \
	X(internal) X(shutting_down)

typedef enum stat_rtype {
#define STATS_ENUM(name) RT_##name,
	STATS_RTYPES(STATS_ENUM)
#undef STATS_ENUM
	stat_rtype_max
} stat_rtype;

#define STATS_COUNT1(name) +1
#define STATS_NSTATUS (0 STATS_STATUSES(STATS_COUNT1))

#define STATS_HISTOGRAMS(X)                                                            \
	X(latency_prep, "time a pool thread spent decoding and tokenizing a request")   \
	X(latency_queue, "time from arrival to the worker taking the request")          \
	X(latency_compute, "time the worker spent on the request's batch")              \
	X(latency_total, "time from arrival to the response being queued")

typedef enum stat_id {
#define STATS_ENUM(name, help) STAT_##name,
	STATS_COUNTERS(STATS_ENUM)
#undef STATS_ENUM
	stat_id_max
} stat_id;

typedef enum stat_hist {
#define STATS_ENUM(name, help) HIST_##name,
	STATS_HISTOGRAMS(STATS_ENUM)
#undef STATS_ENUM
	stat_hist_max
} stat_hist;

typedef struct stats_value {
	char name[64];
	double value;
	int monotonic;	/* a running total, not a level */
} stats_value;

/* Every value stats_snapshot returns: the counters, mean_batch_size,
 * uptime_s, count/p50/p90/p99 (ms) per histogram, and the (type, status)
 * cells that are not zero, named responses_by_type{type="x",status="y"}. */
#define STATS_VALUES_MAX (stat_id_max + 2 + 4 * stat_hist_max + stat_rtype_max * STATS_NSTATUS)

void stats_init(void);
void stats_add(stat_id id, int64_t v);
int64_t stats_get(stat_id id);
/* One response of request type t with mmf.Status `status`. */
void stats_response(stat_rtype t, int status);
/* The request type of a Request's kind_case (RT_invalid for unknown). */
stat_rtype stats_rtype_of(int kind_case);
/* Gauge: sets a level rather than adding. */
void stats_set(stat_id id, int64_t v);
void stats_latency(stat_hist h, int64_t ns);
double stats_uptime_s(void);
double stats_percentile_ms(stat_hist h, double p);
int stats_snapshot(stats_value *out, int max);
/* The one-line summary for the systemd STATUS= field. */
void stats_status_line(char *buf, size_t len);

int64_t stats_now_ns(void);	/* CLOCK_MONOTONIC */

#endif
