/* err: one error value carried through the engine: a negative errno-style
 * code and a readable message that names the thing, the value and what was
 * expected. Functions return the code; the message goes to the caller's
 * mmf_err, which may be NULL when the caller does not want it. */
#ifndef MMF_ERR_H
#define MMF_ERR_H

#include <stddef.h>

#define MMF_ERR_MSG_MAX 512

typedef struct mmf_err {
	int code;
	char msg[MMF_ERR_MSG_MAX];
} mmf_err;

/* Sets e (if non-NULL) and returns code, so callers can `return mmf_err_set(...)`. */
int mmf_err_set(mmf_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with more context ("loading X: <msg>"). */
int mmf_err_prefix(mmf_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
