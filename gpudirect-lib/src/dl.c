// SPDX-License-Identifier: MIT
/* Loads a driver library once and resolves its function table (see dl.h). */
#include "dl.h"
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_locked(struct gpud_dl_lib *l, char *why, size_t len)
{
	const char *path = getenv(l->env);
	void *table, *lib;
	int ret;

	if (!path || !*path)
		path = l->soname;
	table = calloc(1, l->table_size);
	if (!table)
		return gpud_why(-ENOMEM, why, len, "%s: out of memory", l->who);
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		ret = gpud_why(-ENOENT, why, len, "%s: cannot load %s (%s): %s or point %s at it",
				  l->who, path, dlerror(), l->install, l->env);
		goto err_free;
	}
	memcpy(table, &lib, sizeof(lib));
	for (size_t i = 0; i < l->nsyms; i++) {
		const struct gpud_dl_sym *s = &l->syms[i];
		void *p = dlsym(lib, s->name);

		if (!p && !s->optional) {
			ret = gpud_why(-ENOSYS, why, len, "%s: %s lacks %s%s", l->who, path,
					  s->name, s->note ? s->note : "");
			goto err_close;
		}
		memcpy((char *)table + s->off, &p, sizeof(p));
	}
	if (l->resolve) {
		ret = l->resolve(table, path, why, len);
		if (ret)
			goto err_close;
	}
	l->table = table;
	return 0;

err_close:
	dlclose(lib);
err_free:
	free(table);
	return ret;
}

int gpud_dl_load(struct gpud_dl_lib *l, const void **table, char *why, size_t len)
{
	int ret = 0;

	pthread_mutex_lock(&l->lock);
	if (!l->table)
		ret = load_locked(l, why, len);
	if (!ret)
		*table = l->table;
	pthread_mutex_unlock(&l->lock);
	return ret;
}
