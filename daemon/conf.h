/* conf: mmfd's settings. Defaults, then the config file (`key = value`
 * lines, keys named like the long options), then the command line. */
#ifndef MMFD_CONF_H
#define MMFD_CONF_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "log.h"

#define CONF_DEFAULT_FILE "/etc/mmf/mmfd.conf"
#define CONF_DEFAULT_SOCKET "/run/mmf/mmfd.sock"
#define CONF_DEFAULT_PLAN_DIR "/var/cache/mmf/plans"

typedef struct conf {
	char model[1024];
	char socket[108];	/* sun_path */
	char config[1024];
	int config_explicit;	/* --config given: a missing file is an error */
	int foreground;
	int queue;		/* requests waiting for the worker */
	int max_batch;
	uint32_t max_frame;
	int deadline_ms;
	int threads;		/* 0: all cores */
	char device[8];		/* "cpu" or "cuda" */
	int sms;		/* cuda: SM partition size, 0 for the whole GPU */
	char fuse[8];		/* cuda: auto, on or off */
	char weights[8];	/* auto, fp16 or int8 (clip_weights) */
	int util_every;		/* cuda: trace one step per this many images+texts (0: never) */
	int text_cache;		/* text-embedding cache entries (0: none) */
	char plan_dir[1024];	/* cuda: fusion plan cache ("" for none) */
	char vocab[1024];	/* BPE vocabulary ("" for the default) */
	long long max_image_pixels;
	int prep_threads;	/* image decoding pool */
	char socket_group[64];	/* group of the socket mmfd creates ("" to keep ours) */
	int socket_mode;	/* its permission bits */
	log_level log_level;
	int max_output;		/* pending response bytes per connection before reading from it stops */
	int stall_timeout_ms;	/* a connection blocked that long on its output is dropped */
	int test_delay_ms;	/* test only: the worker sleeps this long before each batch */
	int help;
} conf;

void conf_defaults(conf *c);
/* Reads the file named in c->config. A missing file is fine unless
 * c->config_explicit. Returns 0 or -errno with err set. */
int conf_load_file(conf *c, mmf_err *err);
/* Applies the command line; --config is taken first so that the file
 * (loaded between) is overridden by everything else. Returns 0 or -EINVAL. */
int conf_parse_args(conf *c, int argc, char **argv, mmf_err *err);
void conf_usage(FILE *fp);

#endif
