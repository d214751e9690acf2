#include "config.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mmf_err_set(mmf_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return code;
}

int mmf_err_prefix(mmf_err *e, const char *fmt, ...)
{
	if (!e)
		return 0;
	/* Composed in a buffer that always fits, then cut to the message size. */
	char pre[MMF_ERR_MSG_MAX], all[2 * MMF_ERR_MSG_MAX + 4];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	snprintf(all, sizeof all, "%s: %s", pre, e->msg);
	memcpy(e->msg, all, sizeof e->msg - 1);
	e->msg[sizeof e->msg - 1] = '\0';
	return e->code;
}
