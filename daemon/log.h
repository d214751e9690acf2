/* log: leveled messages on stderr. Under systemd (JOURNAL_STREAM set) each
 * line carries an sd-daemon "<N>" priority prefix that journald turns into
 * the entry's priority; on a terminal it reads "mmfd: warn: ...". The level
 * may be changed from any thread (SIGHUP). */
#ifndef MMFD_LOG_H
#define MMFD_LOG_H

typedef enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, log_level_max } log_level;

void log_init(void);
void log_set_level(log_level l);
log_level log_get_level(void);
/* Returns 0 and sets *out for "error", "warn", "info" or "debug"; -EINVAL otherwise. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level l);
void log_msg(log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
