// SPDX-License-Identifier: MIT
/*
 * NCCL_DEVMEM_IFNAME with NCCL_SOCKET_IFNAME's rules, so one setting means
 * the same to NCCL's socket transport and to us: a comma list of name
 * prefixes ("eth,ens" matches eth0, ens5f1); "^" first excludes what the list
 * matches; "=" first (after a "^", if any) makes the names exact. Pure: no
 * I/O, unit-tested (tests/iflist_test.c).
 */
#include "conn/iflist.h"

#include <stdbool.h>
#include <string.h>

bool dm_iflist_match(const char *spec, const char *ifname)
{
	bool exclude = false, exact = false, hit = false;
	const char *p = spec;

	if (*p == '^') {
		exclude = true;
		p++;
	}
	if (*p == '=') {
		exact = true;
		p++;
	}
	while (*p && !hit) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n && !strncmp(ifname, p, n) && (!exact || ifname[n] == '\0'))
			hit = true;
		p = end ? end + 1 : p + n;
	}
	return exclude ? !hit : hit;
}

bool dm_iflist_names(const char *spec, const char *ifname)
{
	/* an include list names an interface when it matches it */
	return spec[0] != '^' && dm_iflist_match(spec, ifname);
}
