/* SPDX-License-Identifier: MIT */
/*
 * Driver libraries loaded at run time (libcuda, the HSA runtime,
 * libdrm_amdgpu, libibverbs): no build-time dependency, so GPU-less and
 * RDMA-less builds still build and test everything else.
 */
#ifndef GPUD_DL_H
#define GPUD_DL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* One function of a library's table: its symbol and where it goes. */
struct gpud_dl_sym {
	const char *name;
	size_t off;		/* offset of the function pointer in the table */
	bool optional;		/* left NULL when missing instead of failing */
	const char *note;	/* appended to the "lacks" message; may be NULL */
};

/*
 * A library resolved once per process into a table whose first member is
 * `void *lib` (the dlopen handle). The table is kept until exit: callers
 * hold its function pointers without reference counting. A failed load is
 * not cached, so a library installed later is found on the next try.
 */
struct gpud_dl_lib {
	const char *who;	/* message prefix: "cuda", "hip", "drm", "rdma" */
	const char *env;	/* variable that overrides the path */
	const char *soname;	/* default path */
	const char *install;	/* how to get it, for the not-found message */
	const struct gpud_dl_sym *syms;
	size_t nsyms;
	size_t table_size;
	/*
	 * Resolves what plain dlsym cannot (cuda: cuGetProcAddress with
	 * versions) after @syms are in; may be NULL. Returns 0 or -errno with
	 * @why written.
	 */
	int (*resolve)(void *table, const char *path, char *why, size_t len);
	pthread_mutex_t lock;
	void *table;		/* guarded by lock */
};

#define GPUD_DL_LIB(w, e, so, inst, s, type, res)                         \
	{ .who = (w), .env = (e), .soname = (so), .install = (inst),     \
	  .syms = (s), .nsyms = sizeof(s) / sizeof((s)[0]),              \
	  .table_size = sizeof(type), .resolve = (res),                  \
	  .lock = PTHREAD_MUTEX_INITIALIZER }

/*
 * Stores the library's table in *table, loading it on first use. Returns 0,
 * or -ENOENT (library not found), -ENOSYS (a required symbol missing),
 * -ENOMEM, or the resolver's error, with a one-line reason in @why (may be
 * NULL). Thread-safe.
 */
int gpud_dl_load(struct gpud_dl_lib *l, const void **table, char *why, size_t len);

#endif /* GPUD_DL_H */
