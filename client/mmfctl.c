/* mmfctl: the command line for mmfd, over libmmf. Exit status: 0 ok,
 * 1 an error (a status from the daemon, the connection, an input file),
 * 2 a usage error. */
#include "config.h"
#include "engine/sortcmp.h"
#include "mmf.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_ERR 1
#define EXIT_USAGE 2
#define EMB_MAX 8192

static const char *opt_socket;
static int opt_json;

static const char usage_main[] =
	"usage: mmfctl [--socket PATH] [--json] COMMAND [OPTIONS] [ARGS]\n"
	"\n"
	"Talks to mmfd, the mmf CLIP inference daemon.\n"
	"\n"
	"  --socket PATH   the daemon's socket (default: $MMF_SOCKET, else " MMF_SOCKET_DEFAULT ")\n"
	"  --json          print results as JSON (every command)\n"
	"  --help          this text; COMMAND --help describes a command\n"
	"\n"
	"commands:\n"
	"  health        the daemon's status, model, device and uptime\n"
	"  stats         the daemon's counters (--prometheus, --watch SECONDS)\n"
	"  embed-text    embed a text or a list of token ids\n"
	"  embed-image   embed an image file or raw RGB\n"
	"  classify      zero-shot classification of an image over labels\n"
	"  similarity    logits of images against texts\n"
	"  plan          the daemon's execution plan (JSON)\n"
	"  trace         a per-SM timeline of the engine steps of the next N seconds\n"
	"  bench         a load generator: throughput and latency percentiles\n"
	"\n"
	"Exit status: 0 ok, 1 an error (the daemon's, the connection's or a file's), 2 usage.\n";

static const char usage_health[] = "usage: mmfctl health [--json]\n"
				   "Prints the daemon's status (ok or draining), model, device and uptime.\n";
static const char usage_stats[] =
	"usage: mmfctl stats [--json | --prometheus] [--watch SECONDS]\n"
	"Prints the daemon's counters as a table.\n"
	"  --json            one JSON object (one per line with --watch)\n"
	"  --prometheus      Prometheus text exposition format, names prefixed mmf_;\n"
	"                    running totals are counters (named *_total), levels gauges\n"
	"  --watch SECONDS   print again every SECONDS until interrupted\n";
static const char usage_embed_text[] =
	"usage: mmfctl embed-text [--out FILE] (--tokens IDS | TEXT)\n"
	"Embeds a text (the daemon tokenizes it) or token ids (IDS: comma-separated,\n"
	"e.g. 49406,320,1125,49407). Prints the L2-normalised embedding.\n"
	"  --out FILE   write the embedding to FILE as raw float32 (host byte order)\n";
static const char usage_embed_image[] =
	"usage: mmfctl embed-image [--out FILE] (IMAGE | --raw FILE --width W --height H)\n"
	"Embeds an image: IMAGE is a JPEG or PNG file sent as it is; --raw sends\n"
	"FILE as W x H 8-bit RGB (W*H*3 bytes, rows top to bottom).\n"
	"  --out FILE   write the embedding to FILE as raw float32 (host byte order)\n";
static const char usage_classify[] =
	"usage: mmfctl classify --labels \"a,b,c\" (IMAGE | --raw FILE --width W --height H)\n"
	"Prints each label's probability, most likely first.\n";
static const char usage_similarity[] =
	"usage: mmfctl similarity [--image FILE]... [--raw FILE --width W --height H]...\n"
	"                         [--text TEXT]... [--tokens IDS]...\n"
	"Prints the logits of every image (rows, in the order given) against every\n"
	"text (columns). The n-th --raw goes with the n-th --width and --height.\n";
static const char usage_plan[] = "usage: mmfctl plan [--json]\n"
				 "Prints the daemon's execution plan as JSON.\n";
static const char usage_trace[] =
	"usage: mmfctl trace [--seconds N] OUT.json\n"
	"Asks the daemon (--device cuda) to trace every engine step for N seconds\n"
	"(1..60, default 5) and writes their per-block timeline to OUT.json as Chrome\n"
	"trace-event JSON (open it in Perfetto: one row per SM, one of launches).\n"
	"Traced steps run their kernels one by one, not as CUDA graphs: slower.\n";
static const char usage_bench[] =
	"usage: mmfctl bench [--clients N] [--requests M] [--mix T:I] [--image-size S] [--tokens IDS]\n"
	"Sends M requests (total, default 1000) over N connections (default 4), one\n"
	"request at a time on each, T text requests (token ids, default\n"
	"49406,320,1125,49407) for every I image requests (raw S x S RGB, default\n"
	"224). --mix defaults to 1:1. Prints a progress line on stderr, then the\n"
	"throughput and the latency p50/p90/p99.\n";

static int usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mmfctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fputs(usage, stderr);
	return EXIT_USAGE;
}

static int report(const mmf_error *e)
{
	if (e->status > 0)
		fprintf(stderr, "mmfctl: %s: %s\n", mmf_status_name(e->status), e->msg);
	else
		fprintf(stderr, "mmfctl: %s\n", e->msg);
	return EXIT_ERR;
}

static mmf_client *connect_or_report(void)
{
	mmf_error e;
	mmf_client *c = mmf_connect(opt_socket, &e);
	if (!c)
		report(&e);
	return c;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* JSON has no NaN or infinity. */
static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.9g", v);
	else
		fputs("null", f);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v > UINT32_MAX || v < lo)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "49406,320,1125,49407" into a malloc'd array. Returns 0, or -1 with a
 * message in why. */
static int parse_tokens(const char *s, int32_t **out, size_t *n, char *why, size_t whylen)
{
	size_t cap = 1;
	for (const char *p = s; *p; p++)
		cap += *p == ',';
	int32_t *v = malloc(cap * sizeof *v);
	if (!v) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	size_t k = 0;
	const char *p = s;
	for (;;) {
		char *end;
		errno = 0;
		long t = strtol(p, &end, 10);
		if (end == p || errno || t < INT32_MIN || t > INT32_MAX || (*end && *end != ',')) {
			snprintf(why, whylen, "token %zu of '%s' is not a 32-bit integer", k + 1, s);
			free(v);
			return -1;
		}
		v[k++] = (int32_t)t;
		if (!*end)
			break;
		p = end + 1;
	}
	*out = v;
	*n = k;
	return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "mmfctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = malloc(cap);
	for (;;) {
		if (!b) {
			fprintf(stderr, "mmfctl: %s: out of memory\n", path);
			fclose(f);
			return -1;
		}
		n += fread(b + n, 1, cap - n, f);
		if (n < cap)
			break;
		uint8_t *nb = realloc(b, cap *= 2);
		if (!nb)
			free(b);
		b = nb;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "mmfctl: %s: read error\n", path);
		free(b);
		return -1;
	}
	*out = b;
	*len = n;
	return 0;
}

/* Loads a raw RGB file of w x h; checks its size here so the message names
 * the file. */
static int load_raw(const char *path, uint32_t w, uint32_t h, mmf_image *img)
{
	uint8_t *b;
	size_t n;
	if (read_file(path, &b, &n) < 0)
		return -1;
	uint64_t want = (uint64_t)w * h * 3;
	if (n != want) {
		fprintf(stderr, "mmfctl: %s is %zu bytes, a %ux%u RGB image is %llu\n", path, n, w, h,
			(unsigned long long)want);
		free(b);
		return -1;
	}
	*img = (mmf_image){.data = b, .len = n, .width = w, .height = h};
	return 0;
}

/* Options every subcommand takes, and its --help. */
enum { OPT_HELP = 0x100, OPT_JSON, OPT_SOCKET, OPT_TOKENS, OPT_OUT, OPT_RAW, OPT_WIDTH, OPT_HEIGHT, OPT_LABELS,
       OPT_IMAGE, OPT_TEXT, OPT_PROM, OPT_WATCH, OPT_CLIENTS, OPT_REQUESTS, OPT_MIX, OPT_IMAGE_SIZE };

#define COMMON_OPTS                                                                                         \
	{"help", no_argument, NULL, OPT_HELP}, {"json", no_argument, NULL, OPT_JSON},                       \
	{"socket", required_argument, NULL, OPT_SOCKET}

/* Handles the common options; returns -1 to go on, else an exit status. */
static int common_opt(int o, const char *usage)
{
	switch (o) {
	case OPT_HELP:
		fputs(usage, stdout);
		return 0;
	case OPT_JSON:
		opt_json = 1;
		return -1;
	case OPT_SOCKET:
		opt_socket = optarg;
		return -1;
	default:	/* getopt has said what was wrong */
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
}

static int cmd_health(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS, {0}};
	int o, rc;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1)
		if ((rc = common_opt(o, usage_health)) >= 0)
			return rc;
	if (optind < argc)
		return usage_error(usage_health, "health takes no arguments, got '%s'", argv[optind]);
	mmf_client *c = connect_or_report();
	if (!c)
		return EXIT_ERR;
	mmf_health_info h;
	mmf_error e;
	rc = mmf_health(c, &h, &e);
	mmf_close(c);
	if (rc)
		return report(&e);
	if (opt_json) {
		fputs("{\"status\":", stdout);
		json_str(stdout, h.status);
		fputs(",\"model\":", stdout);
		json_str(stdout, h.model);
		fputs(",\"device\":", stdout);
		json_str(stdout, h.device);
		fputs(",\"uptime_s\":", stdout);
		json_num(stdout, h.uptime_s);
		fputs("}\n", stdout);
	} else {
		printf("status  %s\nmodel   %s\ndevice  %s\nuptime  %.1f s\n", h.status, h.model, h.device, h.uptime_s);
	}
	return 0;
}

static void print_value(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		printf("%.0f", v);
	else
		printf("%.6g", v);
}

/* A Prometheus metric name: mmf_ and the counter's name with every
 * character outside [a-zA-Z0-9_:] made '_'. */
static void prom_name(const char *s, char *out, size_t n)
{
	size_t k = (size_t)snprintf(out, n, "mmf_");
	for (; *s && k + 1 < n; s++)
		out[k++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
					   *s == '_' || *s == ':'
				   ? *s
				   : '_';
	out[k] = 0;
}

static void print_stats(const mmf_counter *v, size_t n, int prom)
{
	if (opt_json) {
		fputc('{', stdout);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', stdout);
			json_str(stdout, v[i].name);
			fputc(':', stdout);
			json_num(stdout, v[i].value);
		}
		fputs("}\n", stdout);
	} else if (prom) {
		char prev[256] = "";
		for (size_t i = 0; i < n; i++) {
			/* name{labels}: the labels (the daemon's, already in
			 * exposition syntax) follow the sanitised family name */
			char name[256], base[256];
			const char *lb = strchr(v[i].name, '{');
			snprintf(base, sizeof base, "%.*s", lb ? (int)(lb - v[i].name) : (int)strlen(v[i].name), v[i].name);
			prom_name(base, name, sizeof name);
			size_t l = strlen(name);
			/* Prometheus counters end in _total. */
			if (v[i].monotonic && !(l > 6 && !strcmp(name + l - 6, "_total")) && l + 7 < sizeof name)
				strcat(name, "_total");
			if (strcmp(name, prev))	/* one TYPE line per family */
				printf("# TYPE %s %s\n", name, v[i].monotonic ? "counter" : "gauge");
			snprintf(prev, sizeof prev, "%s", name);
			printf("%s%s ", name, lb ? lb : "");
			if (isnan(v[i].value))
				fputs("NaN", stdout);
			else if (isinf(v[i].value))
				fputs(v[i].value > 0 ? "+Inf" : "-Inf", stdout);
			else
				printf("%.17g", v[i].value);
			fputc('\n', stdout);
		}
	} else {
		int w = 0;
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(v[i].name) > w)
				w = (int)strlen(v[i].name);
		for (size_t i = 0; i < n; i++) {
			printf("%-*s  ", w, v[i].name);
			print_value(v[i].value);
			fputc('\n', stdout);
		}
	}
	fflush(stdout);
}

static int cmd_stats(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS,
					   {"prometheus", no_argument, NULL, OPT_PROM},
					   {"watch", required_argument, NULL, OPT_WATCH},
					   {0}};
	int o, rc, prom = 0;
	double watch = 0;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == OPT_PROM) {
			prom = 1;
		} else if (o == OPT_WATCH) {
			char *end;
			watch = strtod(optarg, &end);
			if (end == optarg || *end || !(watch > 0) || watch > 86400)
				return usage_error(usage_stats, "--watch wants a number of seconds over 0, got '%s'",
						   optarg);
		} else if ((rc = common_opt(o, usage_stats)) >= 0) {
			return rc;
		}
	}
	if (optind < argc)
		return usage_error(usage_stats, "stats takes no arguments, got '%s'", argv[optind]);
	if (prom && opt_json)
		return usage_error(usage_stats, "--json and --prometheus are two formats; choose one");
	mmf_client *c = connect_or_report();
	if (!c)
		return EXIT_ERR;
	int clear = watch > 0 && !opt_json && !prom && isatty(STDOUT_FILENO);
	for (;;) {
		mmf_counter *v;
		size_t n;
		mmf_error e;
		if ((rc = mmf_stats(c, &v, &n, &e))) {
			mmf_close(c);
			return report(&e);
		}
		if (clear)
			fputs("\033[H\033[2J", stdout);
		print_stats(v, n, prom);
		mmf_counters_free(v, n);
		if (!(watch > 0))
			break;
		if (prom)
			fputc('\n', stdout);
		struct timespec ts = {.tv_sec = (time_t)watch, .tv_nsec = (long)((watch - floor(watch)) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	mmf_close(c);
	return 0;
}

/* Prints or writes an embedding. */
static int emit_embedding(const float *emb, size_t dim, const char *out)
{
	if (out) {
		FILE *f = fopen(out, "wb");
		if (!f || fwrite(emb, sizeof *emb, dim, f) != dim || fclose(f)) {
			fprintf(stderr, "mmfctl: %s: %s\n", out, strerror(errno));
			return EXIT_ERR;
		}
		if (opt_json) {
			printf("{\"dim\":%zu,\"out\":", dim);
			json_str(stdout, out);
			fputs("}\n", stdout);
		} else {
			printf("%zu float32 values written to %s\n", dim, out);
		}
		return 0;
	}
	if (opt_json)
		printf("{\"dim\":%zu,\"embedding\":[", dim);
	for (size_t i = 0; i < dim; i++) {
		if (i)
			fputc(opt_json ? ',' : ' ', stdout);
		if (opt_json)
			json_num(stdout, emb[i]);
		else
			printf("%.7g", emb[i]);
	}
	fputs(opt_json ? "]}\n" : "\n", stdout);
	return 0;
}

static int cmd_embed_text(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS,
					   {"tokens", required_argument, NULL, OPT_TOKENS},
					   {"out", required_argument, NULL, OPT_OUT},
					   {0}};
	int o, rc;
	const char *tokens = NULL, *out = NULL;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == OPT_TOKENS)
			tokens = optarg;
		else if (o == OPT_OUT)
			out = optarg;
		else if ((rc = common_opt(o, usage_embed_text)) >= 0)
			return rc;
	}
	int npos = argc - optind;
	if (tokens ? npos != 0 : npos != 1)
		return usage_error(usage_embed_text, "embed-text wants either --tokens IDS or one TEXT argument");
	int32_t *ids = NULL;
	size_t nids = 0;
	char why[256];
	if (tokens && parse_tokens(tokens, &ids, &nids, why, sizeof why) < 0)
		return usage_error(usage_embed_text, "--tokens: %s", why);
	mmf_client *c = connect_or_report();
	if (!c) {
		free(ids);
		return EXIT_ERR;
	}
	static float emb[EMB_MAX];
	size_t dim;
	mmf_error e;
	rc = tokens ? mmf_embed_text_tokens(c, ids, nids, emb, EMB_MAX, &dim, &e)
		    : mmf_embed_text(c, argv[optind], emb, EMB_MAX, &dim, &e);
	mmf_close(c);
	free(ids);
	if (rc)
		return report(&e);
	return emit_embedding(emb, dim, out);
}

/* IMAGE | --raw FILE --width W --height H, shared by embed-image and classify. */
struct image_args {
	const char *raw;
	uint32_t w, h;
	int have_w, have_h;
};

static int image_opt(int o, struct image_args *a, const char *usage)
{
	if (o == OPT_RAW) {
		a->raw = optarg;
	} else if (o == OPT_WIDTH || o == OPT_HEIGHT) {
		uint32_t v;
		if (parse_u32(optarg, 1, &v) < 0)
			return usage_error(usage, "--%s wants a positive integer, got '%s'", o == OPT_WIDTH ? "width" : "height",
					   optarg);
		*(o == OPT_WIDTH ? &a->w : &a->h) = v;
		*(o == OPT_WIDTH ? &a->have_w : &a->have_h) = 1;
	} else {
		return common_opt(o, usage);
	}
	return -1;
}

/* Checks the image arguments (path: the positional IMAGE, or NULL) and
 * loads a raw image. Returns -1 to go on (img set), else an exit status. */
static int image_load(const struct image_args *a, const char *path, const char *usage, mmf_image *img)
{
	if (a->raw && path)
		return usage_error(usage, "give either IMAGE or --raw FILE, not both");
	if (!a->raw && !path)
		return usage_error(usage, "no image: give IMAGE or --raw FILE --width W --height H");
	if (!a->raw && (a->have_w || a->have_h))
		return usage_error(usage, "--width and --height go with --raw");
	if (a->raw && !(a->have_w && a->have_h))
		return usage_error(usage, "--raw %s needs --width and --height", a->raw);
	*img = (mmf_image){0};
	if (a->raw)
		return load_raw(a->raw, a->w, a->h, img) < 0 ? EXIT_ERR : -1;
	uint8_t *b;
	size_t n;
	if (read_file(path, &b, &n) < 0)
		return EXIT_ERR;
	img->data = b;
	img->len = n;
	return -1;
}

#define IMAGE_OPTS                                                                                          \
	{"raw", required_argument, NULL, OPT_RAW}, {"width", required_argument, NULL, OPT_WIDTH},           \
	{"height", required_argument, NULL, OPT_HEIGHT}

static int cmd_embed_image(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS, IMAGE_OPTS, {"out", required_argument, NULL, OPT_OUT}, {0}};
	struct image_args a = {0};
	const char *out = NULL;
	int o, rc;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == OPT_OUT)
			out = optarg;
		else if ((rc = image_opt(o, &a, usage_embed_image)) >= 0)
			return rc;
	}
	if (argc - optind > 1)
		return usage_error(usage_embed_image, "embed-image takes one IMAGE, got %d arguments", argc - optind);
	mmf_image img;
	if ((rc = image_load(&a, optind < argc ? argv[optind] : NULL, usage_embed_image, &img)) >= 0)
		return rc;
	mmf_client *c = connect_or_report();
	if (!c) {
		free((void *)img.data);
		return EXIT_ERR;
	}
	static float emb[EMB_MAX];
	size_t dim;
	mmf_error e;
	rc = mmf_embed_image(c, &img, emb, EMB_MAX, &dim, &e);
	mmf_close(c);
	free((void *)img.data);
	if (rc)
		return report(&e);
	return emit_embedding(emb, dim, out);
}

/* Splits "a,b,c" in place into a malloc'd array of pointers into s. */
static char **split_labels(char *s, size_t *n)
{
	size_t k = 1;
	for (const char *p = s; *p; p++)
		k += *p == ',';
	char **v = malloc(k * sizeof *v);
	if (!v)
		return NULL;
	*n = 0;
	for (char *p = s;;) {
		v[(*n)++] = p;
		char *comma = strchr(p, ',');
		if (!comma)
			break;
		*comma = 0;
		p = comma + 1;
	}
	return v;
}

static int cmd_classify(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS, IMAGE_OPTS, {"labels", required_argument, NULL, OPT_LABELS}, {0}};
	struct image_args a = {0};
	char *labels_arg = NULL;
	int o, rc;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == OPT_LABELS)
			labels_arg = optarg;
		else if ((rc = image_opt(o, &a, usage_classify)) >= 0)
			return rc;
	}
	if (!labels_arg || !*labels_arg)
		return usage_error(usage_classify, "classify needs --labels \"a,b,c\"");
	if (argc - optind > 1)
		return usage_error(usage_classify, "classify takes one IMAGE, got %d arguments", argc - optind);
	mmf_image img;
	if ((rc = image_load(&a, optind < argc ? argv[optind] : NULL, usage_classify, &img)) >= 0)
		return rc;
	size_t n;
	char **labels = split_labels(labels_arg, &n);
	mmf_prob *probs = labels ? malloc(n * sizeof *probs) : NULL;
	mmf_client *c = probs ? connect_or_report() : NULL;
	if (!c) {
		if (!probs)
			fprintf(stderr, "mmfctl: out of memory\n");
		rc = EXIT_ERR;
		goto out;
	}
	mmf_error e;
	rc = mmf_classify(c, &img, (const char *const *)labels, n, probs, &e);
	mmf_close(c);
	if (rc) {
		rc = report(&e);
		goto out;
	}
	if (opt_json)
		fputc('[', stdout);
	for (size_t i = 0; i < n; i++) {
		if (opt_json) {
			fputs(i ? ",{\"label\":" : "{\"label\":", stdout);
			json_str(stdout, labels[probs[i].label]);
			fputs(",\"p\":", stdout);
			json_num(stdout, probs[i].p);
			fputc('}', stdout);
		} else {
			printf("%.4f  %s\n", probs[i].p, labels[probs[i].label]);
		}
	}
	if (opt_json)
		fputs("]\n", stdout);
out:
	free(probs);
	free(labels);
	free((void *)img.data);
	return rc;
}

static int cmd_similarity(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS,
					   IMAGE_OPTS,
					   {"image", required_argument, NULL, OPT_IMAGE},
					   {"text", required_argument, NULL, OPT_TEXT},
					   {"tokens", required_argument, NULL, OPT_TOKENS},
					   {0}};
	/* Images and texts in the order given; raw ones take the n-th width
	 * and height. */
	int ni = 0, nt = 0, nraw = 0, nw = 0, nh = 0, o, rc = EXIT_ERR;
	const char **ipath = calloc((size_t)argc, sizeof *ipath);
	int *iraw = calloc((size_t)argc, sizeof *iraw);
	uint32_t *ws = calloc((size_t)argc, sizeof *ws), *hs = calloc((size_t)argc, sizeof *hs);
	mmf_text *texts = calloc((size_t)argc, sizeof *texts);
	mmf_image *imgs = calloc((size_t)argc, sizeof *imgs);
	float *logits = NULL;
	mmf_client *c = NULL;
	if (!ipath || !iraw || !ws || !hs || !texts || !imgs) {
		fprintf(stderr, "mmfctl: out of memory\n");
		goto out;
	}
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		uint32_t v;
		char why[256];
		switch (o) {
		case OPT_IMAGE:
		case OPT_RAW:
			iraw[ni] = o == OPT_RAW ? nraw++ : -1;
			ipath[ni++] = optarg;
			break;
		case OPT_WIDTH:
		case OPT_HEIGHT:
			if (parse_u32(optarg, 1, &v) < 0) {
				rc = usage_error(usage_similarity, "--%s wants a positive integer, got '%s'",
						 o == OPT_WIDTH ? "width" : "height", optarg);
				goto out;
			}
			if (o == OPT_WIDTH)
				ws[nw++] = v;
			else
				hs[nh++] = v;
			break;
		case OPT_TEXT:
			texts[nt++].utf8 = optarg;
			break;
		case OPT_TOKENS: {
			int32_t *ids;
			size_t n;
			if (parse_tokens(optarg, &ids, &n, why, sizeof why) < 0) {
				rc = usage_error(usage_similarity, "--tokens: %s", why);
				goto out;
			}
			texts[nt].ids = ids;
			texts[nt++].n = n;
			break;
		}
		default:
			if ((rc = common_opt(o, usage_similarity)) >= 0)
				goto out;
		}
	}
	rc = EXIT_USAGE;
	if (optind < argc) {
		usage_error(usage_similarity, "similarity takes no positional arguments, got '%s'", argv[optind]);
		goto out;
	}
	if (!ni || !nt) {
		usage_error(usage_similarity, "similarity needs at least one image and one text");
		goto out;
	}
	if (nw != nraw || nh != nraw) {
		usage_error(usage_similarity, "%d --raw images need %d --width and --height each, got %d and %d", nraw,
			    nraw, nw, nh);
		goto out;
	}
	rc = EXIT_ERR;
	for (int i = 0; i < ni; i++) {
		if (iraw[i] >= 0) {
			if (load_raw(ipath[i], ws[iraw[i]], hs[iraw[i]], &imgs[i]) < 0)
				goto out;
		} else {
			uint8_t *b;
			if (read_file(ipath[i], &b, &imgs[i].len) < 0)
				goto out;
			imgs[i].data = b;
		}
	}
	if (!(logits = malloc((size_t)ni * (size_t)nt * sizeof *logits)) || !(c = connect_or_report()))
		goto out;
	mmf_error e;
	if (mmf_similarity(c, imgs, (size_t)ni, texts, (size_t)nt, logits, &e)) {
		report(&e);
		goto out;
	}
	if (opt_json) {
		printf("{\"images\":%d,\"texts\":%d,\"logits\":[", ni, nt);
		for (int i = 0; i < ni; i++) {
			fputs(i ? ",[" : "[", stdout);
			for (int j = 0; j < nt; j++) {
				if (j)
					fputc(',', stdout);
				json_num(stdout, logits[i * nt + j]);
			}
			fputc(']', stdout);
		}
		fputs("]}\n", stdout);
	} else {
		for (int i = 0; i < ni; i++) {
			for (int j = 0; j < nt; j++)
				printf("%s%10.4f", j ? " " : "", logits[i * nt + j]);
			printf("   %s\n", ipath[i]);
		}
	}
	rc = 0;
out:
	mmf_close(c);
	free(logits);
	if (imgs)
		for (int i = 0; i < ni; i++)
			free((void *)imgs[i].data);
	if (texts)
		for (int j = 0; j < nt; j++)
			free((void *)texts[j].ids);
	free(imgs);
	free(texts);
	free(ipath);
	free(iraw);
	free(ws);
	free(hs);
	return rc;
}

static int cmd_plan(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS, {0}};
	int o, rc;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1)
		if ((rc = common_opt(o, usage_plan)) >= 0)
			return rc;
	if (optind < argc)
		return usage_error(usage_plan, "plan takes no arguments, got '%s'", argv[optind]);
	mmf_client *c = connect_or_report();
	if (!c)
		return EXIT_ERR;
	char *json;
	mmf_error e;
	rc = mmf_plan(c, &json, &e);
	mmf_close(c);
	if (rc)
		return report(&e);
	size_t l = strlen(json);
	fputs(json, stdout);
	if (!l || json[l - 1] != '\n')
		fputc('\n', stdout);
	free(json);
	return 0;
}

static int cmd_trace(int argc, char **argv)
{
	enum { O_SECONDS = 300 };
	static const struct option lo[] = {COMMON_OPTS, {"seconds", required_argument, 0, O_SECONDS}, {0}};
	int o, rc;
	long seconds = 5;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == O_SECONDS) {
			char *end;
			errno = 0;
			seconds = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || seconds < 1 || seconds > 60)
				return usage_error(usage_trace, "--seconds '%s': expected 1..60", optarg);
			continue;
		}
		if ((rc = common_opt(o, usage_trace)) >= 0)
			return rc;
	}
	if (optind != argc - 1)
		return usage_error(usage_trace, "trace takes one output file");
	const char *out = argv[optind];
	FILE *fp = fopen(out, "w");
	if (!fp) {
		fprintf(stderr, "mmfctl: %s: cannot write: %s\n", out, strerror(errno));
		return EXIT_ERR;
	}
	mmf_client *c = connect_or_report();
	if (!c) {
		fclose(fp);
		unlink(out);
		return EXIT_ERR;
	}
	char *json;
	mmf_trace_info info;
	mmf_error e;
	if (!opt_json)
		fprintf(stderr, "mmfctl: tracing for %ld s ...\n", seconds);
	rc = mmf_trace(c, (unsigned)seconds, &json, &info, &e);
	mmf_close(c);
	if (rc) {
		fclose(fp);
		unlink(out);
		return report(&e);
	}
	size_t l = strlen(json);
	int bad = fwrite(json, 1, l, fp) != l;
	bad |= fclose(fp) != 0;
	free(json);
	if (bad) {
		fprintf(stderr, "mmfctl: %s: cannot write: %s\n", out, strerror(errno));
		return EXIT_ERR;
	}
	if (opt_json)
	{
		fputs("{\"file\":", stdout);
		json_str(stdout, out);
		printf(",\"steps\":%u,\"records\":%llu,\"truncated\":%s}\n", info.steps, info.records,
		       info.truncated ? "true" : "false");
	}
	else
		printf("%u engine steps, %llu block records%s -> %s (open in Perfetto)\n", info.steps, info.records,
		       info.truncated ? " (the record limit ended the trace early)" : "", out);
	return 0;
}

/* ---------------------------------------------------------------- bench */

struct bench {
	uint32_t requests, text_w, image_w;
	const int32_t *ids;
	size_t nids;
	mmf_image img;
	atomic_uint next, done, failed;
	atomic_int live;
	double *lat;		/* seconds, per request index; NAN when it failed */
	pthread_mutex_t lock;	/* guards err */
	mmf_error err;		/* the first failure */
};

static int is_text(const struct bench *b, uint32_t i) { return i % (b->text_w + b->image_w) < b->text_w; }

static void bench_fail(struct bench *b, const mmf_error *e)
{
	atomic_fetch_add(&b->failed, 1);
	pthread_mutex_lock(&b->lock);
	if (!b->err.status)
		b->err = *e;
	pthread_mutex_unlock(&b->lock);
}

static void *bench_client(void *arg)
{
	struct bench *b = arg;
	mmf_error e;
	mmf_client *c = mmf_connect(opt_socket, &e);
	if (!c)
		bench_fail(b, &e);
	static _Thread_local float emb[EMB_MAX];
	while (c) {
		uint32_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->requests)
			break;
		size_t dim;
		double t0 = now_s();
		int rc = is_text(b, i) ? mmf_embed_text_tokens(c, b->ids, b->nids, emb, EMB_MAX, &dim, &e)
				       : mmf_embed_image(c, &b->img, emb, EMB_MAX, &dim, &e);
		b->lat[i] = rc ? NAN : now_s() - t0;
		atomic_fetch_add(&b->done, 1);
		if (rc) {
			bench_fail(b, &e);
			if (rc < 0)	/* the connection is gone; the others go on */
				break;
		}
	}
	mmf_close(c);
	atomic_fetch_sub(&b->live, 1);
	return NULL;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
	if (!n)
		return NAN;
	size_t k = (size_t)ceil(p / 100 * (double)n);
	return v[k ? k - 1 : 0];
}

struct lat_summary {
	size_t n;
	double p50, p90, p99, max;
};

static struct lat_summary summarise(const struct bench *b, int kind /* -1 all, 1 text, 0 image */, double *tmp)
{
	struct lat_summary s = {0};
	for (uint32_t i = 0; i < b->requests; i++)
		if (!isnan(b->lat[i]) && (kind < 0 || is_text(b, i) == kind))
			tmp[s.n++] = b->lat[i];
	qsort(tmp, s.n, sizeof *tmp, mmf_cmp_double);
	s.p50 = pct(tmp, s.n, 50), s.p90 = pct(tmp, s.n, 90), s.p99 = pct(tmp, s.n, 99);
	s.max = s.n ? tmp[s.n - 1] : NAN;
	return s;
}

static void print_lat(const char *name, struct lat_summary s)
{
	if (opt_json) {
		printf("\"%s\":{\"n\":%zu,\"p50_ms\":", name, s.n);
		json_num(stdout, s.p50 * 1e3);
		fputs(",\"p90_ms\":", stdout);
		json_num(stdout, s.p90 * 1e3);
		fputs(",\"p99_ms\":", stdout);
		json_num(stdout, s.p99 * 1e3);
		fputs(",\"max_ms\":", stdout);
		json_num(stdout, s.max * 1e3);
		fputc('}', stdout);
	} else if (s.n) {
		printf("latency %-5s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (%zu requests)\n", name,
		       s.p50 * 1e3, s.p90 * 1e3, s.p99 * 1e3, s.max * 1e3, s.n);
	}
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS,
					   {"clients", required_argument, NULL, OPT_CLIENTS},
					   {"requests", required_argument, NULL, OPT_REQUESTS},
					   {"mix", required_argument, NULL, OPT_MIX},
					   {"image-size", required_argument, NULL, OPT_IMAGE_SIZE},
					   {"tokens", required_argument, NULL, OPT_TOKENS},
					   {0}};
	uint32_t clients = 4, size = 224;
	const char *tokens = "49406,320,1125,49407";
	struct bench b = {.requests = 1000, .text_w = 1, .image_w = 1};
	int o, rc;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case OPT_CLIENTS:
			if (parse_u32(optarg, 1, &clients) < 0 || clients > 4096)
				return usage_error(usage_bench, "--clients wants 1 to 4096, got '%s'", optarg);
			break;
		case OPT_REQUESTS:
			if (parse_u32(optarg, 1, &b.requests) < 0 || b.requests > 100000000)
				return usage_error(usage_bench, "--requests wants 1 to 100000000, got '%s'", optarg);
			break;
		case OPT_IMAGE_SIZE:
			if (parse_u32(optarg, 1, &size) < 0 || size > 2048)
				return usage_error(usage_bench, "--image-size wants 1 to 2048, got '%s'", optarg);
			break;
		case OPT_MIX: {
			unsigned t, i;
			char end;
			if (sscanf(optarg, "%u:%u%c", &t, &i, &end) != 2 || t + i == 0 || t > 1000 || i > 1000)
				return usage_error(usage_bench, "--mix wants TEXT:IMAGE weights such as 3:1, got '%s'",
						   optarg);
			b.text_w = t, b.image_w = i;
			break;
		}
		case OPT_TOKENS:
			tokens = optarg;
			break;
		default:
			if ((rc = common_opt(o, usage_bench)) >= 0)
				return rc;
		}
	}
	if (optind < argc)
		return usage_error(usage_bench, "bench takes no arguments, got '%s'", argv[optind]);
	int32_t *ids;
	char why[256];
	if (parse_tokens(tokens, &ids, &b.nids, why, sizeof why) < 0)
		return usage_error(usage_bench, "--tokens: %s", why);
	b.ids = ids;
	size_t ilen = (size_t)size * size * 3;
	uint8_t *rgb = malloc(ilen);
	b.lat = malloc(b.requests * sizeof *b.lat);
	double *tmp = malloc(b.requests * sizeof *tmp);
	pthread_t *th = calloc(clients, sizeof *th);
	if (!rgb || !b.lat || !tmp || !th) {
		fprintf(stderr, "mmfctl: out of memory for %u requests\n", b.requests);
		rc = EXIT_ERR;
		goto out;
	}
	for (size_t k = 0; k < ilen; k++)	/* a gradient, not a constant: nothing to shortcut */
		rgb[k] = (uint8_t)(k * 7 + k / (size * 3u));
	b.img = (mmf_image){.data = rgb, .len = ilen, .width = size, .height = size};
	for (uint32_t i = 0; i < b.requests; i++)
		b.lat[i] = NAN;
	pthread_mutex_init(&b.lock, NULL);
	atomic_init(&b.next, 0);
	atomic_init(&b.done, 0);
	atomic_init(&b.failed, 0);
	atomic_init(&b.live, 0);

	double t0 = now_s();
	uint32_t started = 0;
	for (; started < clients; started++) {
		atomic_fetch_add(&b.live, 1);
		if (pthread_create(&th[started], NULL, bench_client, &b)) {
			atomic_fetch_sub(&b.live, 1);
			fprintf(stderr, "mmfctl: could only start %u client threads\n", started);
			break;
		}
	}
	int tty = isatty(STDERR_FILENO);
	double last = t0;
	while (atomic_load(&b.live) > 0) {
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
		double t = now_s();
		if (t - last >= (tty ? 0.2 : 2.0)) {
			unsigned d = atomic_load(&b.done);
			fprintf(stderr, "%sbench: %u/%u requests, %u failed, %.0f req/s%s", tty ? "\r" : "", d, b.requests,
				atomic_load(&b.failed), d / (t - t0), tty ? "   " : "\n");
			last = t;
		}
	}
	for (uint32_t k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	double wall = now_s() - t0;
	unsigned done = atomic_load(&b.done), failed = atomic_load(&b.failed);
	unsigned ok = done - (failed < done ? failed : done);
	fprintf(stderr, "%sbench: %u/%u requests, %u failed, %.0f req/s\n", tty ? "\r" : "", done, b.requests, failed,
		ok / wall);

	struct lat_summary all = summarise(&b, -1, tmp), text = summarise(&b, 1, tmp), image = summarise(&b, 0, tmp);
	if (opt_json) {
		printf("{\"clients\":%u,\"requests\":%u,\"mix\":\"%u:%u\",\"image_size\":%u,\"completed\":%u,\"failed\":%u,"
		       "\"seconds\":",
		       clients, b.requests, b.text_w, b.image_w, size, done, failed);
		json_num(stdout, wall);
		fputs(",\"throughput_rps\":", stdout);
		json_num(stdout, ok / wall);
		fputc(',', stdout);
		print_lat("all", all);
		fputc(',', stdout);
		print_lat("text", text);
		fputc(',', stdout);
		print_lat("image", image);
		if (failed) {
			fputs(",\"first_error\":{\"status\":", stdout);
			json_str(stdout, b.err.status > 0 ? mmf_status_name(b.err.status) : strerror(-b.err.status));
			fputs(",\"message\":", stdout);
			json_str(stdout, b.err.msg);
			fputc('}', stdout);
		}
		fputs("}\n", stdout);
	} else {
		printf("%u requests (%u ok, %u failed) from %u clients, mix text:image %u:%u, in %.3f s\n", done, ok,
		       failed, clients, b.text_w, b.image_w, wall);
		printf("throughput     %.1f req/s\n", ok / wall);
		print_lat("all", all);
		if (b.text_w && b.image_w) {
			print_lat("text", text);
			print_lat("image", image);
		}
	}
	rc = 0;
	if (failed || done < b.requests) {
		if (b.err.status)
			report(&b.err);
		rc = EXIT_ERR;
	}
	pthread_mutex_destroy(&b.lock);
out:
	free(ids);
	free(rgb);
	free(b.lat);
	free(tmp);
	free(th);
	return rc;
}

static const struct {
	const char *name;
	int (*run)(int, char **);
} commands[] = {
	{"health", cmd_health},		  {"stats", cmd_stats}, {"embed-text", cmd_embed_text},
	{"embed-image", cmd_embed_image}, {"classify", cmd_classify}, {"similarity", cmd_similarity},
	{"plan", cmd_plan},		  {"bench", cmd_bench},		  {"trace", cmd_trace},
};

int main(int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS, {0}};
	int o, rc;
	/* '+': stop at the command; its own options follow it. */
	while ((o = getopt_long(argc, argv, "+", lo, NULL)) != -1)
		if ((rc = common_opt(o, usage_main)) >= 0)
			return rc;
	if (optind >= argc)
		return usage_error(usage_main, "no command given");
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(name, commands[i].name))
			continue;
		argc -= optind;
		argv += optind;
		optind = 0;	/* glibc: start afresh at argv[1] */
		rc = commands[i].run(argc, argv);
		if (fflush(stdout) || ferror(stdout)) {
			fprintf(stderr, "mmfctl: writing the output: %s\n", strerror(errno));
			return EXIT_ERR;
		}
		return rc;
	}
	return usage_error(usage_main, "unknown command '%s'", name);
}
