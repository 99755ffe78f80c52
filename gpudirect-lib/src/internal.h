/* SPDX-License-Identifier: MIT */
/* Private to libgpudirect: shared helpers every part of the library uses. */
#ifndef GPUD_INTERNAL_H
#define GPUD_INTERNAL_H

#include <gpudirect/gpudirect.h>

#include <errno.h>

#define GPUD_ERRMSG_MAX 512

#define GPUD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Logs through the caller's callback, if any, at @level. */
void gpud_log(enum gpud_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Records the thread's error message, logs it at ERROR and returns -|err|, so
 * a failure path reads: return gpud_err(-ENODEV, "...: run ...");
 * Never 0 (-EIO for an @err of 0, e.g. a -errno with errno unset): a failure
 * path must not read as success. The macro lets the compiler see that at
 * every call site, so `if (err) return err;` before an out-param is used
 * is known to leave only on failure (gcc -O3 otherwise reports the
 * out-param as maybe uninitialized).
 */
int gpud_err_log(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline int gpud_err_nonzero(int rc)
{
	return rc ? rc : -EIO;
}

#define gpud_err(err, ...) gpud_err_nonzero(gpud_err_log((err), __VA_ARGS__))

void gpud_errmsg_clear(void);

/*
 * snprintf into @why when it is non-NULL; returns @rc for tail calls. For
 * probes and loaders that report a reason without failing the thread's call.
 */
int gpud_why(int rc, char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Pointer-returning functions: set errno from a negative errno and return NULL. */
static inline void *gpud_err_ptr(int err)
{
	errno = err < 0 ? -err : err;
	return (void *)0;
}

/*
 * Size-checked options copy (libbpf OPTS): copies min(user sz, ours) bytes,
 * zero-fills the rest, and refuses a newer caller's non-zero unknown fields.
 * Returns 0 or -EINVAL.
 */
int gpud_opts_copy(void *dst, size_t dst_sz, const void *src, const char *what);

#endif /* GPUD_INTERNAL_H */
