// SPDX-License-Identifier: MIT
/*
 * Logging through a caller-set callback, and the per-thread error message.
 * Library code never prints: the CLI and the NCCL plugin wire the callback to
 * their own output.
 */
#include "internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static gpud_log_fn log_fn;
static void *log_ctx;
static enum gpud_log_level log_max = GPUD_LOG_INFO;

static __thread char errmsg[GPUD_ERRMSG_MAX];

void gpud_set_log(gpud_log_fn fn, void *ctx, enum gpud_log_level max_level)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_ctx = ctx;
	log_max = max_level;
	pthread_mutex_unlock(&log_lock);
}

static void vlog(enum gpud_log_level level, const char *fmt, va_list ap)
{
	char msg[GPUD_ERRMSG_MAX];
	gpud_log_fn fn;
	void *ctx;

	pthread_mutex_lock(&log_lock);
	fn = log_fn;
	ctx = log_ctx;
	if (level > log_max)
		fn = NULL;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fn(level, msg, ctx);
}

void gpud_log(enum gpud_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int gpud_err_log(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	gpud_log(GPUD_LOG_ERROR, "%s", errmsg);
	if (!err)
		return -EIO;
	return err < 0 ? err : -err;
}

void gpud_errmsg_clear(void)
{
	errmsg[0] = '\0';
}

int gpud_why(int rc, char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return rc;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return rc;
}

const char *gpud_errmsg(void)
{
	return errmsg;
}

const char *gpud_version(void)
{
	return GPUD_VERSION_STRING;
}
