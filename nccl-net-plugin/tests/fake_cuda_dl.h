/* SPDX-License-Identifier: MIT */
/*
 * Entry points of the fake libcuda for tests that drive the plugin against it.
 * The tests dlopen the fake (as the plugin does) and resolve the model's
 * controls with dlsym and the driver API through cuGetProcAddress_v2 — the
 * same lookup the plugin's loader uses, so a name the fake lacks fails here
 * first, with its name, instead of as a NULL call later.
 */
#ifndef DM_TEST_FAKE_CUDA_DL_H
#define DM_TEST_FAKE_CUDA_DL_H

#include <dlfcn.h>

#include "gpud_test.h"

typedef int (*fake_getproc_fn)(const char *, void **, int, unsigned long long, int *);

static inline void *fake_dl_sym(void *lib, const char *name)
{
	void *p = dlsym(lib, name);

	if (!p)
		T_FAIL("the fake libcuda has no %s", name);
	return p;
}

/* Driver entry point @name at the ABI version the plugin asks for (CUDA 12.0). */
static inline void *fake_dl_cu(void *lib, const char *name)
{
	fake_getproc_fn gpa = (fake_getproc_fn)fake_dl_sym(lib, "cuGetProcAddress_v2");
	void *fn = NULL;
	int status = 0;

	if (gpa(name, &fn, 12000, 0, &status) || !fn)
		T_FAIL("the fake libcuda does not resolve %s", name);
	return fn;
}

#endif
