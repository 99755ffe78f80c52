/* SPDX-License-Identifier: MIT */
/* Interface selection with NCCL_SOCKET_IFNAME's syntax (iflist.c). */
#ifndef DM_IFLIST_H
#define DM_IFLIST_H

#include <stdbool.h>

/* Does @spec ("eth,ens", "^docker,lo", "=eth0", "^=eth1") select @ifname? */
bool dm_iflist_match(const char *spec, const char *ifname);
/* @spec selects @ifname by naming it (not by excluding others): lets loopback in. */
bool dm_iflist_names(const char *spec, const char *ifname);

#endif
