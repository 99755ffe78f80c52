// SPDX-License-Identifier: MIT
/*
 * Logging through the function NCCL hands to init(), so NCCL_DEBUG and
 * NCCL_DEBUG_SUBSYS=NET decide what is shown. Nothing is printed before init
 * or when NCCL passes no logger.
 */
#include "base/base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static _Atomic(ncclDebugLogger_t) logger;
static __thread bool lib_errors_owned;

void dm_lib_errors_own(bool on)
{
	lib_errors_owned = on;
}

bool dm_lib_errors_owned(void)
{
	return lib_errors_owned;
}

void dm_log_set(ncclDebugLogger_t fn)
{
	atomic_store(&logger, fn);
}

void dm_log(ncclDebugLogLevel level, const char *file, int line, const char *fmt, ...)
{
	ncclDebugLogger_t fn = atomic_load(&logger);
	char msg[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(level, NCCL_NET, file, line, "NET/" DM_NAME " : %s", msg);
}

ncclResult_t dm_result(int err)
{
	if (err >= 0)
		return ncclSuccess;
	switch (-err) {
	case DM_EREMOTE:
	case ECONNRESET:
	case EPIPE:
	case ECONNREFUSED:
	case EPROTO:
	case EBADMSG:
		return ncclRemoteError;
	case EINVAL:
		return ncclInvalidArgument;
	case ENOTRECOVERABLE:
		return ncclInternalError;
	default:
		return ncclSystemError;
	}
}

double dm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}
