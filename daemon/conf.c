/* Settings: one table of keys shared by the config file and the options. */
#include "config.h"
#include "conf.h"
#include "tokenizer.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void conf_defaults(conf *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->model, sizeof c->model, "tiny");
	snprintf(c->socket, sizeof c->socket, "%s", CONF_DEFAULT_SOCKET);
	snprintf(c->config, sizeof c->config, "%s", CONF_DEFAULT_FILE);
	c->queue = 256;
	c->max_batch = 8;
	c->max_frame = 16u << 20;
	c->deadline_ms = 10000;
	c->log_level = LOG_INFO;
	c->max_output = 1 << 20;
	c->stall_timeout_ms = 30000;
	snprintf(c->device, sizeof c->device, "cpu");
	snprintf(c->fuse, sizeof c->fuse, "auto");
	snprintf(c->weights, sizeof c->weights, "auto");
	snprintf(c->plan_dir, sizeof c->plan_dir, "%s", CONF_DEFAULT_PLAN_DIR);
	c->max_image_pixels = 64LL * 1000 * 1000;
	c->prep_threads = 2;
	c->util_every = 100;
	c->text_cache = 1024;
	c->socket_mode = 0660;
}

static int conf_int(const char *where, const char *key, const char *v, long lo, long hi, long *out, mmf_err *err)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi)
		return mmf_err_set(err, -EINVAL, "%s: %s '%s': expected an integer in [%ld, %ld]", where, key, v, lo, hi);
	*out = x;
	return 0;
}

/* Sets one key; `where` names the source for messages ("mmfd.conf:3", "command line"). */
static int conf_set(conf *c, const char *key, const char *v, const char *where, mmf_err *err)
{
	long x;
	int rc;
#define INT_KEY(name, field, lo, hi)                                                  \
	if (strcmp(key, name) == 0) {                                                 \
		if ((rc = conf_int(where, key, v, lo, hi, &x, err)) < 0)              \
			return rc;                                                    \
		c->field = (__typeof__(c->field))x;                                   \
		return 0;                                                             \
	}
	INT_KEY("queue", queue, 1, 1 << 20)
	INT_KEY("max-batch", max_batch, 1, 256)
	INT_KEY("max-frame", max_frame, 64, 1L << 30)
	INT_KEY("deadline-ms", deadline_ms, 1, 3600 * 1000)
	INT_KEY("threads", threads, 0, 1024)
	INT_KEY("max-output", max_output, 4096, 1 << 30)
	INT_KEY("stall-timeout-ms", stall_timeout_ms, 10, 3600 * 1000)
	INT_KEY("test-delay-ms", test_delay_ms, 0, 60000)
	INT_KEY("sms", sms, 0, 4096)
	INT_KEY("max-image-pixels", max_image_pixels, 1, 1LL << 32)
	INT_KEY("prep-threads", prep_threads, 1, 256)
	INT_KEY("util-every", util_every, 0, 1 << 30)
	INT_KEY("text-cache", text_cache, 0, 1 << 20)
#undef INT_KEY
#define STR_KEY(name, field, empty_ok, what)                                                             \
	if (strcmp(key, name) == 0) {                                                                    \
		if ((!empty_ok && !*v) || strlen(v) >= sizeof c->field)                                    \
			return mmf_err_set(err, -EINVAL, "%s: %s '%s': expected %s of at most %zu bytes", where, \
					   key, v, what, sizeof c->field - 1);                             \
		snprintf(c->field, sizeof c->field, "%s", v);                                            \
		return 0;                                                                                \
	}
	STR_KEY("plan-dir", plan_dir, 1, "a directory")
	STR_KEY("vocab", vocab, 0, "a file")
	STR_KEY("socket-group", socket_group, 1, "a group name")
#undef STR_KEY
	if (strcmp(key, "socket-mode") == 0) {
		char *end;
		errno = 0;
		long m = strtol(v, &end, 8);
		if (!*v || *end || errno || m < 0 || m > 0777)
			return mmf_err_set(err, -EINVAL, "%s: socket-mode '%s': expected octal permission bits such as 0660",
					   where, v);
		c->socket_mode = (int)m;
		return 0;
	}
	if (strcmp(key, "fuse") == 0) {
		if (strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off"))
			return mmf_err_set(err, -EINVAL, "%s: fuse '%s': expected auto, on or off", where, v);
		snprintf(c->fuse, sizeof c->fuse, "%s", v);
		return 0;
	}
	if (strcmp(key, "weights") == 0) {
		if (strcmp(v, "auto") && strcmp(v, "fp16") && strcmp(v, "int8"))
			return mmf_err_set(err, -EINVAL, "%s: weights '%s': expected auto, fp16 or int8", where, v);
		snprintf(c->weights, sizeof c->weights, "%s", v);
		return 0;
	}
	if (strcmp(key, "device") == 0) {
		if (strcmp(v, "cpu") && strcmp(v, "cuda"))
			return mmf_err_set(err, -EINVAL, "%s: device '%s': expected cpu or cuda", where, v);
		snprintf(c->device, sizeof c->device, "%s", v);
		return 0;
	}
	if (strcmp(key, "model") == 0) {
		if (!*v || strlen(v) >= sizeof c->model)
			return mmf_err_set(err, -EINVAL, "%s: model '%s': expected a file or a model name", where, v);
		snprintf(c->model, sizeof c->model, "%s", v);
		return 0;
	}
	if (strcmp(key, "socket") == 0) {
		if (!*v || strlen(v) >= sizeof c->socket)
			return mmf_err_set(err, -EINVAL, "%s: socket '%s': expected a path of 1..%zu bytes", where, v,
					   sizeof c->socket - 1);
		snprintf(c->socket, sizeof c->socket, "%s", v);
		return 0;
	}
	if (strcmp(key, "log-level") == 0) {
		if (log_level_parse(v, &c->log_level) < 0)
			return mmf_err_set(err, -EINVAL, "%s: log-level '%s': expected error, warn, info or debug", where, v);
		return 0;
	}
	if (strcmp(key, "foreground") == 0) {
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			c->foreground = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			c->foreground = 0;
		else
			return mmf_err_set(err, -EINVAL, "%s: foreground '%s': expected yes or no", where, v);
		return 0;
	}
	return mmf_err_set(err, -EINVAL, "%s: unknown setting '%s'", where, key);
}

static char *conf_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

int conf_load_file(conf *c, mmf_err *err)
{
	FILE *fp = fopen(c->config, "r");
	if (!fp) {
		if (errno == ENOENT && !c->config_explicit)
			return 0;
		return mmf_err_set(err, -errno, "%s: cannot read the configuration: %s", c->config, strerror(errno));
	}
	char line[2048], where[1100];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, fp)) {
		lineno++;
		snprintf(where, sizeof where, "%s:%d", c->config, lineno);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = conf_trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = mmf_err_set(err, -EINVAL, "%s: '%s': expected key = value", where, s);
			break;
		}
		*eq = 0;
		if ((rc = conf_set(c, conf_trim(s), conf_trim(eq + 1), where, err)) < 0)
			break;
	}
	fclose(fp);
	return rc;
}

enum { OPT_CONFIG = 256, OPT_FOREGROUND, OPT_HELP, OPT_VALUE };

static const struct option conf_options[] = {
	{"model", required_argument, NULL, OPT_VALUE},
	{"socket", required_argument, NULL, OPT_VALUE},
	{"queue", required_argument, NULL, OPT_VALUE},
	{"max-batch", required_argument, NULL, OPT_VALUE},
	{"max-frame", required_argument, NULL, OPT_VALUE},
	{"deadline-ms", required_argument, NULL, OPT_VALUE},
	{"threads", required_argument, NULL, OPT_VALUE},
	{"log-level", required_argument, NULL, OPT_VALUE},
	{"max-output", required_argument, NULL, OPT_VALUE},
	{"stall-timeout-ms", required_argument, NULL, OPT_VALUE},
	{"test-delay-ms", required_argument, NULL, OPT_VALUE},
	{"device", required_argument, NULL, OPT_VALUE},
	{"sms", required_argument, NULL, OPT_VALUE},
	{"fuse", required_argument, NULL, OPT_VALUE},
	{"plan-dir", required_argument, NULL, OPT_VALUE},
	{"weights", required_argument, NULL, OPT_VALUE},
	{"vocab", required_argument, NULL, OPT_VALUE},
	{"max-image-pixels", required_argument, NULL, OPT_VALUE},
	{"prep-threads", required_argument, NULL, OPT_VALUE},
	{"util-every", required_argument, NULL, OPT_VALUE},
	{"text-cache", required_argument, NULL, OPT_VALUE},
	{"socket-group", required_argument, NULL, OPT_VALUE},
	{"socket-mode", required_argument, NULL, OPT_VALUE},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"foreground", no_argument, NULL, OPT_FOREGROUND},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* One getopt pass; with `config_only` only --config is taken, else all but it. */
static int conf_pass(conf *c, int argc, char **argv, int config_only, mmf_err *err)
{
	int o, idx, rc;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":", conf_options, &idx)) != -1) {
		switch (o) {
		case OPT_CONFIG:
			if (config_only) {
				if (strlen(optarg) >= sizeof c->config)
					return mmf_err_set(err, -EINVAL, "--config: path too long");
				snprintf(c->config, sizeof c->config, "%s", optarg);
				c->config_explicit = 1;
			}
			break;
		case OPT_FOREGROUND:
			if (!config_only)
				c->foreground = 1;
			break;
		case OPT_HELP:
			c->help = 1;
			break;
		case OPT_VALUE:
			if (!config_only && (rc = conf_set(c, conf_options[idx].name, optarg, "command line", err)) < 0)
				return rc;
			break;
		case ':':
			return mmf_err_set(err, -EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return mmf_err_set(err, -EINVAL, "unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return mmf_err_set(err, -EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
	return 0;
}

int conf_parse_args(conf *c, int argc, char **argv, mmf_err *err)
{
	int rc;
	if ((rc = conf_pass(c, argc, argv, 1, err)) < 0 || c->help)
		return rc;
	if ((rc = conf_load_file(c, err)) < 0)
		return rc;
	return conf_pass(c, argc, argv, 0, err);
}

void conf_usage(FILE *fp)
{
	fprintf(fp,
		"Usage: mmfd [OPTION]...\n"
		"Serve CLIP image and text embeddings on a Unix socket (CPU or CUDA backend).\n\n"
		"  --model FILE|NAME     open_clip safetensors file, or tiny|small|rn50 for a synthetic\n"
		"                        model written once to $MMF_CACHE (default tiny)\n"
		"  --socket PATH         listening socket (default %s); ignored under socket activation\n"
		"  --socket-group GROUP  group owning the socket mmfd creates (default: mmfd's own)\n"
		"  --socket-mode MODE    its permission bits, octal (default 0660)\n"
		"  --foreground          do not detach\n"
		"  --queue N             requests waiting for the worker (default 256)\n"
		"  --max-batch N         samples per engine call (default 8)\n"
		"  --max-frame BYTES     largest request frame (default 16777216)\n"
		"  --deadline-ms N       default request deadline (default 10000)\n"
		"  --threads N           engine threads, 0 for all cores (default 0)\n"
		"  --device cpu|cuda     backend (default cpu); cuda keeps the model resident on\n"
		"                        the GPU (builds with CUDA only)\n"
		"  --sms N               cuda: run in a green-context partition of N SMs (0: all)\n"
		"  --fuse auto|on|off    cuda: image+text steps as fused kernels: auto plans fusion per\n"
		"                        batch size and keeps it only where it measures faster than\n"
		"                        the two towers on two streams (default auto)\n"
		"  --plan-dir DIR        cuda: fusion plan cache (default %s; \"\" for none)\n"
		"  --weights W           auto, fp16 or int8: int8 quantises every convolution and\n"
		"                        linear weight per output channel at load (cuda runs them\n"
		"                        as int8; the CPU computes with the dequantised values);\n"
		"                        auto is int8 for a file from mmf-mkmodel --quantize\n"
		"                        (default auto)\n"
		"  --vocab FILE          CLIP BPE vocabulary (default $MMF_BPE_VOCAB, else\n"
		"                        %s)\n"
		"  --max-image-pixels N  largest decoded image (default 64000000)\n"
		"  --prep-threads N      threads decoding images and tokenizing labels (default 2)\n"
		"  --util-every N        cuda: trace one engine step each time N images and texts\n"
		"                        have run, for the sm_util_* counters (0: never; default 100)\n"
		"  --text-cache N        keep the embeddings of the last N distinct texts (Classify\n"
		"                        labels, prompts) by token ids (0: none; default 1024)\n"
		"  --max-output BYTES    unsent response bytes per client before reading from it stops\n"
		"                        (default 1048576)\n"
		"  --stall-timeout-ms N  drop a client that reads none of its responses for this long\n"
		"                        (default 30000)\n"
		"  --config FILE         key = value settings named like these options (default %s)\n"
		"  --log-level LEVEL     error, warn, info or debug (default info)\n"
		"  --help                show this and exit\n",
		CONF_DEFAULT_SOCKET, CONF_DEFAULT_PLAN_DIR, clip_tokenizer_default_path(), CONF_DEFAULT_FILE);
}
