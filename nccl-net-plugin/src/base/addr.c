// SPDX-License-Identifier: MIT
/*
 * IPv4 and IPv6 socket addresses as one type, so listen, connect, the
 * handle and the handshake treat both families alike.
 */
#include "base/base.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

socklen_t dm_addr_len(const union dm_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

uint16_t dm_addr_port(const union dm_addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in.sin_port);
}

void dm_addr_set_port(union dm_addr *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons(port);
	else
		a->in.sin_port = htons(port);
}

void dm_addr_set(union dm_addr *a, int family, const uint8_t *bytes, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET6)
		memcpy(&a->in6.sin6_addr, bytes, 16);
	else
		memcpy(&a->in.sin_addr, bytes, 4);
	dm_addr_set_port(a, port);
}

/* The address bytes: 4 for IPv4, 16 for IPv6. */
const void *dm_addr_bytes(const union dm_addr *a, size_t *len)
{
	if (a->sa.sa_family == AF_INET6) {
		*len = 16;
		return &a->in6.sin6_addr;
	}
	*len = 4;
	return &a->in.sin_addr;
}

bool dm_addr_same_host(const union dm_addr *a, const union dm_addr *b)
{
	size_t la, lb;
	const void *pa = dm_addr_bytes(a, &la), *pb = dm_addr_bytes(b, &lb);

	return a->sa.sa_family == b->sa.sa_family && la == lb && !memcmp(pa, pb, la);
}

/* "198.18.0.1:41234" or "[fd00:198:18::1]:41234" */
void dm_addr_str(const union dm_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	size_t n;
	const void *p = dm_addr_bytes(a, &n);
	bool v6 = a->sa.sa_family == AF_INET6;

	if (a->sa.sa_family != AF_INET && !v6) {
		snprintf(buf, len, "(no address)");
		return;
	}
	inet_ntop(a->sa.sa_family, p, ip, sizeof(ip));
	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "", dm_addr_port(a));
}

const char *dm_family_name(int family)
{
	return family == AF_INET6 ? "IPv6" : family == AF_INET ? "IPv4" : "no address family";
}
