/* Leveled logging to stderr; one write per line so threads do not interleave. */
#include "config.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level_now = LOG_INFO;
static int log_journal;

static const char *const log_names[log_level_max] = {"error", "warn", "info", "debug"};
/* syslog priorities: err, warning, info, debug */
static const int log_prio[log_level_max] = {3, 4, 6, 7};

void log_init(void)
{
	const char *j = getenv("JOURNAL_STREAM");
	log_journal = j && *j;
}

void log_set_level(log_level l) { atomic_store(&log_level_now, (int)l); }
log_level log_get_level(void) { return (log_level)atomic_load(&log_level_now); }
const char *log_level_name(log_level l) { return l < log_level_max ? log_names[l] : "?"; }

int log_level_parse(const char *s, log_level *out)
{
	for (int i = 0; i < log_level_max; i++)
		if (strcmp(s, log_names[i]) == 0) {
			*out = (log_level)i;
			return 0;
		}
	return -EINVAL;
}

void log_msg(log_level l, const char *fmt, ...)
{
	if ((int)l > atomic_load(&log_level_now))
		return;
	char line[1024];
	int n = log_journal ? snprintf(line, sizeof line, "<%d>", log_prio[l])
			    : snprintf(line, sizeof line, "mmfd: %s: ", log_names[l]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
