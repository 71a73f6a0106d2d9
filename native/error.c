/*
 * error.c -- one error contract: functions return 0/count or a negative
 * PASTE_ERR_*, and this thread's last message says what and where.
 * Thread-local, because data-path workers call into the library concurrently.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char last_error[1024];

const char *paste_last_error(void)
{
	return last_error;
}

int paste_set_error(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return rc;
}

int paste_set_errno(int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	int rc;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	n = strlen(last_error);
	snprintf(last_error + n, sizeof(last_error) - n, ": %s", strerror(err));

	switch (err) {
	case ENOENT: rc = PASTE_ERR_NOT_FOUND; break;
	case EEXIST: rc = PASTE_ERR_EXISTS; break;
	case ENOSPC: case EDQUOT: case EFBIG: rc = PASTE_ERR_NO_SPACE; break;
	case EWOULDBLOCK: rc = PASTE_ERR_POOL_LOCKED; break;
	case EINVAL: rc = PASTE_ERR_INVALID_ARG; break;
	case EROFS: rc = PASTE_ERR_READ_ONLY; break;
	default: rc = PASTE_ERR_IO; break;
	}
	return rc;
}
