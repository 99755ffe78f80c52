/* SPDX-License-Identifier: MIT */
/*
 * The plugin library itself, loaded once per rank and transport: shared by
 * the sendrecv sweep (plugin.c) and the collectives' link (link_plugin.c).
 */
#ifndef PB_PLUGIN_LIB_H
#define PB_PLUGIN_LIB_H

#include "pluginbench.h"
#include "ncclnet/net.h"

#include <stdarg.h>

struct pb_plugin_lib {
	void *so;
	const ncclNet_v11_t *net;	/* NULL until init succeeded */
	void *ctx;
};

/*
 * dlopen()s --plugin and runs init with the plugin's settings for @ifname
 * (NCCL_DEVMEM_IFNAME, NCCL_DEVMEM_NSOCKS). 0, or -errno with @why.
 */
int pb_plugin_lib_open(struct pb_plugin_lib *lib, const struct pb_opts *o, const char *ifname,
		       char *why, size_t wlen);
/* finalize and dlclose; safe on a failed or closed one. */
void pb_plugin_lib_close(struct pb_plugin_lib *lib);
/* Formats why into @buf, with the plugin's last WARN appended; returns @err. */
int pb_plugin_why(char *buf, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int pb_plugin_vwhy(char *buf, size_t len, int err, const char *fmt, va_list ap);
/* What the last receive comm logged as its mode ("copy mode (...)"), or "". */
const char *pb_plugin_recv_mode(void);

#endif /* PB_PLUGIN_LIB_H */
