/* Counters and latency histograms, lock-free. */
#include "config.h"
#include "stats.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "mmf.pb-c.h"

#define HIST_BUCKETS 120	/* 4 per octave from 1 us: up to 2^30 us, about 18 minutes */

static atomic_llong stats_counters[stat_id_max];
static atomic_llong stats_hist[stat_hist_max][HIST_BUCKETS];
static atomic_llong stats_cells[stat_rtype_max][STATS_NSTATUS];
static int64_t stats_t0;

_Static_assert(STAT_responses_shutting_down - STAT_responses_ok == MMF__STATUS__SHUTTING_DOWN,
	       "responses_* counters follow mmf.Status");
_Static_assert(STATS_NSTATUS == MMF__STATUS__SHUTTING_DOWN + 1, "STATS_STATUSES follows mmf.Status");

static const char *const rtype_names[stat_rtype_max] = {
#define STATS_NAME(name) #name,
	STATS_RTYPES(STATS_NAME)
#undef STATS_NAME
};
static const char *const status_names[STATS_NSTATUS] = {
#define STATS_NAME(name) #name,
	STATS_STATUSES(STATS_NAME)
#undef STATS_NAME
};

static const char *const stats_names[stat_id_max] = {
#define STATS_NAME(name, help) #name,
	STATS_COUNTERS(STATS_NAME)
#undef STATS_NAME
};
static const char *const hist_names[stat_hist_max] = {
#define STATS_NAME(name, help) #name,
	STATS_HISTOGRAMS(STATS_NAME)
#undef STATS_NAME
};

int64_t stats_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void stats_init(void) { stats_t0 = stats_now_ns(); }
void stats_add(stat_id id, int64_t v) { atomic_fetch_add_explicit(&stats_counters[id], v, memory_order_relaxed); }
int64_t stats_get(stat_id id) { return atomic_load_explicit(&stats_counters[id], memory_order_relaxed); }
double stats_uptime_s(void) { return (double)(stats_now_ns() - stats_t0) / 1e9; }

void stats_set(stat_id id, int64_t v) { atomic_store_explicit(&stats_counters[id], v, memory_order_relaxed); }

void stats_response(stat_rtype t, int status)
{
	if (status < 0 || status >= STATS_NSTATUS)
		status = MMF__STATUS__INTERNAL;
	if ((int)t < 0 || t >= stat_rtype_max)
		t = RT_invalid;
	stats_add((stat_id)(STAT_responses_ok + status), 1);
	atomic_fetch_add_explicit(&stats_cells[t][status], 1, memory_order_relaxed);
}

stat_rtype stats_rtype_of(int kind_case)
{
	switch (kind_case) {
	case MMF__REQUEST__KIND_EMBED_IMAGE: return RT_embed_image;
	case MMF__REQUEST__KIND_EMBED_TEXT: return RT_embed_text;
	case MMF__REQUEST__KIND_CLASSIFY: return RT_classify;
	case MMF__REQUEST__KIND_SIMILARITY: return RT_similarity;
	case MMF__REQUEST__KIND_STATS: return RT_stats;
	case MMF__REQUEST__KIND_HEALTH: return RT_health;
	case MMF__REQUEST__KIND_PLAN: return RT_plan;
	case MMF__REQUEST__KIND_TRACE: return RT_trace;
	default: return RT_invalid;
	}
}

/* Levels, not running totals. */
static int stats_is_gauge(stat_id id)
{
	return id == STAT_connections_open || id == STAT_queue_depth || id == STAT_prep_depth || id == STAT_in_flight || id == STAT_gpu_busy_pct ||
	       id == STAT_gpu_memory_mmfd_bytes || id == STAT_gpu_memory_used_bytes || id == STAT_sm_util_pct ||
	       id == STAT_sm_util_image_pct || id == STAT_sm_util_text_pct;
}

void stats_latency(stat_hist h, int64_t ns)
{
	double us = (double)ns / 1e3;
	int b = us <= 1 ? 0 : (int)(4 * log2(us));
	if (b >= HIST_BUCKETS)
		b = HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&stats_hist[h][b], 1, memory_order_relaxed);
}

static int64_t stats_hist_count(stat_hist h)
{
	int64_t n = 0;
	for (int b = 0; b < HIST_BUCKETS; b++)
		n += atomic_load_explicit(&stats_hist[h][b], memory_order_relaxed);
	return n;
}

/* The upper edge of the bucket holding the p-quantile, in ms; 0 when empty. */
double stats_percentile_ms(stat_hist h, double p)
{
	int64_t counts[HIST_BUCKETS], n = 0;
	for (int b = 0; b < HIST_BUCKETS; b++)
		n += counts[b] = atomic_load_explicit(&stats_hist[h][b], memory_order_relaxed);
	if (!n)
		return 0;
	int64_t want = (int64_t)ceil(p * (double)n), seen = 0;
	for (int b = 0; b < HIST_BUCKETS; b++)
		if ((seen += counts[b]) >= want)
			return pow(2.0, (b + 1) / 4.0) / 1e3;
	return pow(2.0, HIST_BUCKETS / 4.0) / 1e3;
}

static void stats_put(stats_value *out, int max, int *n, const char *name, const char *suffix, double v, int monotonic)
{
	if (*n >= max)
		return;
	snprintf(out[*n].name, sizeof out[*n].name, "%s%s", name, suffix);
	out[*n].value = v;
	out[*n].monotonic = monotonic;
	(*n)++;
}

int stats_snapshot(stats_value *out, int max)
{
	int n = 0;
	for (int i = 0; i < stat_id_max; i++)
		stats_put(out, max, &n, stats_names[i], "", (double)stats_get((stat_id)i), !stats_is_gauge((stat_id)i));
	int64_t batches = stats_get(STAT_batches);
	stats_put(out, max, &n, "mean_batch_size", "",
		  batches ? (double)stats_get(STAT_batch_items) / (double)batches : 0, 0);
	stats_put(out, max, &n, "uptime_s", "", stats_uptime_s(), 0);
	for (int h = 0; h < stat_hist_max; h++) {
		stats_put(out, max, &n, hist_names[h], "_count", (double)stats_hist_count((stat_hist)h), 1);
		stats_put(out, max, &n, hist_names[h], "_p50_ms", stats_percentile_ms((stat_hist)h, 0.50), 0);
		stats_put(out, max, &n, hist_names[h], "_p90_ms", stats_percentile_ms((stat_hist)h, 0.90), 0);
		stats_put(out, max, &n, hist_names[h], "_p99_ms", stats_percentile_ms((stat_hist)h, 0.99), 0);
	}
	for (int t = 0; t < stat_rtype_max; t++)
		for (int st = 0; st < STATS_NSTATUS; st++) {
			int64_t v = atomic_load_explicit(&stats_cells[t][st], memory_order_relaxed);
			char name[64];
			if (!v)
				continue;
			snprintf(name, sizeof name, "responses_by_type{type=\"%s\",status=\"%s\"}", rtype_names[t],
				 status_names[st]);
			stats_put(out, max, &n, name, "", (double)v, 1);
		}
	return n;
}

void stats_status_line(char *buf, size_t len)
{
	int64_t req = 0;
	for (int i = STAT_requests_embed_image; i <= STAT_requests_invalid; i++)
		req += stats_get((stat_id)i);
	snprintf(buf, len, "%lld requests, %lld connections, queue %lld, in flight %lld, p50 %.2f ms, p99 %.2f ms, dropped %lld",
		 (long long)req, (long long)stats_get(STAT_connections_open), (long long)stats_get(STAT_queue_depth),
		 (long long)stats_get(STAT_in_flight), stats_percentile_ms(HIST_latency_total, 0.5),
		 stats_percentile_ms(HIST_latency_total, 0.99), (long long)stats_get(STAT_responses_dropped));
}
